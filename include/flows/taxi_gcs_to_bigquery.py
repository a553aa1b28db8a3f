"""The steps of ``taxi_gcs_to_bigquery``: load the monthly Parquet from GCS into BigQuery, and build
the daily summary there.

A month goes through a staging table of its own (the Parquet's columns, names and order as the
TLC writes them), then into the colour's table, renamed to snake_case, in one transaction that
first deletes that month: a rerun leaves exactly one copy, and a failure leaves the last one.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pacsv

from include import gcs
from include.bigquery import BigQuery
from include.download import download
from include.months import Month
from include.parquet import write_parquet
from include.schema import SOURCE_MONTH_COLUMN, TaxiSchema

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

log = logging.getLogger(__name__)

ZONE_TABLE = "taxi_zone_lookup"
ZONE_SCHEMA = pa.schema(
    [
        ("location_id", pa.int64()),
        ("borough", pa.string()),
        ("zone", pa.string()),
        ("service_zone", pa.string()),
    ]
)


def monthly_table(taxi: str) -> str:
    return f"{taxi}_tripdata"


def summary_table(taxi: str) -> str:
    return f"{taxi}_daily_summary"


def load_month(bq: BigQuery, schema: TaxiSchema, month: Month, uri: str, run_key: str) -> int:
    """Load one month's Parquet into ``{taxi}_tripdata``, replacing that month; return its rows.

    The target is partitioned by pickup day and clustered on the pickup and drop-off zones, what
    most queries on trips filter and join on.
    """
    staging = f"{monthly_table(schema.colour)}_staging_{month.year}{month.month:02d}_{run_key}"
    target = monthly_table(schema.colour)
    target_columns = schema.snake_case_arrow_schema.append(pa.field(SOURCE_MONTH_COLUMN, pa.date32()))
    # A literal built from a validated Month (the stand-in does not bind parameters in scripts).
    source_month = f"DATE '{month.first_day.isoformat()}'"
    bq.create_table(
        target,
        target_columns,
        f"PARTITION BY DATE({schema.pickup_column}) CLUSTER BY pu_location_id, do_location_id",
    )
    try:
        bq.load_parquet(staging, schema.arrow_schema, uri)
        renamed = ", ".join(f"{c.source_name} AS {c.name}" for c in schema.columns)
        bq.query(
            "BEGIN TRANSACTION;"
            f" DELETE FROM {bq.ref(target)} WHERE {SOURCE_MONTH_COLUMN} = {source_month};"
            f" INSERT INTO {bq.ref(target)} ({', '.join(target_columns.names)})"
            f" SELECT {renamed}, {source_month} FROM {bq.ref(staging)};"
            " COMMIT TRANSACTION;"
        )
    finally:
        bq.drop_table(staging)
    rows = bq.count(target, f"{SOURCE_MONTH_COLUMN} = {source_month}")
    log.info("Loaded %d rows of %s into %s from %s", rows, month, bq.ref(target), uri)
    return rows


def load_zone_lookup(bq: BigQuery, uri: str) -> int:
    """Replace the zone lookup table with the Parquet at ``uri``; return its rows."""
    bq.load_parquet(ZONE_TABLE, ZONE_SCHEMA, uri)
    return bq.count(ZONE_TABLE)


def refresh_daily_summary(bq: BigQuery, schema: TaxiSchema) -> int:
    """Rebuild ``{taxi}_daily_summary``: trips, revenue and mean distance per day and pickup borough.

    Built from the whole trips table in one statement, so it always matches what is loaded.
    Pickups in zones missing from the lookup count under ``Unknown``.
    """
    table = summary_table(schema.colour)
    bq.query(
        f"CREATE OR REPLACE TABLE {bq.ref(table)} PARTITION BY pickup_day AS"
        f" SELECT DATE(t.{schema.pickup_column}) AS pickup_day,"
        " COALESCE(z.borough, 'Unknown') AS pickup_borough,"
        " CAST(COUNT(*) AS INT64) AS trips,"
        " CAST(SUM(t.total_amount) AS FLOAT64) AS revenue,"
        " CAST(AVG(t.trip_distance) AS FLOAT64) AS avg_trip_distance"
        f" FROM {bq.ref(monthly_table(schema.colour))} AS t"
        f" LEFT JOIN {bq.ref(ZONE_TABLE)} AS z ON t.pu_location_id = z.location_id"
        " GROUP BY pickup_day, pickup_borough"
    )
    rows = bq.count(table)
    log.info("Rebuilt %s: %d (day, borough) rows", bq.ref(table), rows)
    return rows


ZONE_LOOKUP_OBJECT = "misc/taxi_zone_lookup.parquet"


def publish_zone_lookup(base_url: str, hook: GCSHook, bucket: str) -> str:
    """Download the TLC's taxi zone lookup and publish it as Parquet; return its ``gs://`` URI.

    The mirror has it at ``{base}/misc/taxi_zone_lookup.csv``, with CamelCase headers that are
    renamed to the snake_case of ``ZONE_SCHEMA``.
    """
    source_names = ["LocationID", "Borough", "Zone", "service_zone"]
    with tempfile.TemporaryDirectory(prefix="zones-") as folder:
        csv_path, parquet_path = (
            Path(folder) / "taxi_zone_lookup.csv",
            Path(folder) / "taxi_zone_lookup.parquet",
        )
        download(f"{base_url.rstrip('/')}/misc/taxi_zone_lookup.csv", csv_path)
        types = dict(zip(source_names, ZONE_SCHEMA.types, strict=True))
        zones = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(column_types=types))
        zones = zones.select(source_names).rename_columns(ZONE_SCHEMA.names)
        write_parquet(zones.to_batches(), ZONE_SCHEMA, parquet_path)
        [uri] = gcs.upload(hook, bucket, {ZONE_LOOKUP_OBJECT: parquet_path})
    return uri
