"""The course's green-taxi pipeline (``green_taxi_etl``), step by step.

Each month is extracted and transformed on its own (a mapped task instance per month) into a
staging Parquet file in the bucket, so no task ever holds more than one month and the steps after
it can run on any worker. The invariants are asserted on the staged data before anything reaches
a destination; then Postgres gets all configured months in one transaction and GCS gets them
partitioned by ``lpep_pickup_date``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include import gcs, postgres
from include.chart import write_trips_per_day_chart
from include.extract import Rejects, iter_batches
from include.months import Month
from include.parquet import write_daily_partitions, write_parquet
from include.schema import SNAKE_CASE_RENAMES, schema_for, to_snake_case
from include.transform import GREEN_ETL_RULES, CleaningReport, add_pickup_date, clean

if TYPE_CHECKING:
    import psycopg
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

log = logging.getLogger(__name__)

GREEN = schema_for("green")
PICKUP_DATE = "lpep_pickup_date"
TABLE = "green_taxi"
DATASET_PREFIX = "green_taxi"
REJECTS_PREFIX = "green_taxi_rejects"
REPORTS_PREFIX = "green_taxi_reports"
# The TLC's vendor codes: 1 = Creative Mobile Technologies, 2 = VeriFone (the values in this data).
ALLOWED_VENDOR_IDS = (1, 2)

OUTPUT_SCHEMA = GREEN.snake_case_arrow_schema.append(pa.field(PICKUP_DATE, pa.date32()))


class DataQualityError(ValueError):
    """Transformed data broke an invariant; the message names each column and its offending rows."""


def transform(
    batches: Iterable[pa.RecordBatch], report: CleaningReport, month: Month | None = None
) -> Iterator[pa.RecordBatch]:
    """Keep trips with passengers and distance, add the pickup date, rename to snake_case."""
    for batch in clean(batches, GREEN, GREEN_ETL_RULES, report, month):
        yield to_snake_case(add_pickup_date(batch, GREEN.pickup_column, PICKUP_DATE))


@dataclass(frozen=True)
class StagedMonth:
    """One month after the transform, staged as Parquet in the bucket (small: an XCom)."""

    month: str
    staging_object: str
    rows_read: int
    rows_kept: int
    dropped_by_rule: dict[str, int]
    source_vendor_ids: list[int | None]
    rows_rejected: int
    rejects_object: str | None


def stage_month(path: Path, month: Month, hook: GCSHook, bucket: str, staging_prefix: str) -> StagedMonth:
    """Transform a downloaded month into a staging Parquet object in ``staging_prefix``.

    Unreadable rows are staged next to it as CSV, published with the partitions once the
    invariants hold.
    """
    report, rejects = CleaningReport(), Rejects(path.name)
    vendor_ids: set[int | None] = set()

    def observed(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            vendor_ids.update(pc.unique(batch.column("VendorID")).to_pylist())
            yield batch

    with tempfile.TemporaryDirectory(prefix="green-") as folder:
        local = Path(folder) / f"green_tripdata_{month}.parquet"
        batches = iter_batches(path, GREEN, rejects)
        write_parquet(transform(observed(batches), report, month), OUTPUT_SCHEMA, local)
        staging_object = f"{staging_prefix}/{local.name}"
        gcs.upload(hook, bucket, {staging_object: local})
        rejects_object = None
        if rejects.rows:
            rejects_file = Path(folder) / f"green_tripdata_{month}.csv"
            rejects.write_csv(rejects_file)
            rejects_object = f"{staging_prefix}/rejects/{rejects_file.name}"
            gcs.upload(hook, bucket, {rejects_object: rejects_file}, "text/csv")
    log.info("green %s: %s", month, report.describe())
    return StagedMonth(
        str(month),
        staging_object,
        report.rows_read,
        report.rows_kept,
        dict(report.dropped),
        sorted(vendor_ids, key=lambda v: (v is None, v)),
        len(rejects.rows),
        rejects_object,
    )


def invariant_violations(table: pa.Table) -> dict[str, int]:
    """Rows breaking each invariant, by column: the transform's promises, checked on its output."""
    allowed_vendor = pc.is_in(table.column("vendor_id"), pa.array(ALLOWED_VENDOR_IDS, pa.int64()))
    checks = {
        "vendor_id": allowed_vendor,
        "passenger_count": pc.greater(table.column("passenger_count"), 0),
        "trip_distance": pc.greater(table.column("trip_distance"), 0),
    }
    return {
        column: int(pc.sum(pc.invert(pc.fill_null(ok, False))).as_py() or 0) for column, ok in checks.items()
    }


