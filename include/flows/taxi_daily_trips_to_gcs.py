"""The steps of ``taxi_daily_trips_to_gcs``: export one pickup day from Postgres to GCS."""

from __future__ import annotations

import logging
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pyarrow as pa

from include import gcs, postgres
from include.extract import read_csv_batches
from include.parquet import write_parquet
from include.schema import SOURCE_MONTH_COLUMN, schema_for

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

log = logging.getLogger(__name__)


def daily_object_name(taxi: str, day: date) -> str:
    """``{taxi}/{YYYY}/{MM}/{DD}/daily_trips.parquet``: one object per colour and day."""
    return f"{taxi}/{day:%Y/%m/%d}/daily_trips.parquet"


def export_day_to_gcs(
    conn: psycopg.Connection, hook: GCSHook, bucket: str, schema_name: str, taxi: str, day: date
) -> int:
    """Write one pickup day of a colour's Postgres table to its daily object; return the rows.

    A rerun overwrites the same object. A day without trips writes nothing, so an empty file
    never hides a missing load.
    """
    schema = schema_for(taxi)
    table = postgres.monthly_table_name(taxi)
    columns = schema.snake_case_arrow_schema.append(pa.field(SOURCE_MONTH_COLUMN, pa.date32()))
    with tempfile.TemporaryDirectory(prefix="daily-") as folder:
        csv_path, parquet_path = Path(folder) / "day.csv", Path(folder) / "daily_trips.parquet"
        postgres.copy_day_to_csv(conn, schema_name, table, schema.pickup_column, day, csv_path)
        if csv_path.stat().st_size == 0:
            log.info(
                "No %s trips with a pickup on %s in %s.%s: nothing written", taxi, day, schema_name, table
            )
            return 0
        rows = write_parquet(read_csv_batches(csv_path, columns), columns, parquet_path)
        object_name = daily_object_name(taxi, day)
        gcs.upload(hook, bucket, {object_name: parquet_path})
    log.info("Wrote %d %s trips of %s to gs://%s/%s", rows, taxi, day, bucket, object_name)
    return rows
