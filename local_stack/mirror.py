"""The local stand-in's folder: the real samples, plus constructed months that fill a range.

The samples (``data/tlc``) have one or two months per family, and not the same months. A schedule
needs every family the course mirror publishes in every month of its range, so the local stack
serves the samples and, for each month of the range a family's samples do not cover, a
constructed file: the family's nearest sample in time (as ``include.source.families`` declares
them; the nearer one keeps a family's header era, e.g. FHV's 2019 and 2020-on spellings) with its
trip times moved into the month (trips that would leave the month are dropped, the others keep
their day, time and duration). Constructed files are marked as such in the folder's
``CONSTRUCTED.md``; tests compute what they expect from the files served, never from the samples.

The bytes depend only on the range, so two builds (here and in docker compose's ``tlc-mirror``)
serve the same files. Build a folder with
``python -m local_stack.mirror FOLDER [--first 2020-10] [--last 2021-01]``; ``--serve HOST:PORT``
then serves it with ``local_stack.tlc_server`` (what docker compose's ``tlc-mirror`` runs).
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
from datetime import datetime
from pathlib import Path

from include.source.families import FAMILIES
from include.source.months import Month
from include.source.sources import SOURCES
from local_stack.tlc_server import SAMPLES, make_server

MIRROR = SOURCES["mirror"]
# The months the local stack's schedules cover (Variables taxi_first_month / taxi_last_month).
LOCAL_MONTHS = (Month(2020, 10), Month(2021, 1))


def nearest_sample(taxi: str, month: Month) -> tuple[Month, Path]:
    """The family's sample in the mirror's layout nearest to ``month`` (the later one on a tie)."""
    samples = [
        (Month.parse(name.rsplit("_", 1)[-1].split(".", 1)[0]), SAMPLES / name)
        for name in FAMILIES[taxi].samples
        if name.startswith(f"{taxi}/")
    ]
    return min(samples, key=lambda sample: (abs(_index(sample[0]) - _index(month)), -_index(sample[0])))


def _index(month: Month) -> int:
    return month.year * 12 + month.month


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
        source_month, source = nearest_sample(taxi, month)
        written = moved_month(source, source_month, month, Path(scratch) / path.name)
        os.replace(written, path)


def build(destination: Path, first: Month = LOCAL_MONTHS[0], last: Month = LOCAL_MONTHS[1]) -> Path:
    """Fill ``destination`` with the samples and every family's months from ``first`` to ``last``."""
    shutil.copytree(SAMPLES, destination, dirs_exist_ok=True)
    constructed = []
    for month in months(first, last):
        for taxi in MIRROR.first_months:
            path = destination / MIRROR.file_path.format(taxi=taxi, month=month)
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
