"""The local stand-in's folder: the real samples, plus constructed months that fill a range.

The samples (``data/tlc``) have one month per family, and not the same month: yellow 2021-01, green
2020-10, FHV 2019-01 and 2021-01. A schedule needs every family in every month of its range, so the
local stack serves the samples and, for each month of the range a family's sample does not cover,
a constructed file: that family's real sample with its trip times moved into the month (trips
that would leave the month are dropped, the others keep their day, time and duration), or for FHV
a file built by ``local_stack.fhv_samples``. Constructed files are marked as such in the folder's
``CONSTRUCTED.md``; tests compute what they expect from the files served, never from the samples.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from include.months import Month
from local_stack.fhv_samples import write_sample
from local_stack.tlc_server import SAMPLES

# The families' real samples the constructed months are moved from.
BASE_SAMPLES = {
    "yellow": (Month(2021, 1), SAMPLES / "yellow" / "yellow_tripdata_2021-01.csv.gz"),
    "green": (Month(2020, 10), SAMPLES / "green" / "green_tripdata_2020-10.csv.gz"),
}
# The months the local stack's schedules cover (Variables taxi_first_month / taxi_last_month).
LOCAL_MONTHS = (Month(2020, 10), Month(2021, 1))


def moved_month(source: Path, source_month: Month, month: Month, destination: Path) -> Path:
    """``source``'s trips with their times moved from ``source_month`` into ``month``."""
    shift = timedelta(days=month.first_day.toordinal() - source_month.first_day.toordinal())
    with gzip.open(source, "rt", newline="") as reader:
        rows = csv.reader(reader)
        header = next(rows)
        times = [i for i, name in enumerate(header) if name.endswith(("pickup_datetime", "dropoff_datetime"))]
        pickup = next(i for i in times if header[i].endswith("pickup_datetime"))
        destination.parent.mkdir(parents=True, exist_ok=True)
        # mtime 0: the same bytes on every rebuild, so the files' ETags only change with their rows.
        with gzip.GzipFile(destination, "wb", mtime=0) as raw, io.TextIOWrapper(raw, newline="") as sink:
            writer = csv.writer(sink, lineterminator="\r\n")  # the mirror's line ends
            writer.writerow(header)
            for row in rows:
                if row[pickup]:
                    moved = datetime.fromisoformat(row[pickup]) + shift
                    if source_month.start <= moved - shift < source_month.end and not (
                        month.start <= moved < month.end
                    ):
                        continue  # a day the target month does not have
                for i in times:
                    if row[i]:
                        row[i] = str(datetime.fromisoformat(row[i]) + shift)
                writer.writerow(row)
    return destination


def build(destination: Path, first: Month = LOCAL_MONTHS[0], last: Month = LOCAL_MONTHS[1]) -> Path:
    """Fill ``destination`` with the samples and every family's months from ``first`` to ``last``."""
    shutil.copytree(SAMPLES, destination, dirs_exist_ok=True)
    constructed = []
    month = first
    while month <= last:
        for taxi in ("yellow", "green", "fhv"):
            path = destination / taxi / f"{taxi}_tripdata_{month}.csv.gz"
            if (SAMPLES / taxi / path.name).exists() or path.exists():
                continue
            if taxi == "fhv":
                write_sample(month.year, month.month, path.parent)
            else:
                source_month, source = BASE_SAMPLES[taxi]
                moved_month(source, source_month, month, path)
            constructed.append(path.relative_to(destination))
        month = month.next
    notes = destination / "CONSTRUCTED.md"
    listed = notes.read_text().splitlines() if notes.exists() else []
    lines = sorted(set(listed[2:]) | {f"- {path}" for path in constructed})
    notes.write_text(
        "Constructed by local_stack/mirror.py (see its docstring), not real TLC files:\n\n"
        + "\n".join(lines)
        + "\n"
    )
    return destination
