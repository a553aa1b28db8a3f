"""What the BigQuery tests load and how they read it back, independent of the code under test.

The Parquet is built here as ``taxi_api_to_gcs`` publishes it (one object per colour and month:
snake_case columns in the declared order, declared types, times without a time zone, and a
``source_month`` DATE on every row), from the real sample CSVs and with pyarrow only.
"""

from __future__ import annotations

import csv
import gzip
import io
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

# How the TLC spells the columns whose snake_case name is not just the header in lower case.
_TLC_NAMES = {
    "vendorid": "vendor_id",
    "ratecodeid": "ratecode_id",
    "pulocationid": "pu_location_id",
    "dolocationid": "do_location_id",
}


def snake_case(header: str) -> str:
    return _TLC_NAMES.get(header.lower(), header.lower())


def sample_as_published(
    csv_gz: Path, columns: pa.Schema, month: date, *, rows: int | None = None, shift_days: int = 0
) -> pa.Table:
    """A TLC sample CSV with the shape of ``columns`` (declared columns it lacks are null).

    ``rows`` keeps the first rows only; ``shift_days`` moves both trip times, to make another
    real-shaped month out of one sample. ``source_month`` is ``month``'s first day on every row.
    """
    with gzip.open(csv_gz, "rt", newline="") as source:
        names = {snake_case(name): name for name in next(csv.reader(source))}
    types = {names[f.name]: f.type for f in columns if f.name in names}
    table = pacsv.read_csv(
        csv_gz,
        convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)),
    )
    if rows is not None:
        table = table.slice(0, rows)
    arrays = []
    for field in columns:
        if field.name == "source_month":
            arrays.append(pa.array([month.replace(day=1)] * table.num_rows, pa.date32()))
        elif field.name in names:
            values = table.column(names[field.name])
            if shift_days and pa.types.is_timestamp(field.type):
                values = pc.add(values, pa.scalar(timedelta(days=shift_days), pa.duration("us")))
            arrays.append(values)
        else:
            arrays.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(arrays, schema=columns)


def upload_parquet(storage_client, bucket: str, name: str, table: pa.Table) -> str:
    """Write ``table`` as one Parquet object and return its ``gs://`` URI."""
    sink = io.BytesIO()
    pq.write_table(table, sink)
    storage_client.bucket(bucket).blob(name).upload_from_string(sink.getvalue())
    return f"gs://{bucket}/{name}"


def rows(client, sql: str) -> list[tuple]:
    return [tuple(row.values()) for row in client.query(sql).result()]


def table_state(client, table: str, where: str = "TRUE") -> tuple[int, int]:
    """Row count and an order-independent digest of every row of ``table`` (backquoted ref)."""
    [(count, digest)] = rows(
        client,
        f"SELECT COUNT(*), BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(t))) FROM {table} AS t WHERE {where}",
    )
    return count, digest
