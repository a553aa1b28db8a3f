"""Build the yellow sample ``data/tlc/yellow/yellow_tripdata_2021-01.csv.gz``: real trips, constructed days.

The only real yellow trips on these machines are the first 22,791 of the course mirror's January
2021 file, nearly all picked up on January 1st. Served as they are, every day but one would look
empty and every yellow month would be flagged for ``low_trip_days``, which real data never is. So
the sample keeps those rows, every field as the mirror wrote it, and spreads them over the month:

- each day of January gets a quota of trips proportional to the mean trips of its weekday in a
  real whole month (the green sample, October 2020), so weekends are quieter, as in real data;
- the in-month rows, in the file's order, are dealt to the days in an interleaved sequence (each
  day's turns evenly spaced through the file), so every day gets trips from every hour of the
  real day; each row keeps its time of day and its duration, only the date of both times changes;
- the few rows picked up outside the month (the mirror's strays, from December 31st) are kept
  as they are, as are the rows' order, their line ends (LF, like the mirror's yellow file) and
  every other byte of each line.

The rule depends only on a row's place among the in-month rows and its time of day, so applying it
to its own output changes nothing: ``python -m local_stack.yellow_sample`` rebuilds the file in
place, and ``--source`` builds it from the mirror's real rows (``zcat`` the mirror's file, keep
its header and first 22,791 rows, gzip). ``data/tlc/README.md`` marks the file as constructed.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import gzip
import io
import os
import statistics
import tempfile
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

from local_stack.tlc_server import SAMPLES

YELLOW_SAMPLE = SAMPLES / "yellow" / "yellow_tripdata_2021-01.csv.gz"
YEAR, MONTH = 2021, 1
# A real whole month whose trips per weekday set each day's share.
WEEKDAY_SOURCE = SAMPLES / "green" / "green_tripdata_2020-10.csv.gz"
TIMES = ("tpep_pickup_datetime", "tpep_dropoff_datetime")


def weekday_weights(source: Path = WEEKDAY_SOURCE) -> list[float]:
    """Mean trips per day of each weekday (Monday first) in a real month, as shares of the busiest."""
    per_day: dict[date, int] = defaultdict(int)
    with gzip.open(source, "rt", newline="") as lines:
        rows = csv.reader(lines)
        pickup = next(rows).index("lpep_pickup_datetime")
        for row in rows:
            if row[pickup]:
                per_day[datetime.fromisoformat(row[pickup]).date()] += 1
    month = max(per_day, key=per_day.get)  # the month the file is of, not its strays
    days = [day for day in per_day if (day.year, day.month) == (month.year, month.month)]
    means = [statistics.mean(per_day[d] for d in days if d.weekday() == weekday) for weekday in range(7)]
    return [mean / max(means) for mean in means]


def day_sequence(rows: int, year: int, month: int, weights: list[float]) -> list[date]:
    """The day of each of ``rows`` trips: quotas by weekday weight (largest remainders), interleaved."""
    days = [date(year, month, day) for day in range(1, calendar.monthrange(year, month)[1] + 1)]
    total = sum(weights[day.weekday()] for day in days)
    exact = [rows * weights[day.weekday()] / total for day in days]
    quotas = [int(share) for share in exact]
    by_remainder = sorted(range(len(days)), key=lambda i: (quotas[i] - exact[i], i))
    for i in by_remainder[: rows - sum(quotas)]:
        quotas[i] += 1
    # Day i's k-th trip sits at (k + 1/2) / quota of the way through the file.
    turns = sorted(((k + 0.5) / quota, i) for i, quota in enumerate(quotas) for k in range(quota))
    return [days[i] for _, i in turns]


def spread_over_month(source: Path, destination: Path, weights: list[float] | None = None) -> Path:
    """``source``'s rows with their in-month pickups dealt over every day of the month (see above)."""
    weights = weights or weekday_weights()
    with gzip.open(source, "rt", newline="") as reader:
        lines = reader.read().splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(",")
    pickup, dropoff = (header.index(name) for name in TIMES)

    def in_month(line: str) -> bool:
        field = line.split(",")[pickup]
        return bool(field) and datetime.fromisoformat(field).timetuple()[:2] == (YEAR, MONTH)

    movable = [i for i in range(1, len(lines)) if in_month(lines[i])]
    for i, day in zip(movable, day_sequence(len(movable), YEAR, MONTH, weights), strict=True):
        body = lines[i].rstrip("\r\n")
        # The sample has no quoted fields, so a split keeps every other byte of the line as it was.
        fields = body.split(",")
        picked_up = datetime.fromisoformat(fields[pickup])
        moved = datetime.combine(day, picked_up.time())
        fields[pickup] = str(moved)
        if fields[dropoff]:
            fields[dropoff] = str(moved + (datetime.fromisoformat(fields[dropoff]) - picked_up))
        lines[i] = ",".join(fields) + lines[i][len(body) :]
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Written whole or not at all; mtime 0: the same bytes on every rebuild.
    with (
        tempfile.NamedTemporaryFile(dir=destination.parent, prefix=".building-", delete=False) as scratch,
        gzip.GzipFile(fileobj=scratch, mode="wb", mtime=0, filename="") as raw,
        io.TextIOWrapper(raw, newline="") as sink,
    ):
        sink.writelines(lines)
    os.replace(scratch.name, destination)
    return destination


def trips_per_day(path: Path) -> dict[date, int]:
    """Pickups per day of a yellow file (for a quick look at a build)."""
    counts: dict[date, int] = defaultdict(int)
    with gzip.open(path, "rt", newline="") as lines:
        rows = csv.reader(lines)
        pickup = next(rows).index(TIMES[0])
        for row in rows:
            counts[datetime.fromisoformat(row[pickup]).date()] += 1
    return dict(sorted(counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description="Spread the yellow sample's real trips over its month.")
    parser.add_argument(
        "--source", type=Path, default=YELLOW_SAMPLE, help="the real rows, gzip CSV (default: the sample)"
    )
    parser.add_argument("--destination", type=Path, default=YELLOW_SAMPLE)
    args = parser.parse_args()
    path = spread_over_month(args.source, args.destination)
    counts = trips_per_day(path)
    low, high = min(counts.values()), max(counts.values())
    print(f"{path}: {sum(counts.values())} trips, {low} to {high} a day over {len(counts)} days")


if __name__ == "__main__":
    main()
