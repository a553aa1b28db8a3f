"""The steps of ``taxi_daily_trips_to_gcs``: export one pickup day of a family from Postgres to GCS.

The day's rows go to ``{taxi}_tripdata_exports/pickup_date=YYYY-MM-DD/{taxi}_tripdata_{YYYY-MM-DD}.parquet``,
one object per family and day, so a rerun overwrites it; a day that no longer has trips has its
object deleted, so a stale file never outlives its rows. A day whose month was never published
fails, naming the monthly flow to run first: an empty export would hide the missing load.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from include.destinations import gcs, postgres
from include.destinations.parquet import write_parquet
from include.errors import InvalidParamsError, MonthNotLoadedError
from include.observing import lineage
from include.source.families import schema_for
from include.source.months import Month, resolve_day

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from include.source.sources import Source

log = logging.getLogger(__name__)


def plan_day(params: dict, data_interval_start: datetime | None, source: Source, today: date) -> list[dict]:
    """The run's day (its params, else its data interval) for each requested family the source
    publishes for that day's month."""
    day = resolve_day(params.get("day"), data_interval_start)
    taxis = [taxi for taxi in params["taxis"] if source.has(taxi, Month.of(day), today)]
    if not taxis:
        raise InvalidParamsError(
            f"taxis {params['taxis']!r}: {source.name} publishes none of them for {Month.of(day)}"
        )
    return [{"taxi": taxi, "day": day.isoformat()} for taxi in taxis]


def export_object(taxi: str, day: date) -> str:
    return f"{taxi}_tripdata_exports/pickup_date={day.isoformat()}/{taxi}_tripdata_{day.isoformat()}.parquet"


def export_day(
    conn: psycopg.Connection, uri: str, hook: GCSHook, bucket: str, schema_name: str, taxi: str, day: date
) -> int:
    """Write one pickup day of a family's trips to its object; return the rows written."""
    schema = schema_for(taxi)
    table = postgres.tripdata_table(taxi)
    if not postgres.month_published(conn, schema_name, table, Month.of(day)):
        raise MonthNotLoadedError(
            f"{taxi} {Month.of(day)} was never loaded into {schema_name}.{table}: "
            f"run taxi_api_to_postgres for {Month.of(day)} first, then this day again"
        )
    rows = postgres.day_batches(uri, schema_name, table, schema.pickup_column, day)
    object_name = export_object(taxi, day)
    if rows.num_rows == 0:
        if hook.exists(bucket, object_name):
            gcs.delete(hook, bucket, [object_name])
            log.info("No %s trips on %s any more: deleted gs://%s/%s", taxi, day, bucket, object_name)
        else:
            log.info(
                "No %s trips with a pickup on %s in %s.%s: nothing written", taxi, day, schema_name, table
            )
        return 0
    with tempfile.TemporaryDirectory(prefix="daily-") as folder:
        path = Path(folder) / object_name.rsplit("/", 1)[-1]
        columns = rows.select(schema.table_schema.names).cast(schema.table_schema)  # the declared order
        written = write_parquet(columns.to_batches(), schema.table_schema, path)
        gcs.upload(hook, bucket, {object_name: path})
    lineage.exported_to_gcs(conn, schema_name, table, bucket, object_name, written)
    log.info("Wrote %d %s trips of %s to gs://%s/%s", written, taxi, day, bucket, object_name)
    return written
