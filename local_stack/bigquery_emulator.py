"""Start a local BigQuery emulator (bqemulator) that works without internet.

Run it with the *emulator* venv's interpreter, not Airflow's::

    /tmp/emu/venv/bin/python bigquery_emulator.py \\
        --host 127.0.0.1 --port 9050 --data-dir /tmp/emu/bq-data \\
        --project nyc-taxi-local --gcs-root /tmp/emu/gcs-data/.cloudstorage

bqemulator 1.4.0 runs ``INSTALL spatial; LOAD spatial`` on DuckDB at startup
and aborts when it cannot download the extension (no setting turns this off).
This script replaces that one step with a ``LOAD`` that never downloads and
only warns when the extension is absent, so everything except GEOGRAPHY /
``ST_*`` functions keeps working. It also skips the optional Avro extension
download (``BQEMU_ENABLE_FORMAT_EXTENSIONS`` defaults to false here), and
accepts the ``*/*`` media type that google-cloud-bigquery sends in multipart
uploads, which bqemulator otherwise rejects (``load_table_from_dataframe``,
``load_table_from_json`` and ``load_table_from_file`` with a known size).

Load jobs are made to behave as BigQuery's (``patch_load_jobs``; each gap is
listed in docs/local-stand-ins.md):

* a destination with a partition decorator (``table$202010``) writes only that
  partition: WRITE_TRUNCATE replaces its rows, rows outside it fail the job;
* ``schemaUpdateOptions: ["ALLOW_FIELD_ADDITION"]`` adds the load schema's new
  columns to the table, and a load that would add columns without it fails;
* a load job is atomic: a failure leaves the table as it was;
* Parquet columns are matched by name, not by position.

Every option falls back to an environment variable, then to a default.
The process serves until SIGINT or SIGTERM. Readiness: ``GET /readyz``.
"""

from __future__ import annotations

import argparse
import copy
import os
import warnings
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from bqemulator.config import LogFormat, LogLevel, PersistenceMode, Settings
from bqemulator.observability.logging_ import configure_logging, get_logger

_TRUE = {"1", "true", "yes", "on"}


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Offline launcher for bqemulator.")
    parser.add_argument(
        "--host",
        default=_env("BQEMU_REST_HOST", "127.0.0.1"),
        help="bind host for REST and gRPC (env BQEMU_REST_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(_env("BQEMU_REST_PORT", "9050")),
        help="REST port (env BQEMU_REST_PORT, default 9050)",
    )
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=int(_env("BQEMU_GRPC_PORT", "0")),
        help="Storage Read/Write gRPC port (env BQEMU_GRPC_PORT, default 0 = any free port)",
    )
    parser.add_argument(
        "--data-dir",
        default=_env("BQEMU_DATA_DIR", ""),
        help="keep tables in DATA_DIR/bqemulator.duckdb across restarts (env BQEMU_DATA_DIR); "
        "without it everything lives in memory",
    )
    parser.add_argument(
        "--project",
        default=_env("BQEMU_DEFAULT_PROJECT_ID", "test-project"),
        help="project id used when a request omits one (env BQEMU_DEFAULT_PROJECT_ID)",
    )
    parser.add_argument(
        "--gcs-root",
        default=_env("BQEMU_GCS_LOCAL_ROOT", ""),
        help="gs://BUCKET/OBJECT is read from GCS_ROOT/BUCKET/OBJECT (env BQEMU_GCS_LOCAL_ROOT); "
        "for 'gcp-storage-emulator -d DIR' pass DIR/.cloudstorage",
    )
    parser.add_argument(
        "--log-format",
        default=_env("BQEMU_LOG_FORMAT", "json"),
        choices=[fmt.value for fmt in LogFormat],
        help="env BQEMU_LOG_FORMAT, default json (console adds colour codes)",
    )
    parser.add_argument(
        "--log-level",
        default=_env("BQEMU_LOG_LEVEL", "warning"),
        choices=[level.value for level in LogLevel],
        help="env BQEMU_LOG_LEVEL, default warning",
    )
    return parser.parse_args()


def _build_settings(args: argparse.Namespace) -> Settings:
    persistent = bool(args.data_dir)
    return Settings(
        rest_host=args.host,
        rest_port=args.port,
        grpc_host=args.host,
        grpc_port=args.grpc_port,
        default_project_id=args.project,
        persistence_mode=PersistenceMode.PERSISTENT if persistent else PersistenceMode.EPHEMERAL,
        data_dir=Path(args.data_dir) if persistent else None,
        gcs_local_root=Path(args.gcs_root) if args.gcs_root else None,
        enable_format_extensions=_env("BQEMU_ENABLE_FORMAT_EXTENSIONS", "false").lower() in _TRUE,
        log_level=LogLevel(args.log_level),
        log_format=LogFormat(args.log_format),
    )


# --- Load jobs as BigQuery runs them -------------------------------------------------------------
# bqemulator 1.4.0 rejects a partition decorator in a load's destination ("Invalid table id for SQL"),
# ignores schemaUpdateOptions on loads, runs WRITE_TRUNCATE as a DELETE that a failed INSERT does not
# undo, and inserts Parquet columns by position. The functions below replace three helpers of
# bqemulator.jobs.executor that execute_load_job calls in this order, under the engine's write lock:
# _parse_load_job_config, _apply_load_write_disposition, _load_path_into_target (once per source).

