"""The steps of ``taxi_gcs_to_bigquery``: load each month's Parquet from GCS into BigQuery, and
build the daily summary there.

A month is one load job into its partition of ``{taxi}_tripdata``, which is partitioned by MONTH on
``source_month`` (the month of the file a row came from): the job writes ``{taxi}_tripdata$YYYYMM``
with WRITE_TRUNCATE, so BigQuery swaps that month in whole. A rerun leaves exactly one copy, a
failure leaves the last one, and months of one table load side by side: no DML, no transaction.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv

from include.destinations import gcs
from include.destinations.bigquery import BigQuery, month_partition
from include.destinations.parquet import write_parquet
from include.errors import InvalidParamsError
from include.observing import lineage
from include.source.download import download
from include.source.families import SOURCE_MONTH_COLUMN, TAXIS, TaxiSchema, schema_for
from include.source.months import Month

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
# What most queries on trips filter and join on: the pickup and drop-off zones.
TRIP_CLUSTERING = ("pu_location_id", "do_location_id")


def monthly_table(taxi: str) -> str:
    return f"{taxi}_tripdata"


def summary_table(taxi: str) -> str:
    return f"{taxi}_daily_summary"


def parquet_uri(bucket: str, taxi: str, month: Month) -> str:
    """Where ``taxi_api_to_gcs`` writes a colour's month."""
    return f"gs://{bucket}/{taxi}_tripdata/{taxi}_tripdata_{month}.parquet"


def table_columns(schema: TaxiSchema) -> pa.Schema:
    """What ``{taxi}_tripdata`` stores: the declared columns (snake_case), then ``source_month``."""
    return schema.table_schema


def months_to_load(
    events: Iterable[Mapping[str, Any]],
    params: Mapping[str, Any],
    bucket: str,
    published: Callable[[str, Month], bool] = lambda taxi, month: True,
) -> list[dict]:
    """The (taxi, month, uri) to load: one per colour and month named by the asset events.

    Each event's extra names ``taxi``, ``month`` and the ``uri`` written; a month published twice
    is loaded once, from its latest event. Without events (a manual run) the ``taxis`` and
    ``month`` params name them, of those the source publishes for the month (``published``), and
    the object is where ``taxi_api_to_gcs`` writes it.
    """
    requested: dict[tuple[str, Month], str | None] = {}
    for extra in events:
        requested[_checked_month(extra["taxi"], extra["month"])] = extra.get("uri")
    if not requested:
        if not params.get("month"):
            raise InvalidParamsError(
                'a manual run needs the \'month\' param, e.g. {"taxis": ["yellow"], "month": "2021-01"}'
            )
        for taxi in params.get("taxis") or TAXIS:
            taxi, month = _checked_month(taxi, params["month"])
            if published(taxi, month):
                requested[taxi, month] = None
        if not requested:
            raise InvalidParamsError(
                f"taxis {params.get('taxis')!r}: the source publishes none of them for {params['month']}"
            )
    months = []
    for (taxi, month), uri in sorted(requested.items()):
        uri = uri or parquet_uri(bucket, taxi, month)
        if not (isinstance(uri, str) and uri.startswith("gs://") and uri.endswith(".parquet")):
            raise InvalidParamsError(
                f"the asset event for {taxi} {month} names {uri!r}, not a gs://….parquet object"
            )
        months.append({"taxi": taxi, "month": str(month), "uri": uri})
    return months


def _checked_month(taxi: str, month: str) -> tuple[str, Month]:
    schema_for(taxi)  # rejects a colour outside the allow-list, naming the allowed ones
    return taxi, Month.parse(month)


def load_month(bq: BigQuery, taxi: str, month: Month, uri: str) -> int:
    """Replace ``month`` in ``{taxi}_tripdata`` with the Parquet at ``uri``; return its rows.

    Creates the table on first use. Every row of the file must have the month's first day as
    ``source_month``; BigQuery fails the load otherwise, and the partition stays as it was.
    """
    table = monthly_table(taxi)
    columns = table_columns(schema_for(taxi))
    bq.create_table(table, columns, month_partitioned_by=SOURCE_MONTH_COLUMN, clustered_by=TRIP_CLUSTERING)
    bq.replace_month_partition(table, columns, uri, month.first_day)
    rows = bq.count_month(table, SOURCE_MONTH_COLUMN, month.first_day)
    lineage.loaded_into_bigquery(bq, table, uri, rows)
    partition = month_partition(month.first_day)
    log.info(
        "Loaded %d rows of %s into %s, partition %s, from %s", rows, month, bq.ref(table), partition, uri
    )
    return rows


