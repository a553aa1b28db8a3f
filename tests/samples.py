"""The real TLC sample files shipped in ``data/tlc``, and small real slices of them for unit tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd

from local_stack.tlc_server import SAMPLES

YELLOW_2021_01 = SAMPLES / "yellow" / "yellow_tripdata_2021-01.csv.gz"
GREEN_2020_10 = SAMPLES / "green" / "green_tripdata_2020-10.csv.gz"
SAMPLE_FILES = {"yellow": YELLOW_2021_01, "green": GREEN_2020_10}


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
