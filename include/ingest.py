"""The steps a DAG task runs, composed from the single-concern modules.

Each function here is one task's work with its inputs made explicit (URLs, connections, months),
so the same code runs inside Airflow, in the tests and in the benchmark.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from include import gcs, postgres
from include.chart import write_trips_per_day_chart
from include.download import download, tlc_file_name, tlc_url
from include.extract import Rejects, iter_batches, read_csv_batches
from include.months import Month, resolve_month, validate_month
from include.parquet import write_daily_partitions, write_parquet
from include.schema import TaxiSchema, schema_for
from include.transform import MONTHLY_RULES, CleaningReport, clean

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonthRequest:
    """The taxi colour and month one run loads, validated before anything is downloaded."""

    taxi: str
    month: Month

    @property
    def schema(self) -> TaxiSchema:
        return schema_for(self.taxi)

    @classmethod
    def from_run(cls, params: dict, data_interval_start: datetime | None, today: date) -> MonthRequest:
        """Build the request from a run's params and data interval (see ``include.months``)."""
        schema = schema_for(params.get("taxi"))
        month = validate_month(resolve_month(params.get("month"), data_interval_start), today)
        return cls(schema.colour, month)


@contextmanager
def downloaded_month(base_url: str, request: MonthRequest, **download_options: float) -> Iterator[Path]:
    """Download the month's file into a temporary directory that is removed afterwards.

    ``download_options`` go to ``include.download.download`` (timeouts, retries, backoff).
    """
    with tempfile.TemporaryDirectory(prefix="tlc-") as folder:
        path = Path(folder) / tlc_file_name(request.taxi, request.month)
        download(tlc_url(base_url, request.taxi, request.month), path, **download_options)
        yield path


@dataclass(frozen=True)
class LoadResult:
    """What a load wrote: small and flat, so it travels between tasks as an XCom."""

    taxi: str
    month: str
    schema_name: str
    table: str
    rows_read: int
    rows_loaded: int
    dropped_by_rule: dict[str, int]
    rows_rejected: int
    outside_month: int


def load_month_to_postgres(
    conn: psycopg.Connection, path: Path, request: MonthRequest, schema_name: str
) -> LoadResult:
    """Stream a month's file through the cleaning rules into its table, replacing the month.

    Unreadable rows go to the table's rejects table (``{table}_rejects``) with their line and
    reason, replaced in the same transaction as the month's rows.
    """
    table = postgres.monthly_table_name(request.taxi)
    report, rejects = CleaningReport(), Rejects(path.name)
    batches = clean(
        iter_batches(path, request.schema, rejects), request.schema, MONTHLY_RULES, report, request.month
    )
    rows = postgres.replace_month(conn, schema_name, table, request.schema, request.month, batches, rejects)
    log.info("%s: %s", path.name, report.describe())
    if rejects.rows:
        rejects_table = postgres.rejects_table_name(table)
        log.warning(
            "%d unreadable row(s) of %s kept in %s.%s",
            len(rejects.rows),
            path.name,
            schema_name,
            rejects_table,
        )
    log.info("Loaded %d rows of %s into %s.%s", rows, request.month, schema_name, table)
    return LoadResult(
        request.taxi,
        str(request.month),
        schema_name,
        table,
        report.rows_read,
        rows,
        dict(report.dropped),
        len(rejects.rows),
        report.outside_month,
    )


def verify_loaded_month(
    conn: psycopg.Connection, loaded: LoadResult, max_outside_fraction: float = 0.01
) -> postgres.MonthCheck:
    """Check the loaded month in Postgres; raise ``ValueError`` listing every problem found."""
    month = Month.parse(loaded.month)
    pickup_column = schema_for(loaded.taxi).pickup_column
    check = postgres.check_month(conn, loaded.schema_name, loaded.table, pickup_column, month)
    log.info(
        "%s.%s, %s: %d rows, %d without pickup time, %d with a pickup outside the month",
        loaded.schema_name,
        loaded.table,
        month,
        check.rows,
        check.null_pickups,
        check.outside_month,
    )
    problems = check.problems(max_outside_fraction)
    if problems:
        raise ValueError("; ".join(problems))
    return check


