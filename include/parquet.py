"""Write TLC record batches as Parquet: one file per month, and a dataset partitioned by day.

Every file of a colour is written with the colour's declared Arrow schema (nullable integers stay
integers, timestamps are microseconds, an all-empty column keeps its type), so the Parquet of any
two months is identical in schema and BigQuery loads them into one table without a clash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from include.transform import add_pickup_date

# Timestamps stay microseconds (not the deprecated INT96), readable by BigQuery, Spark and DuckDB.
_WRITE_OPTIONS = {
    "compression": "snappy",
    "coerce_timestamps": "us",
    "use_deprecated_int96_timestamps": False,
}


# Rows per row group: readers (BigQuery, DuckDB, Spark) scan a row group at a time and prefer them
# large, while holding one in memory before it is written should cost tens of MB, not hundreds.
ROW_GROUP_ROWS = 128 << 10


def write_parquet(batches: Iterable[pa.RecordBatch], schema: pa.Schema, path: Path) -> int:
    """Stream batches into one Parquet file in row groups of about ``ROW_GROUP_ROWS`` rows; return the rows.

    The CSV is read in small blocks to keep memory flat, so the batches are gathered into row
    groups here instead of becoming one small row group each.
    """
    rows = pending_rows = 0
    pending: list[pa.RecordBatch] = []
    with pq.ParquetWriter(path, schema, **_WRITE_OPTIONS) as writer:
        for batch in batches:
            pending.append(batch)
            rows += batch.num_rows
            pending_rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema))
                pending, pending_rows = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema))
    return rows


@dataclass(frozen=True)
class Partition:
    """One day's file of a Hive-partitioned dataset, ready to upload."""

    day: date
    path: Path

    def object_name(self, dataset_prefix: str, partition_column: str, file_name: str) -> str:
        """``{prefix}/{column}=YYYY-MM-DD/{file_name}``: the Hive layout BigQuery and Spark read."""
        return f"{dataset_prefix}/{partition_column}={self.day.isoformat()}/{file_name}"


def write_daily_partitions(
    source: Path, pickup_column: str | None, partition_column: str, folder: Path
) -> list[Partition]:
    """Split a month's Parquet file into one file per pickup day, Hive style, under ``folder``.

    The day is derived from ``pickup_column``, or read from ``partition_column`` when the file
    already has it (``pickup_column=None``). The partition column lives in the path, not in the
    files, as Hive partitioning expects. Each day gets exactly one file, so its name can be fixed
    and a rerun overwrites it.
    """
    month = pads.dataset(source)
    if pickup_column is None:
        scanner = month.scanner()
    else:
        with_day = (add_pickup_date(batch, pickup_column, partition_column) for batch in month.to_batches())
        schema = month.schema.append(pa.field(partition_column, pa.date32()))
        scanner = pads.Scanner.from_batches(with_day, schema=schema)
    pads.write_dataset(
        scanner,
        folder,
        format="parquet",
        partitioning=pads.partitioning(pa.schema([pa.field(partition_column, pa.date32())]), flavor="hive"),
        basename_template="part-{i}.parquet",
        existing_data_behavior="error",
        file_options=pads.ParquetFileFormat().make_write_options(**_WRITE_OPTIONS),
    )
    partitions = []
    for path in sorted(folder.glob(f"{partition_column}=*/part-*.parquet")):
        if path.name != "part-0.parquet":
            raise AssertionError(f"{path.parent.name} was split into several files")
        day = date.fromisoformat(path.parent.name.split("=", 1)[1])
        partitions.append(Partition(day, path))
    return partitions