_DECORATOR_LENGTHS = {"YEAR": 4, "MONTH": 6, "DAY": 8, "HOUR": 10}


@dataclass(frozen=True)
class Partition:
    """One time partition of a column-partitioned table: ``start <= field < end``."""

    partition_id: str
    column: str
    start: date | datetime
    end: date | datetime

    @property
    def inside(self) -> str:
        return f'("{self.column}" >= ? AND "{self.column}" < ?)'

    @property
    def bounds(self) -> list[date | datetime]:
        return [self.start, self.end]


def partition_of(meta: Any, partition_id: str) -> Partition:
    """The partition a decorator names, as BigQuery reads it for the table's partitioning."""
    from bqemulator.domain.errors import UnsupportedFeatureError, ValidationError

    partitioning = meta.time_partitioning
    if partitioning is None:
        raise ValidationError(
            f"Cannot write to partition {partition_id} of {meta.table_id}: the table is not partitioned"
        )
    if not partitioning.field:
        raise UnsupportedFeatureError("partition decorators of ingestion-time partitioned tables")
    unit = partitioning.type
    if len(partition_id) != _DECORATOR_LENGTHS[unit] or not partition_id.isdigit():
        raise ValidationError(
            f"Invalid partition decorator {partition_id!r} for a table partitioned by {unit}"
        )
    year, month, day = int(partition_id[:4]), int(partition_id[4:6] or 1), int(partition_id[6:8] or 1)
    try:
        start = datetime(year, month, day, int(partition_id[8:10] or 0))
    except ValueError as error:
        raise ValidationError(f"Invalid partition decorator {partition_id!r}: {error}") from None
    end = {
        "YEAR": start.replace(year=year + 1),
        "MONTH": start.replace(year=year + month // 12, month=month % 12 + 1),
        "DAY": start + timedelta(days=1),
        "HOUR": start + timedelta(hours=1),
    }[unit]
    column_type = next((f.type for f in meta.schema_.fields if f.name == partitioning.field), "DATE")
    if column_type == "DATE":
        return Partition(partition_id, partitioning.field, start.date(), end.date())
    return Partition(partition_id, partitioning.field, start, end)


@dataclass
class LoadInProgress:
    """What one load job's patched steps share (a ContextVar: each request runs in its own task)."""

    partition_id: str | None
    partition: Partition | None = None
    rows_outside_before: int = 0
    sources_left: int = 0  # > 0 while the job's transaction is open
    added_fields: tuple = field(default_factory=tuple)


_current_load: ContextVar[LoadInProgress] = ContextVar("bqemulator_current_load")


def patch_load_jobs() -> None:
    """Replace the load-job helpers of ``bqemulator.jobs.executor`` (see the comment above)."""
    from bqemulator.api.routes.tables import _parse_schema_fields
    from bqemulator.catalog.models import TableSchema
    from bqemulator.domain.errors import ValidationError
    from bqemulator.jobs import executor
    from bqemulator.storage.type_map import bq_schema_to_duckdb_columns

    parse_config = executor._parse_load_job_config
    apply_write_disposition = executor._apply_load_write_disposition
    load_path = executor._load_path_into_target

    def parse_load_job_config(project_id: str, config: dict[str, Any]):
        """Strip a ``$partition`` decorator from the destination and remember it for this job."""
        table_id = config.get("load", {}).get("destinationTable", {}).get("tableId", "")
        table, _, partition_id = table_id.partition("$")
        if partition_id:
            config = copy.deepcopy(config)
            config["load"]["destinationTable"]["tableId"] = table
        _current_load.set(LoadInProgress(partition_id or None))
        return parse_config(project_id, config)

    def fields_to_add(meta: Any, job: Any) -> tuple:
        """The load schema's fields the table lacks; an error unless ALLOW_FIELD_ADDITION is set."""
        existing = {f.name.lower() for f in meta.schema_.fields}
        loaded = _parse_schema_fields((job.raw_config.get("schema") or {}).get("fields") or [])
        new = tuple(f for f in loaded if f.name.lower() not in existing)
        if not new:
            return ()
        options = {option.upper() for option in job.raw_config.get("schemaUpdateOptions") or []}
        if "ALLOW_FIELD_ADDITION" not in options:
            raise ValidationError(
                f"Provided Schema does not match Table {meta.project_id}:{meta.dataset_id}.{meta.table_id}."
                f" Cannot add fields (field: {new[0].name})"
            )
        if any(f.mode == "REQUIRED" for f in new):
            raise ValidationError("Cannot add required fields to an existing schema")
        return new

    def check_schema_update_options(job: Any, load: LoadInProgress) -> None:
        if not job.raw_config.get("schemaUpdateOptions"):
            return
        if job.write_disposition == "WRITE_APPEND" or (
            job.write_disposition == "WRITE_TRUNCATE" and load.partition_id
        ):
            return
        raise ValidationError(
            "Schema update options should only be specified with WRITE_APPEND disposition,"
            " or with WRITE_TRUNCATE disposition on a table partition."
        )

    def apply_load_write_disposition(job: Any, ctx: Any) -> None:
        """Open the job's transaction, add new columns, then empty the partition (or the table)."""
        load = _current_load.get()
        meta = ctx.catalog.get_table(job.project_id, job.dataset_id, job.table_id)
        if meta is None or not job.source_uris:  # bqemulator reports these errors itself
            return apply_write_disposition(job, ctx)
        check_schema_update_options(job, load)
        load.partition = partition_of(meta, load.partition_id) if load.partition_id else None
        load.added_fields = fields_to_add(meta, job)
        load.sources_left = len(job.source_uris)
        engine = ctx.engine
        engine.execute("BEGIN TRANSACTION")
        try:
            new_rest = [{"name": f.name, "type": f.type, "mode": f.mode} for f in load.added_fields]
            for name, duckdb_type in bq_schema_to_duckdb_columns(new_rest):
                engine.execute(f'ALTER TABLE {job.target_ref} ADD COLUMN "{name}" {duckdb_type}')
            partition = load.partition
            if partition is None:
                apply_write_disposition(job, ctx)
                return None
            if job.write_disposition == "WRITE_TRUNCATE":
                engine.execute(f"DELETE FROM {job.target_ref} WHERE {partition.inside}", partition.bounds)
            elif job.write_disposition == "WRITE_EMPTY":
                [(rows,)] = engine.execute(
                    f"SELECT COUNT(*) FROM {job.target_ref} WHERE {partition.inside}", partition.bounds
                ).fetchall()
                if rows:
                    raise ValidationError(
                        f"Partition {partition.partition_id} of {job.table_id} is not empty"
                        " and writeDisposition is WRITE_EMPTY"
                    )
            load.rows_outside_before = rows_outside(job, partition, ctx)
        except BaseException:
            engine.execute("ROLLBACK")
            raise
        return None

    def rows_outside(job: Any, partition: Partition, ctx: Any) -> int:
        [(rows,)] = ctx.engine.execute(
            f'SELECT COUNT(*) FROM {job.target_ref} WHERE "{partition.column}" IS NULL'
            f" OR NOT {partition.inside}",
            partition.bounds,
        ).fetchall()
        return rows

    def load_path_into_target(path: str, job: Any, ctx: Any) -> None:
        """Insert one source (Parquet by column name); after the last, check the partition and commit."""
        load = _current_load.get()
        if not load.sources_left:  # no transaction was opened (the table did not exist)
            return load_path(path, job, ctx)
        engine = ctx.engine
        try:
            if job.source_format == "PARQUET":
                engine.execute(f"INSERT INTO {job.target_ref} BY NAME SELECT * FROM read_parquet(?)", [path])
            else:
                load_path(path, job, ctx)
            load.sources_left -= 1
            if load.sources_left:
                return None
            partition = load.partition
            if partition is not None and rows_outside(job, partition, ctx) != load.rows_outside_before:
                raise ValidationError(
                    "Some rows belong to different partitions rather than destination partition"
                    f" {partition.partition_id}"
                )
            engine.execute("COMMIT")
        except BaseException:
            engine.execute("ROLLBACK")
            raise
        if load.added_fields:
            meta = ctx.catalog.get_table(job.project_id, job.dataset_id, job.table_id)
            fields = (*meta.schema_.fields, *load.added_fields)
            ctx.catalog.update_table(meta.model_copy(update={"schema_": TableSchema(fields=fields)}))
        return None

    executor._parse_load_job_config = parse_load_job_config
    executor._apply_load_write_disposition = apply_load_write_disposition
    executor._load_path_into_target = load_path_into_target


def main() -> None:
    """Parse options, switch off the extension download and serve until stopped."""
    args = _parse_args()
    settings = _build_settings(args)
    # Configure logging before importing the server so import-time debug lines obey --log-level.
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")

    from bqemulator.api.routes import upload
    from bqemulator.server import run_forever
    from bqemulator.storage.engine import DuckDBEngine

    log = get_logger("bigquery_emulator")

    def load_spatial_offline(engine: DuckDBEngine) -> None:
        """Load DuckDB's spatial extension only if it is already installed; never download."""
        try:
            engine.connection.execute("LOAD spatial")
        except duckdb.Error as exc:
            log.warning("duckdb.spatial_skipped", error=str(exc).splitlines()[0])

    DuckDBEngine._load_spatial = load_spatial_offline  # type: ignore[method-assign]
    upload._PERMITTED_MEDIA_CONTENT_TYPES = (*upload._PERMITTED_MEDIA_CONTENT_TYPES, "*/*")
    patch_load_jobs()
    log.warning(
        "bigquery_emulator.starting",
        rest=f"http://{settings.rest_host}:{settings.rest_port}",
        duckdb=settings.duckdb_path(),
        gcs_local_root=str(settings.gcs_local_root),
    )
    run_forever(settings)


if __name__ == "__main__":
    main()
