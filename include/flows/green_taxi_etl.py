"""The course's green-taxi pipeline (``green_taxi_etl``), step by step.

Each month is extracted and transformed on its own (a mapped task instance per month) into a
staging Parquet file in the bucket, so no task ever holds more than one month and the steps after
it can run on any worker. The invariant is asserted on the staged data before anything reaches a
destination; then Postgres gets the run's months in one transaction (the whole table replaced)
and GCS gets them partitioned by ``lpep_pickup_date``, the other months' files removed, so both
hold exactly the run's months. The source files' versions (ETag, Last-Modified, size) are recorded
last; a later run whose files and months are unchanged downloads nothing.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from include.destinations import gcs, postgres
from include.destinations.parquet import write_daily_partitions, write_parquet
from include.errors import DataQualityError
from include.observing import lineage
from include.observing.chart import write_trips_per_day_chart
from include.source.download import FileVersion, current_version, download
from include.source.extract import Rejects, iter_batches
from include.source.families import schema_for
from include.source.months import Month
from include.source.sources import MonthRequest
from include.source.transform import GREEN_ETL_RULES, CleaningReport, add_pickup_date, clean

if TYPE_CHECKING:
    import psycopg
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

log = logging.getLogger(__name__)

GREEN = schema_for("green")
PICKUP_DATE = "lpep_pickup_date"
# The course's names: table green_taxi, GCS folder green_taxi/ partitioned by lpep_pickup_date.
TABLE = "green_taxi"
SOURCES_TABLE = "green_taxi_sources"
DATASET_PREFIX = "green_taxi"
REJECTS_PREFIX = "green_taxi_rejects"
REPORTS_PREFIX = "green_taxi_reports"
# The TLC's vendor codes in the green files: 1 = Creative Mobile Technologies, 2 = VeriFone.
ALLOWED_VENDOR_IDS = (1, 2)

OUTPUT_SCHEMA = GREEN.arrow_schema.append(pa.field(PICKUP_DATE, pa.date32()))
SOURCES_COLUMNS = pa.schema(
    [
        ("month", pa.string()),
        ("url", pa.string()),
        ("etag", pa.string()),
        ("last_modified", pa.string()),
        ("size", pa.int64()),
    ]
)


def transform(
    batches: Iterable[pa.RecordBatch], report: CleaningReport, month: Month | None = None
) -> Iterator[pa.RecordBatch]:
    """Keep trips with passengers and distance, and add the pickup date (names are snake_case)."""
    for batch in clean(batches, GREEN, GREEN_ETL_RULES, report, month):
        yield add_pickup_date(batch, GREEN.pickup_column, PICKUP_DATE)


@dataclass(frozen=True)
class StagedMonth:
    """One month after the transform, staged as Parquet in the bucket (small: an XCom)."""

    month: str
    url: str
    version: dict
    staging_object: str
    rows_read: int
    rows_kept: int
    dropped_by_rule: dict[str, int]
    source_vendor_ids: list[int | None]
    rows_rejected: int
    rejects_object: str | None


def unchanged_since_last_run(
    conn: psycopg.Connection, schema_name: str, requests: list[MonthRequest]
) -> bool:
    """Whether the last successful run loaded exactly these months from files that have not changed.

    Asks the source with conditional HEAD requests (``If-None-Match`` / ``If-Modified-Since``): a 304
    for every month means nothing needs downloading.
    """
    recorded = _recorded_versions(conn, schema_name)
    if sorted(recorded) != sorted(str(r.month) for r in requests):
        log.info(
            "Months differ from the last run's %s: loading %s",
            sorted(recorded),
            [str(r.month) for r in requests],
        )
        return False
    for request in requests:
        url, version = recorded[str(request.month)]
        if url != request.url or current_version(request.url, version) is not None:
            log.info("%s changed since the last run: loading every month", request.url)
            return False
    log.info("Every source file is unchanged since the last run (HTTP 304): nothing to download or load")
    return True


def _recorded_versions(conn: psycopg.Connection, schema_name: str) -> dict[str, tuple[str, FileVersion]]:
    with postgres.autocommit(conn).cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", (f'"{schema_name}"."{SOURCES_TABLE}"',))
        if cursor.fetchone()[0] is None:
            return {}
        cursor.execute(
            sql.SQL("SELECT month, url, etag, last_modified, size FROM {}").format(
                sql.Identifier(schema_name, SOURCES_TABLE)
            )
        )
        return {
            month: (url, FileVersion(etag, modified, size)) for month, url, etag, modified, size in cursor
        }


def stage_month(request: MonthRequest, hook: GCSHook, bucket: str, staging_prefix: str) -> StagedMonth:
    """Download and transform a month into a staging Parquet object in ``staging_prefix``.

    Unreadable rows are staged next to it as CSV, published with the partitions once the
    invariant holds.
    """
    report, rejects = CleaningReport(), Rejects(request.file_name)
    vendor_ids: set[int | None] = set()

    def observed(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            vendor_ids.update(pc.unique(batch.column("vendor_id")).to_pylist())
            yield batch

    with tempfile.TemporaryDirectory(prefix="green-") as folder:
        path = Path(folder) / request.file_name
        version = download(request.url, path)
        local = Path(folder) / f"green_tripdata_{request.month}.parquet"
        batches = iter_batches(path, GREEN, rejects)
        write_parquet(transform(observed(batches), report, request.month), OUTPUT_SCHEMA, local)
        staging_object = f"{staging_prefix}/{local.name}"
        gcs.upload(hook, bucket, {staging_object: local})
        rejects_object = None
        if rejects.rows:
            rejects_file = Path(folder) / f"green_tripdata_{request.month}.csv"
            rejects.write_csv(rejects_file)
            rejects_object = f"{staging_prefix}/rejects/{rejects_file.name}"
            gcs.upload(hook, bucket, {rejects_object: rejects_file})
    log.info("green %s: %s", request.month, report.describe())
    staged = {staging_object: report.rows_kept} | (
        {rejects_object: len(rejects.rows)} if rejects_object else {}
    )
    lineage.staged_from_source(request.url, report.rows_read + len(rejects.rows), bucket, staged)
    return StagedMonth(
        str(request.month),
        request.url,
        asdict(version),
        staging_object,
        report.rows_read,
        report.rows_kept,
        dict(report.dropped),
        sorted(vendor_ids, key=lambda v: (v is None, v)),
        len(rejects.rows),
        rejects_object,
    )


def vendor_violations(table: pa.Table) -> int:
    """Rows whose ``vendor_id`` is not a known green vendor (an empty one counts)."""
    allowed = pc.is_in(table.column("vendor_id"), pa.array(ALLOWED_VENDOR_IDS, pa.int64()))
    return int(pc.sum(pc.invert(pc.fill_null(allowed, False))).as_py() or 0)


def assert_invariants(paths: Iterable[Path]) -> int:
    """Check every staged file; raise ``DataQualityError`` naming the column and its offending rows.

    The course also asserts ``passenger_count > 0`` and ``trip_distance > 0``; the transform's
    filter guarantees both, so they are unit tests of the transform, not checks that could fail here.
    """
    rows = bad = 0
    for path in paths:
        table = pq.read_table(path, columns=["vendor_id"])
        rows += table.num_rows
        bad += vendor_violations(table)
    if bad:
        raise DataQualityError(f"vendor_id: {bad} of {rows} rows not in {ALLOWED_VENDOR_IDS}")
    log.info("All %d rows pass: vendor_id in %s", rows, ALLOWED_VENDOR_IDS)
    return rows


def load_postgres(conn: psycopg.Connection, schema_name: str, paths: Iterable[Path]) -> int:
    """Replace the whole ``green_taxi`` table with the staged months in one transaction."""

    def batches() -> Iterator[pa.RecordBatch]:
        for path in paths:
            yield from pq.ParquetFile(path).iter_batches()

    rows = postgres.replace_table(conn, schema_name, TABLE, OUTPUT_SCHEMA, batches())
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
        gcs.replace_objects(hook, bucket, REJECTS_PREFIX, rejects_name, kept)
    read = {staged.staging_object: staged.rows_kept} | (
        {staged.rejects_object: staged.rows_rejected} if staged.rejects_object else {}
    )
    written = dict.fromkeys(uploads) | dict.fromkeys(kept, staged.rows_rejected)
    lineage.written_in_gcs(bucket, read, written)
    return len(partitions)


def remove_other_months(hook: GCSHook, bucket: str, months: list[str]) -> int:
    """Delete the partition and rejects files of months this run did not load, as Postgres no longer
    has them either; return how many were deleted."""
    kept = {f"green_tripdata_{month}.{suffix}" for month in months for suffix in ("parquet", "csv")}
    names = [
        name
        for prefix in (DATASET_PREFIX, REJECTS_PREFIX)
        for name in hook.list(bucket, prefix=f"{prefix}/")
        if name.rsplit("/", 1)[-1] not in kept
    ]
    gcs.delete(hook, bucket, names)
    return len(names)


def record_sources(conn: psycopg.Connection, schema_name: str, staged: list[StagedMonth]) -> None:
    """Remember which file versions the run loaded, for the next run's ``unchanged_since_last_run``."""
    rows = pa.RecordBatch.from_pylist(
        [
            {
                "month": m.month,
                "url": m.url,
                **{k: m.version.get(k) for k in ("etag", "last_modified", "size")},
            }
            for m in staged
        ],
        schema=SOURCES_COLUMNS,
    )
    postgres.replace_table(conn, schema_name, SOURCES_TABLE, SOURCES_COLUMNS, [rows])


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
    [uri] = gcs.upload(hook, bucket, {f"{REPORTS_PREFIX}/{name}": path})
    log.info("Trips per pickup day: chart written to %s and %s", path, uri)
    return path, uri


def summary(staged: list[StagedMonth], rows_loaded: int, partitions: list[int]) -> str:
    """What a learner compares with the course: rows in, rows kept, vendors, renames, partitions."""
    vendor_ids = sorted(
        {v for month in staged for v in month.source_vendor_ids}, key=lambda v: (v is None, v)
    )
    renames = ", ".join(
        f"{column.source_name} → {column.name}"
        for column in GREEN.columns
        if column.source_name != column.name
    )
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
