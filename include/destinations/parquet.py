"""Write TLC record batches as Parquet: one file per month, and a dataset partitioned by day.

Every file of a colour is written with the colour's declared Arrow schema (nullable integers stay
integers, timestamps are microseconds, an all-empty column keeps its type), so the Parquet of any
two months is identical in schema and BigQuery loads them into one table without a clash.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Timestamps stay microseconds (not the deprecated INT96), readable by BigQuery, Spark and DuckDB.
_WRITE_OPTIONS = {
    "compression": "snappy",
    "coerce_timestamps": "us",
    "use_deprecated_int96_timestamps": False,
}


# Rows per row group: readers (BigQuery, DuckDB, Spark) scan a row group at a time and prefer them
# large, while holding one in memory before it is written should cost tens of MB, not hundreds.
ROW_GROUP_ROWS = 128 << 10
# Rows per batch when an existing file is split into days.
PARTITION_BATCH_ROWS = 16_000
_EPOCH = date(1970, 1, 1)


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


# Daily files: a day's rows are held until a row group's worth has come, so a file gets row
# groups of about DAY_ROW_GROUP_ROWS rows. Days come interleaved (a TLC file is only roughly in
# time order), so all pending days together hold at most MAX_PENDING_ROWS rows: past that, the
# day holding most is written out early. Memory then depends on neither the month's size nor its
# number of days: 256 Ki rows are about 40 MB of a green or yellow month's columns.
DAY_ROW_GROUP_ROWS = 64 << 10
MAX_PENDING_ROWS = 256 << 10


class DailyPartitionWriter:
    """Write a stream of batches into one Parquet file per pickup day, Hive style, as it passes.

    ``pickup_column`` gives each row its day; or, with ``pickup_column=None``, the batches already
    carry ``partition_column`` and it is taken out of the files (Hive partitioning keeps it in the
    path). The files hold ``schema``'s columns, each day in the order its rows came, in one file,
    so its name can be fixed and a rerun overwrites it.

    Our own few lines instead of ``pyarrow.dataset.write_dataset``: fed from a stream, Arrow's
    dataset writer queues up to 64 Mi rows ahead of its file writers (a bound Python cannot
    set), which held 0.9 GB of a 7-million-row month, and without ``min_rows_per_group`` it wrote
    a row group per incoming batch (hundreds of tiny row groups per day).
    """

    def __init__(
        self,
        folder: Path,
        schema: pa.Schema,
        partition_column: str,
        pickup_column: str | None = None,
        row_group_rows: int = DAY_ROW_GROUP_ROWS,
        max_pending_rows: int = MAX_PENDING_ROWS,
    ) -> None:
        self.folder, self.schema, self.partition_column = folder, schema, partition_column
        self.pickup_column = pickup_column
        self.row_group_rows, self.max_pending_rows = row_group_rows, max_pending_rows
        self.rows = 0
        self.pending_rows = 0
        self._pending: dict[int, list[pa.RecordBatch]] = {}
        self._pending_counts: dict[int, int] = {}
        self._writers: dict[int, pq.ParquetWriter] = {}
        self._written: set[int] = set()

    def observe(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Pass the batches through unchanged, writing each one's rows into their days on the way."""
        for batch in batches:
            self.write(batch)
            yield batch

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        if self.pickup_column is None:
            days = batch.column(self.partition_column)
            batch = batch.drop_columns([self.partition_column])
        else:
            days = pc.cast(batch.column(self.pickup_column), pa.date32())
        if days.null_count:
            raise ValueError(f"{days.null_count} row(s) have no {self.partition_column}")
        self.rows += batch.num_rows
        numbers = days.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        if numbers[0] == numbers[-1] and (numbers == numbers[0]).all():
            self._add(int(numbers[0]), batch)
        else:
            # Grouped by day, each day's rows in the order they came: one take of the batch in
            # day order, then each day's slice copied (``concat_batches``), so that a day held
            # back does not keep the whole batch alive. A take per day cost 3.5 times as much.
            order = np.argsort(numbers, kind="stable")
            ordered = numbers[order]
            by_day = batch.take(pa.array(order))
            bounds = [0, *(np.flatnonzero(ordered[1:] != ordered[:-1]) + 1).tolist(), len(ordered)]
            for start, end in itertools.pairwise(bounds):
                self._add(int(ordered[start]), pa.concat_batches([by_day.slice(start, end - start)]))
        while self.pending_rows > self.max_pending_rows:
            self._flush(max(self._pending_counts, key=self._pending_counts.__getitem__))

    def _add(self, day: int, rows: pa.RecordBatch) -> None:
        self._pending.setdefault(day, []).append(rows)
        self._pending_counts[day] = self._pending_counts.get(day, 0) + rows.num_rows
        self.pending_rows += rows.num_rows
        if self._pending_counts[day] >= self.row_group_rows:
            self._flush(day)

    def _path(self, day: int) -> Path:
        return self.folder / f"{self.partition_column}={_EPOCH + timedelta(days=day)}" / "part-0.parquet"

    def _flush(self, day: int, last: bool = False) -> None:
        """Write the day's pending rows as a row group; a day written for the first time at the
        end is written whole and closed at once, so only days written early hold a file open."""
        rows = pa.Table.from_batches(self._pending.pop(day), self.schema)
        self.pending_rows -= self._pending_counts.pop(day)
        writer = self._writers.get(day)
        if writer is None:
            path = self._path(day)
            path.parent.mkdir(parents=True)
            writer = pq.ParquetWriter(path, self.schema, **_WRITE_OPTIONS)
            if last:
                with writer:
                    writer.write_table(rows)
                self._written.add(day)
                return
            self._writers[day] = writer
        writer.write_table(rows)

    def close(self) -> list[Partition]:
        """Write what is pending, close every file, and return the days' files in day order."""
        for day in sorted(self._pending):
            self._flush(day, last=True)
        for day, writer in self._writers.items():
            writer.close()
            self._written.add(day)
        self._writers.clear()
        return [Partition(_EPOCH + timedelta(days=day), self._path(day)) for day in sorted(self._written)]

    def abort(self) -> None:
        """Close the open files without writing what is pending (a failed stream's files are discarded)."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        self._pending.clear()
        self._pending_counts.clear()
        self.pending_rows = 0

    def __enter__(self) -> DailyPartitionWriter:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is not None:
            self.abort()


def write_daily_partitions(
    source: Path, pickup_column: str | None, partition_column: str, folder: Path
) -> list[Partition]:
    """Split a month's Parquet file into one file per pickup day, Hive style, under ``folder``.

    The day is derived from ``pickup_column``, or read from ``partition_column`` when the file
    already has it (``pickup_column=None``); see ``DailyPartitionWriter``.
    """
    month = pq.ParquetFile(source)
    schema = month.schema_arrow
    if pickup_column is None:
        schema = schema.remove(schema.get_field_index(partition_column))
    with DailyPartitionWriter(folder, schema, partition_column, pickup_column) as days:
        for batch in month.iter_batches(batch_size=PARTITION_BATCH_ROWS):
            days.write(batch)
        return days.close()
