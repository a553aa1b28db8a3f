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

Every option falls back to an environment variable, then to a default.
The process serves until SIGINT or SIGTERM. Readiness: ``GET /readyz``.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

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
    log.warning(
        "bigquery_emulator.starting",
        rest=f"http://{settings.rest_host}:{settings.rest_port}",
        duckdb=settings.duckdb_path(),
        gcs_local_root=str(settings.gcs_local_root),
    )
    run_forever(settings)


if __name__ == "__main__":
    main()