def load_zone_lookup(bq: BigQuery, uri: str) -> int:
    """Replace the zone lookup table with the Parquet at ``uri``; return its rows."""
    bq.load_parquet(ZONE_TABLE, ZONE_SCHEMA, uri)
    rows = bq.count(ZONE_TABLE)
    lineage.loaded_into_bigquery(bq, ZONE_TABLE, uri, rows)
    return rows


def refresh_daily_summary(bq: BigQuery, taxi: str) -> int:
    """Rebuild ``{taxi}_daily_summary``: trips, revenue and mean distance per pickup day and borough."""
    schema = schema_for(taxi)
    return build_daily_summary(
        bq, monthly_table(taxi), summary_table(taxi), table_columns(schema), schema.pickup_column
    )


def build_daily_summary(bq: BigQuery, trips: str, summary: str, columns: pa.Schema, pickup: str) -> int:
    """Replace ``summary`` with one query job over the whole ``trips`` table; return its rows.

    The day is the DATE of the pickup's wall-clock DATETIME, as the TLC recorded it. Pickups in
    zones missing from the lookup count under ``Unknown``; a family without fares or distances
    (FHV) gets NULL revenue and distance.
    """

    def aggregate(function: str, column: str) -> str:
        value = f"{function}(t.{column})" if column in columns.names else "NULL"
        return f"CAST({value} AS FLOAT64)"

    bq.query(
        f"CREATE OR REPLACE TABLE {bq.ref(summary)} PARTITION BY pickup_day AS"
        f" SELECT DATE(t.{pickup}) AS pickup_day,"
        " COALESCE(z.borough, 'Unknown') AS pickup_borough,"
        " CAST(COUNT(*) AS INT64) AS trips,"
        f" {aggregate('SUM', 'total_amount')} AS revenue,"
        f" {aggregate('AVG', 'trip_distance')} AS avg_trip_distance"
        f" FROM {bq.ref(trips)} AS t"
        f" LEFT JOIN {bq.ref(ZONE_TABLE)} AS z ON t.pu_location_id = z.location_id"
        " GROUP BY pickup_day, pickup_borough"
    )
    rows = bq.count(summary)
    lineage.queried_into_bigquery(bq, [trips, ZONE_TABLE], summary, rows)
    log.info("Rebuilt %s: %d (day, borough) rows", bq.ref(summary), rows)
    return rows


ZONE_LOOKUP_OBJECT = "misc/taxi_zone_lookup.parquet"


def publish_zone_lookup(url: str, hook: GCSHook, bucket: str) -> str:
    """Download the TLC's taxi zone lookup and publish it as Parquet; return its ``gs://`` URI.

    Both sources have it at ``{base}/misc/taxi_zone_lookup.csv``, with CamelCase headers that are
    renamed to the snake_case of ``ZONE_SCHEMA``.
    """
    source_names = ["LocationID", "Borough", "Zone", "service_zone"]
    with tempfile.TemporaryDirectory(prefix="zones-") as folder:
        csv_path, parquet_path = (
            Path(folder) / "taxi_zone_lookup.csv",
            Path(folder) / "taxi_zone_lookup.parquet",
        )
        download(url, csv_path)
        types = dict(zip(source_names, ZONE_SCHEMA.types, strict=True))
        zones = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(column_types=types))
        zones = zones.select(source_names).rename_columns(ZONE_SCHEMA.names)
        write_parquet(zones.to_batches(), ZONE_SCHEMA, parquet_path)
        [uri] = gcs.upload(hook, bucket, {ZONE_LOOKUP_OBJECT: parquet_path})
    lineage.downloaded_to_gcs(url, uri)
    return uri
