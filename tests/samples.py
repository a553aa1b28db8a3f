"""The TLC sample files in ``data/tlc`` (its README says which are real), and slices of them for tests."""

from __future__ import annotations

import csv
import gzip
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from local_stack.tlc_server import SAMPLES

YELLOW_2021_01 = SAMPLES / "yellow" / "yellow_tripdata_2021-01.csv.gz"
GREEN_2020_10 = SAMPLES / "green" / "green_tripdata_2020-10.csv.gz"
FHV_2019_01 = SAMPLES / "fhv" / "fhv_tripdata_2019-01.csv.gz"  # constructed, with the 2019 header
FHV_2021_01 = SAMPLES / "fhv" / "fhv_tripdata_2021-01.csv.gz"  # constructed, with the later header
GREEN_2024_01_PARQUET = SAMPLES / "trip-data" / "green_tripdata_2024-01.parquet"  # the TLC's own
FHVHV_2024_01_PARQUET = SAMPLES / "trip-data" / "fhvhv_tripdata_2024-01.parquet"  # constructed
SAMPLE_FILES = {"yellow": YELLOW_2021_01, "green": GREEN_2020_10, "fhv": FHV_2021_01}


def head_lines(path: Path, count: int) -> list[str]:
    """The header and the first ``count - 1`` data lines of a sample file."""
    with gzip.open(path, "rt") as source:
        return [next(source) for _ in range(count)]


def write_csv(folder: Path, name: str, lines: list[str]) -> Path:
    """Write lines as a gzip CSV, the form the TLC publishes."""
    path = folder / name
    with gzip.open(path, "wt") as sink:
        sink.writelines(lines)
    return path


def read_with_pandas(path: Path, **options) -> pd.DataFrame:
    """The whole file with pandas: an independent reading to check the pipeline's numbers against."""
    return pd.read_csv(path, low_memory=False, **options)


def write_shifted_month(source: Path, destination: Path, days: int) -> None:
    """A second real-shaped month: a sample's rows with both trip times moved by ``days``.

    January and December both have 31 days, so shifting yellow 2021-01 by -31 days gives a
    December with the same rows; every other field is copied as it is.
    """
    with gzip.open(source, "rt", newline="") as reader, gzip.open(destination, "wt", newline="") as writer:
        rows = csv.reader(reader)
        out = csv.writer(writer, lineterminator="\n")
        header = next(rows)
        out.writerow(header)
        times = [i for i, name in enumerate(header) if name.endswith(("pickup_datetime", "dropoff_datetime"))]
        for row in rows:
            for i in times:
                row[i] = str(datetime.fromisoformat(row[i]) + timedelta(days=days))
            out.writerow(row)


def two_month_mirror(folder: Path) -> Path:
    """A TLC mirror folder with yellow 2021-01 (the sample) and 2020-12 (its rows moved back 31 days)."""
    mirror = folder / "mirror"
    (mirror / "yellow").mkdir(parents=True)
    (mirror / "yellow" / YELLOW_2021_01.name).write_bytes(YELLOW_2021_01.read_bytes())
    write_shifted_month(YELLOW_2021_01, mirror / "yellow" / "yellow_tripdata_2020-12.csv.gz", days=-31)
    return mirror


def mirror_with_a_gap(folder: Path, gap: range) -> Path:
    """A TLC mirror folder whose yellow 2021-01 is the sample without the trips of the days of
    January in ``gap``: a month with a hole, as a feed that stopped for a few days would give."""
    mirror = folder / "gap-mirror"
    (mirror / "yellow").mkdir(parents=True)
    with (
        gzip.open(YELLOW_2021_01, "rt", newline="") as reader,
        gzip.open(mirror / "yellow" / YELLOW_2021_01.name, "wt", newline="") as writer,
    ):
        rows = csv.reader(reader)
        out = csv.writer(writer, lineterminator="\n")
        header = next(rows)
        out.writerow(header)
        pickup = header.index("tpep_pickup_datetime")
        for row in rows:
            picked_up = datetime.fromisoformat(row[pickup])
            if not ((picked_up.year, picked_up.month) == (2021, 1) and picked_up.day in gap):
                out.writerow(row)
    return mirror
