"""The benchmark's inputs, all made from real TLC files in ``data/tlc``, cached outside git.

A full-size month is the real green October 2020 file (95,120 trips, one whole month) with each
block of ``BLOCK_ROWS`` consecutive rows repeated 75 times before the next block: 7,134,000
trips, about a yellow month's size, with a yellow month's trips per day (about 230,000). Repeating
block by block keeps the file in the time order the TLC writes (a day's trips together, the few
strays where they were), where repeating the whole month would cycle through the month 75 times,
as no real file does. Every trip keeps its date, so the value distribution and the cleaning
outcome are the real file's; a block is larger than gzip's 32 KB window, so its copies compress
no better than new rows and the gzip ratio stays the real file's too. The Parquet inputs repeat
the TLC's own January 2024 green file whole, in row groups of up to a million rows, as the TLC
writes them.

Inputs are written once into ``bench/cache/`` (git-ignored) and reused while their source and
recipe are unchanged: the 7-million-row month takes about 20 seconds to compress.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import re
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from include.source.months import Month

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / "cache"
TAXI = "green"
CSV_MONTH = Month(2020, 10)
CSV_SOURCE = REPO / "data" / "tlc" / "green" / "green_tripdata_2020-10.csv.gz"
PARQUET_MONTH = Month(2024, 1)
PARQUET_SOURCE = REPO / "data" / "tlc" / "trip-data" / "green_tripdata_2024-01.parquet"
# The TLC writes row groups of about a million rows; smaller ones keep the 1x file realistic too.
PARQUET_ROW_GROUP = 1 << 20
# Rows repeated together by a block recipe: about 300 KB of CSV, ten times gzip's window.
BLOCK_ROWS = 2_000
# A date in a CSV row, and the source month's prefix of a pickup's date (moved_month).
DATE = re.compile(rb"\d{4}-\d{2}-\d{2}")
CSV_PREFIX = f"{CSV_MONTH}-".encode()


@dataclass(frozen=True)
class Recipe:
    """Which rows of a source make an input: the first ``first_rows`` (None: all), ``repeat``
    times; with ``blocks``, each block of ``BLOCK_ROWS`` rows is repeated before the next (CSV)."""

    repeat: int = 1
    first_rows: int | None = None
    blocks: bool = False

    @property
    def tag(self) -> str:
        first = f"_first{self.first_rows}" if self.first_rows is not None else ""
        blocks = f"_blocks{BLOCK_ROWS}" if self.blocks else ""
        return f"{first}{blocks}_x{self.repeat}"


def _cached(target: Path, source: Path, recipe: Recipe) -> bool:
    """Whether ``target`` was made from this very ``source`` by this recipe (a stamp beside it)."""
    stamp = target.with_suffix(target.suffix + ".stamp")
    expected = json.dumps(
        {"source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "recipe": recipe.tag}
    )
    if target.exists() and stamp.exists() and stamp.read_text() == expected:
        return True
    stamp.unlink(missing_ok=True)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    return False


def _stamp(target: Path, source: Path, recipe: Recipe) -> None:
    stamp = target.with_suffix(target.suffix + ".stamp")
    stamp.write_text(
        json.dumps({"source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "recipe": recipe.tag})
    )


def csv_month(recipe: Recipe, folder: Path = CACHE) -> Path:
    """The green 2020-10 CSV rows of ``recipe``, gzipped, under the mirror's file name in a folder
    of their own (``{folder}/{tag}/green/green_tripdata_2020-10.csv.gz``), so the folder above
    ``green/`` can be served as the mirror's root."""
    target = folder / f"csv{recipe.tag}" / TAXI / CSV_SOURCE.name
    if _cached(target, CSV_SOURCE, recipe):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(CSV_SOURCE, "rb") as source:
        header = source.readline()
        lines = list(itertools.islice(source, recipe.first_rows))
    return _write_repeated(target, header, lines, recipe)


def parquet_month(recipe: Recipe, folder: Path = CACHE) -> Path:
    """The TLC's green 2024-01 Parquet rows of ``recipe``, as the TLC's layout names the file."""
    target = folder / f"parquet{recipe.tag}" / "trip-data" / PARQUET_SOURCE.name
    if _cached(target, PARQUET_SOURCE, recipe):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pq.read_table(PARQUET_SOURCE)
    if recipe.first_rows is not None:
        table = table.slice(0, recipe.first_rows)
    repeated = pa.concat_tables([table] * recipe.repeat)  # no copy: the same chunks, listed again
    pq.write_table(repeated, target, row_group_size=PARQUET_ROW_GROUP, compression="snappy")
    _stamp(target, PARQUET_SOURCE, recipe)
    return target


def moved_month(month: Month, recipe: Recipe, folder: Path = CACHE) -> Path:
    """The green 2020-10 rows of ``recipe`` moved into ``month``, under the mirror's name for it
    (``{folder}/moved{tag}/green/green_tripdata_{month}.csv.gz``, one folder for every month).

    Every timestamp of a row moves by the whole days from 2020-10-01 to the month's first day, so
    a trip keeps its day of the month, its hour and its length, and the few strays of the real
    file stay strays. The trips of days the month does not have (the 31st of a 30-day month, the
    30th and 31st of February 2020) are left out, not piled onto another day. Then each block of
    ``BLOCK_ROWS`` rows is repeated ``recipe.repeat`` times in turn, as ``csv_month`` does.
    """
    target = folder / f"moved{recipe.tag}" / TAXI / f"{TAXI}_tripdata_{month}.csv.gz"
    if _cached(target, CSV_SOURCE, recipe):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    shift = month.first_day - CSV_MONTH.first_day
    last_day = (month.next.first_day - month.first_day).days
    moved_dates: dict[bytes, bytes] = {}

    def moved(match: re.Match[bytes]) -> bytes:
        day = match[0]
        if day not in moved_dates:
            moved_dates[day] = (date.fromisoformat(day.decode()) + shift).isoformat().encode()
        return moved_dates[day]

    with gzip.open(CSV_SOURCE, "rb") as source:
        header = source.readline()
        lines = [
            DATE.sub(moved, line)
            for line in itertools.islice(source, recipe.first_rows)
            # The pickup's day (the second field starts with the date) must exist in the month.
            if not line.split(b",", 2)[1].startswith(CSV_PREFIX)
            or int(line.split(b",", 2)[1][8:10]) <= last_day
        ]
    return _write_repeated(target, header, lines, recipe)


def _write_repeated(target: Path, header: bytes, lines: list[bytes], recipe: Recipe) -> Path:
    """``header``, then each block of ``lines`` repeated ``recipe.repeat`` times in turn, gzipped."""
    # Without ``blocks`` the whole body is one block: repeating it in turn repeats the file.
    step = BLOCK_ROWS if recipe.blocks else max(len(lines), 1)
    blocks = [b"".join(lines[start : start + step]) for start in range(0, len(lines), step)]
    # One gzip member, as the mirror's files are; level 6 is gzip's default and the mirror's ratio.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    with target.open("wb") as sink:
        sink.write(compressor.compress(header))
        for block in blocks:
            for _ in range(recipe.repeat):
                sink.write(compressor.compress(block))
        sink.write(compressor.flush())
    _stamp(target, CSV_SOURCE, recipe)
    return target
