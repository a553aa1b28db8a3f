"""What the flows must produce, computed independently from the source files with pandas: the
tests' and the benchmarks' reference.

Nothing here imports the code under test: the documented cleaning rules are re-applied by hand.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

# Written out, not read from include/source/families.py: the reference stays independent of the code.
PICKUP = {
    "yellow": "tpep_pickup_datetime",
    "green": "lpep_pickup_datetime",
    "fhv": "pickup_datetime",
    "fhvhv": "pickup_datetime",
}


def read(path: Path) -> pd.DataFrame:
    """A whole TLC file, CSV or Parquet, with its pickup column as datetimes."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, low_memory=False)
    taxi = path.name.split("_", 1)[0]
    frame[PICKUP[taxi]] = pd.to_datetime(frame[PICKUP[taxi]])
    return frame


def kept(path: Path) -> pd.DataFrame:
    """The rows the monthly rules keep: a pickup time, and not zero passengers (where counted)."""
    frame = read(path)
    taxi = path.name.split("_", 1)[0]
    frame = frame[frame[PICKUP[taxi]].notna()]
    if "passenger_count" in frame:
        frame = frame[frame.passenger_count != 0]
    return frame


def rows(path: Path) -> int:
    return len(kept(path))


def rows_per_day(path: Path) -> dict[date, int]:
    taxi = path.name.split("_", 1)[0]
    return kept(path)[PICKUP[taxi]].dt.date.value_counts().to_dict()


def low_trip_days(path: Path, month: str) -> list[date]:
    """The month's days with under half the trips of its median day with trips (the documented rule)."""
    first = pd.Timestamp(f"{month}-01")
    days = [day.date() for day in pd.date_range(first, first + pd.offsets.MonthEnd(0))]
    per_day = rows_per_day(path)
    median = float(pd.Series([per_day[day] for day in days if per_day.get(day)]).median())
    return [day for day in days if per_day.get(day, 0) < 0.5 * median]


def mirror_file(folder: Path, taxi: str, month: str) -> Path:
    return folder / taxi / f"{taxi}_tripdata_{month}.csv.gz"
