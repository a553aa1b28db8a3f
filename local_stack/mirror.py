"""The local stand-in's folder: the real samples, plus constructed months that fill a range.

The samples (``data/tlc``) have one month per family, and not the same month: yellow 2021-01, green
2020-10, FHV 2019-01 and 2021-01. A schedule needs every family in every month of its range, so the
local stack serves the samples and, for each month of the range a family's sample does not cover,
a constructed file: that family's real sample with its trip times moved into the month (trips
that would leave the month are dropped, the others keep their day, time and duration), or for FHV
a file built by ``local_stack.fhv_samples``. Constructed files are marked as such in the folder's
``CONSTRUCTED.md``; tests compute what they expect from the files served, never from the samples.

The bytes depend only on the range, so two builds (here and in docker compose's ``tlc-mirror``)
serve the same files. Build a folder with
``python -m local_stack.mirror FOLDER [--first 2020-10] [--last 2021-01]``; ``--serve HOST:PORT``
then serves it with ``local_stack.tlc_server`` (what docker compose's ``tlc-mirror`` runs).

This module and ``fhv_samples`` run in the stand-ins' image too, which has no ``include/``: hence
the small ``Month`` below rather than ``include.source.months``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from local_stack.fhv_samples import write_sample
from local_stack.tlc_server import SAMPLES, make_server

TAXIS = ("yellow", "green", "fhv")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month, ``YYYY-MM`` as in the TLC file names."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        year, month = (int(part) for part in text.split("-"))
        if not 1 <= month <= 12:
            raise ValueError(f"{text!r} is not a month in the form YYYY-MM")
        return cls(year, month)

    @property
    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1)

    @property
    def end(self) -> datetime:
        return self.next.start

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


# The families' real samples the constructed months are moved from.
BASE_SAMPLES = {
    "yellow": (Month(2021, 1), SAMPLES / "yellow" / "yellow_tripdata_2021-01.csv.gz"),
    "green": (Month(2020, 10), SAMPLES / "green" / "green_tripdata_2020-10.csv.gz"),
}
# The months the local stack's schedules cover (Variables taxi_first_month / taxi_last_month).
LOCAL_MONTHS = (Month(2020, 10), Month(2021, 1))


def months(first: Month, last: Month) -> list[Month]:
    """``first`` to ``last``, both included."""
    span, month = [], first
    while month <= last:
        span.append(month)
        month = month.next
    return span


def moved_month(source: Path, source_month: Month, month: Month, destination: Path) -> Path:
    """``source``'s trips with their times moved from ``source_month`` into ``month``."""
    shift = month.start - source_month.start
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


def _construct(taxi: str, month: Month, path: Path) -> None:
    """Write ``path`` whole or not at all: a build stopped halfway (a container restarted) leaves
    no truncated file that the next build would take as done."""
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".building-") as scratch:
        if taxi == "fhv":
            written = write_sample(month.year, month.month, Path(scratch))
        else:
            source_month, source = BASE_SAMPLES[taxi]
            written = moved_month(source, source_month, month, Path(scratch) / path.name)
        os.replace(written, path)


def build(destination: Path, first: Month = LOCAL_MONTHS[0], last: Month = LOCAL_MONTHS[1]) -> Path:
    """Fill ``destination`` with the samples and every family's months from ``first`` to ``last``."""
    shutil.copytree(SAMPLES, destination, dirs_exist_ok=True)
    constructed = []
    for month in months(first, last):
        for taxi in TAXIS:
            path = destination / taxi / f"{taxi}_tripdata_{month}.csv.gz"
            if (SAMPLES / taxi / path.name).exists() or path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            _construct(taxi, month, path)
            constructed.append(path.relative_to(destination))
    notes = destination / "CONSTRUCTED.md"
    listed = notes.read_text().splitlines() if notes.exists() else []
    lines = sorted(set(listed[2:]) | {f"- {path}" for path in constructed})
    notes.write_text(
        "Constructed by local_stack/mirror.py (see its docstring), not real TLC files:\n\n"
        + "\n".join(lines)
        + "\n"
    )
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Build a TLC mirror folder: the samples plus constructed months."
    )
    parser.add_argument("folder", type=Path, help="where to build it (files already there are kept)")
    parser.add_argument(
        "--first", type=Month.parse, default=LOCAL_MONTHS[0], help="YYYY-MM (default %(default)s)"
    )
    parser.add_argument(
        "--last", type=Month.parse, default=LOCAL_MONTHS[1], help="YYYY-MM (default %(default)s)"
    )
    parser.add_argument("--serve", metavar="HOST:PORT", help="then serve the folder there, until stopped")
    args = parser.parse_args()
    if args.last < args.first:
        parser.error(f"--last {args.last} is before --first {args.first}")
    build(args.folder, args.first, args.last)
    print(f"{args.folder}: every family from {args.first} to {args.last}", flush=True)
    if args.serve:
        host, port = args.serve.rsplit(":", 1)
        server = make_server(args.folder, int(port), host)
        # As a container's first process, SIGTERM would be ignored: `docker compose stop` would wait.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print(f"serving {args.folder} on http://{args.serve}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
