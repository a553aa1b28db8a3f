"""Load the monthly Parquet from GCS into BigQuery, and build the daily summary there.

A month goes through a staging table of its own (the Parquet's columns, names and order as the
TLC writes them), then into the colour's table, renamed to snake_case, in one transaction that
first deletes that month: a rerun leaves exactly one copy, and a failure leaves the last one.
Every table is created with an explicit schema before anything is loaded into it, so nothing
depends on schema autodetection. The local stand-in's gaps are listed in docs/local-stand-ins.md;
the code here works unchanged on real BigQuery.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import pyarrow as pa

from include.months import Month
from include.postgres import SOURCE_MONTH_COLUMN
from include.schema import TaxiSchema

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

log = logging.getLogger(__name__)

DEFAULT_DATASET = "ny_taxi"
ZONE_TABLE = "taxi_zone_lookup"
ZONE_SCHEMA = pa.schema(
    [
        ("location_id", pa.int64()),
        ("borough", pa.string()),
        ("zone", pa.string()),
        ("service_zone", pa.string()),
    ]
)

_BIGQUERY_TYPES: dict[pa.DataType, str] = {
    pa.int64(): "INT64",
    pa.float64(): "FLOAT64",
    pa.timestamp("us"): "TIMESTAMP",
    pa.string(): "STRING",
    pa.date32(): "DATE",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")


def _checked(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not a valid BigQuery name: letters, digits and underscores only"
        )
    return name


def table_schema(columns: pa.Schema) -> list[dict[str, str]]:
    """The BigQuery schema (REST form) of an Arrow schema."""
    return [{"name": f.name, "type": _BIGQUERY_TYPES[f.type], "mode": "NULLABLE"} for f in columns]


def monthly_table(taxi: str) -> str:
    return f"{taxi}_tripdata"


def summary_table(taxi: str) -> str:
    return f"{taxi}_daily_summary"


class BigQuery:
    """The jobs of the BigQuery flow, run through ``BigQueryHook`` in one project and dataset."""

    def __init__(self, hook: BigQueryHook, dataset: str, location: str | None = None) -> None:
        self.hook = hook
        self.project = hook.project_id
        self.dataset = _checked(dataset, "dataset")
        self.location = location
        self.client = hook.get_client(project_id=self.project, location=location)

    def ref(self, table: str) -> str:
        """A backquoted ``project.dataset.table`` for SQL, with every part validated."""
        return f"`{self.project}.{self.dataset}.{_checked(table, 'table')}`"

    def query(self, sql: str) -> list[tuple]:
        """Run SQL as a query job through the hook and return its rows."""
        configuration = {"query": {"query": sql, "useLegacySql": False}}
        job = self.hook.insert_job(
            configuration=configuration, project_id=self.project, location=self.location
        )
        return [tuple(row.values()) for row in job.result()]

    def create_table(self, table: str, columns: pa.Schema, ddl_suffix: str = "") -> None:
        """``CREATE TABLE IF NOT EXISTS`` with an explicit schema (and partitioning/clustering)."""
        definitions = ", ".join(f"{f.name} {_BIGQUERY_TYPES[f.type]}" for f in columns)
        self.query(f"CREATE TABLE IF NOT EXISTS {self.ref(table)} ({definitions}) {ddl_suffix}")

    def load_parquet(self, table: str, columns: pa.Schema, uri: str) -> None:
        """Replace ``table``'s rows with one Parquet object (a load job, WRITE_TRUNCATE)."""
        self.create_table(table, columns)
        configuration = {
            "load": {
                "sourceUris": [uri],
                "sourceFormat": "PARQUET",
                "destinationTable": {"projectId": self.project, "datasetId": self.dataset, "tableId": table},
                "schema": {"fields": table_schema(columns)},
                "writeDisposition": "WRITE_TRUNCATE",
            }
        }
        self.hook.insert_job(configuration=configuration, project_id=self.project, location=self.location)

    def drop_table(self, table: str) -> None:
        self.query(f"DROP TABLE IF EXISTS {self.ref(table)}")

    def count(self, table: str, where: str = "TRUE") -> int:
        [(rows,)] = self.query(f"SELECT COUNT(*) FROM {self.ref(table)} WHERE {where}")
        return int(rows)


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