def write_month_chart(conn: psycopg.Connection, loaded: LoadResult, chart_dir: Path) -> Path:
    """Draw the loaded month's trips per pickup day as PNG into ``chart_dir``; return its path."""
    month = Month.parse(loaded.month)
    pickup_column = schema_for(loaded.taxi).pickup_column
    trips = postgres.trips_per_day(conn, loaded.schema_name, loaded.table, pickup_column, month)
    path = write_trips_per_day_chart(
        chart_dir / f"{loaded.table}_{month}_trips_per_day.png",
        f"{loaded.taxi} trips per pickup day, {month}",
        trips,
        month.first_day,
        month.last_day,
    )
    log.info("Trips per pickup day of %s: chart written to %s", month, path)
    return path


@dataclass(frozen=True)
class ParquetExport:
    """What a month's export to GCS wrote: small and flat, so it travels as an XCom and asset extra."""

    taxi: str
    month: str
    bucket: str
    month_object: str
    dataset_prefix: str
    rows: int
    partitions: int
    dropped_by_rule: dict[str, int]
    rows_rejected: int
    outside_month: int


def export_month_to_gcs(hook: GCSHook, path: Path, request: MonthRequest, bucket: str) -> ParquetExport:
    """Write the cleaned month as one Parquet file and as daily partitions, replacing the month's objects.

    Layout: ``{taxi}/{taxi}_tripdata_{YYYY-MM}.parquet`` and
    ``{taxi}_trips/pickup_date=YYYY-MM-DD/{taxi}_tripdata_{YYYY-MM}.parquet``. A day's partition
    holds one file per source month, so a stray pickup from another month's file never makes one
    month's rerun overwrite another month's rows. Unreadable rows, if any, are kept in
    ``{taxi}_rejects/{taxi}_tripdata_{YYYY-MM}.csv``. Everything is written locally first, so a
    failure while reading uploads nothing.
    """
    schema = request.schema
    file_name = f"{request.taxi}_tripdata_{request.month}.parquet"
    dataset_prefix = f"{request.taxi}_trips"
    rejects_prefix = f"{request.taxi}_rejects"
    report, rejects = CleaningReport(), Rejects(path.name)
    with tempfile.TemporaryDirectory(prefix="parquet-") as folder:
        month_file = Path(folder) / file_name
        batches = clean(iter_batches(path, schema, rejects), schema, MONTHLY_RULES, report, request.month)
        rows = write_parquet(batches, schema.arrow_schema, month_file)
        partitions = write_daily_partitions(
            month_file, schema.pickup_column, "pickup_date", Path(folder) / "days"
        )
        month_object = f"{request.taxi}/{file_name}"
        gcs.upload(hook, bucket, {month_object: month_file})
        daily = {p.object_name(dataset_prefix, "pickup_date", file_name): p.path for p in partitions}
        gcs.replace_objects(hook, bucket, dataset_prefix, file_name, daily)
        rejects_file = Path(folder) / f"{request.taxi}_tripdata_{request.month}.csv"
        kept = {}
        if rejects.rows:
            rejects.write_csv(rejects_file)
            kept = {f"{rejects_prefix}/{rejects_file.name}": rejects_file}
        # With no rejects, an earlier run's rejects object of this month is deleted.
        kept_uris = gcs.replace_objects(hook, bucket, rejects_prefix, rejects_file.name, kept, "text/csv")
    log.info("%s: %s", path.name, report.describe())
    if kept_uris:
        log.warning("%d unreadable row(s) of %s kept in %s", len(rejects.rows), path.name, *kept_uris)
    log.info(
        "Wrote %d rows to gs://%s/%s and %d daily partitions", rows, bucket, month_object, len(partitions)
    )
    return ParquetExport(
        request.taxi,
        str(request.month),
        bucket,
        month_object,
        dataset_prefix,
        rows,
        len(partitions),
        dict(report.dropped),
        len(rejects.rows),
        report.outside_month,
    )


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
    columns = schema.snake_case_arrow_schema.append(pa.field(postgres.SOURCE_MONTH_COLUMN, pa.date32()))
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


ZONE_LOOKUP_OBJECT = "misc/taxi_zone_lookup.parquet"


def publish_zone_lookup(base_url: str, hook: GCSHook, bucket: str) -> str:
    """Download the TLC's taxi zone lookup and publish it as Parquet; return its ``gs://`` URI.

    The mirror has it at ``{base}/misc/taxi_zone_lookup.csv``, with CamelCase headers that are
    renamed to the snake_case of ``include.bigquery.ZONE_SCHEMA``.
    """
    from include.bigquery import ZONE_SCHEMA

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