def assert_invariants(paths: Iterable[Path]) -> int:
    """Check every staged file; raise ``DataQualityError`` naming each failing column and count."""
    totals = dict.fromkeys(("vendor_id", "passenger_count", "trip_distance"), 0)
    rows = 0
    for path in paths:
        table = pq.read_table(path, columns=list(totals))
        rows += table.num_rows
        for column, count in invariant_violations(table).items():
            totals[column] += count
    expected = {
        "vendor_id": f"not in {ALLOWED_VENDOR_IDS}",
        "passenger_count": "not above 0",
        "trip_distance": "not above 0",
    }
    failures = [
        f"{column}: {count} of {rows} rows {expected[column]}" for column, count in totals.items() if count
    ]
    if failures:
        raise DataQualityError("; ".join(failures))
    log.info(
        "All %d rows pass: vendor_id in %s, passenger_count > 0, trip_distance > 0", rows, ALLOWED_VENDOR_IDS
    )
    return rows


def load_postgres(conn: psycopg.Connection, schema_name: str, paths: Iterable[Path]) -> int:
    """Replace the whole ``green_taxi`` table with the staged months in one transaction."""

    def batches() -> Iterator[pa.RecordBatch]:
        for path in paths:
            yield from pq.ParquetFile(path).iter_batches()

    rows = postgres.replace_table(conn, schema_name, TABLE, OUTPUT_SCHEMA, PICKUP_DATE, batches())
    log.info("Replaced %s.%s with %d rows", schema_name, TABLE, rows)
    return rows


def publish_month(staged: StagedMonth, hook: GCSHook, bucket: str) -> int:
    """Write one staged month to ``green_taxi/lpep_pickup_date=YYYY-MM-DD/``, replacing its files.

    The month's unreadable rows, if any, replace ``green_taxi_rejects/green_tripdata_{month}.csv``.
    Returns the number of date partitions written.
    """
    file_name = f"green_tripdata_{staged.month}.parquet"
    rejects_name = f"green_tripdata_{staged.month}.csv"
    staged_objects = [staged.staging_object, *([staged.rejects_object] if staged.rejects_object else [])]
    with gcs.downloaded(hook, bucket, staged_objects) as [path, *rejects_file]:
        partitions = write_daily_partitions(path, None, PICKUP_DATE, path.parent / "days")
        uploads = {p.object_name(DATASET_PREFIX, PICKUP_DATE, file_name): p.path for p in partitions}
        gcs.replace_objects(hook, bucket, DATASET_PREFIX, file_name, uploads)
        kept = {f"{REJECTS_PREFIX}/{rejects_name}": rejects_file[0]} if rejects_file else {}
        gcs.replace_objects(hook, bucket, REJECTS_PREFIX, rejects_name, kept, "text/csv")
    return len(partitions)


def publish_chart(
    conn: psycopg.Connection, schema_name: str, months: list[str], chart_dir: Path, hook: GCSHook, bucket: str
) -> tuple[Path, str]:
    """Chart the loaded table's trips per pickup day into ``chart_dir`` and the bucket.

    The PNG goes to ``green_taxi_reports/``, beside the dataset rather than inside it, so readers
    of ``green_taxi/`` only ever find Parquet. Returns the local path and the ``gs://`` URI.
    """
    first, last = Month.parse(months[0]), Month.parse(months[-1])
    name = f"green_taxi_trips_per_day_{first}_{last}.png"
    path = write_trips_per_day_chart(
        chart_dir / name,
        f"green trips per pickup day, {first} to {last}",
        postgres.trips_per_day(conn, schema_name, TABLE, PICKUP_DATE),
        first.first_day,
        last.last_day,
    )
    [uri] = gcs.upload(hook, bucket, {f"{REPORTS_PREFIX}/{name}": path}, "image/png")
    log.info("Trips per pickup day: chart written to %s and %s", path, uri)
    return path, uri


def summary(staged: list[StagedMonth], rows_loaded: int, partitions: list[int]) -> str:
    """What a learner compares with the course: rows in, rows kept, vendors, renames, partitions."""
    vendor_ids = sorted(
        {v for month in staged for v in month.source_vendor_ids}, key=lambda v: (v is None, v)
    )
    renames = ", ".join(f"{old} → {new}" for old, new in SNAKE_CASE_RENAMES.items())
    return "\n".join(
        [
            f"months: {', '.join(month.month for month in staged)}",
            f"rows read: {sum(month.rows_read for month in staged)}",
            f"rows after the filter: {sum(month.rows_kept for month in staged)}",
            f"unreadable rows set aside: {sum(month.rows_rejected for month in staged)}",
            f"rows in Postgres {TABLE}: {rows_loaded}",
            f"vendor ids in the source: {vendor_ids}",
            f"columns renamed: {renames}",
            f"date partitions written: {sum(partitions)}",
        ]
    )
