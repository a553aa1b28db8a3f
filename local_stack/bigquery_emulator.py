"""Start a local BigQuery emulator (bqemulator) that works without internet.

Run it with the *emulator* venv's interpreter, not Airflow's::

    /tmp/emu/venv/bin/python bigquery_emulator.py \
        --host 127.0.0.1 --port 9050 --data-dir /tmp/emu/bq-data \
        --project nyc-taxi-local --gcs-root /tmp/emu/gcs-data/.cloudstorage

bqemulator 1.4.0 runs ``INSTALL spatial; LOAD spatial`` on DuckDB at startup
and aborts when it cannot download the extension (there is no setting to turn
this off). This script replaces that one step with a best-effort ``LOAD``
that never downloads, so everything except GEOGRAPHY / ``ST_*`` functions
keeps working. It also turns off the optional Avro extension download
(``BQEMU_ENABLE_FORMAT_EXTENSIONS=false``) unless asked otherwise.

Every option falls back to an environment variable, then to a default.
The process blocks serving until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bqemulator.config import LogFormat, LogLevel, PersistenceMode, Settings
from bqemulator.observability.logging_ import get_logger
from bqemulator.server import run_forever
from bqemulator.storage.engine import DuckDBEngine

_log = get_logger("bigquery_emulator_launcher")


def _load_spatial_offline(self: DuckDBEngine) -> None:
    """Load DuckDB's spatial extension only if it is already installed locally."""
    try:
        self.connection.execute("LOAD spatial")
    except Exception as exc:
        _log.warning("duckdb.spatial_skipped", error=str(exc).splitlines()[0])


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value else default


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host",
        default=_env("BQEMU_REST_HOST", "127.0.0.1"),
        help="REST bind host (env BQEMU_REST_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(_env("BQEMU_REST_PORT", "9050") or 9050),
        help="REST port (env BQEMU_REST_PORT, default 9050)",
    )
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=int(_env("BQEMU_GRPC_PORT", "0") or 0),
        help="gRPC (Storage Read/Write API) port (env BQEMU_GRPC_PORT, default 0 = any free)",
    )
    parser.add_argument(
        "--data-dir",
        default=_env("BQEMU_DATA_DIR"),
        help="keep data in DATA_DIR/bqemulator.duckdb (env BQEMU_DATA_DIR); "
        "without it everything is in memory and lost on exit",
    )
    parser.add_argument(
        "--project",
        default=_env("BQEMU_DEFAULT_PROJECT_ID", "test-project"),
        help="default project id (env BQEMU_DEFAULT_PROJECT_ID)",
    )
    parser.add_argument(
        "--gcs-root",
        default=_env("BQEMU_GCS_LOCAL_ROOT"),
        help="directory that gs://BUCKET/OBJECT maps to as GCS_ROOT/BUCKET/OBJECT "
        "(env BQEMU_GCS_LOCAL_ROOT); for gcp-storage-emulator -d DIR use DIR/.cloudstorage",
    )
    parser.add_argument(
        "--log-level",
        default=_env("BQEMU_LOG_LEVEL", "warning"),
        choices=[level.value for level in LogLevel],
        help="env BQEMU_LOG_LEVEL, default warning",
    )
    return parser.parse_args()


def main() -> None:
    """Build the settings, disable the extension download and serve forever."""
    args = _parse_args()
    overrides: dict[str, object] = {
        "rest_host": args.host,
        "rest_port": args.port,
        "grpc_host": args.host,
        "grpc_port": args.grpc_port,
        "default_project_id": args.project,
        "log_level": LogLevel(args.log_level),
        "log_format": LogFormat.CONSOLE,
        "enable_format_extensions": (_env("BQEMU_ENABLE_FORMAT_EXTENSIONS", "false") or "false").lower()
        in {"1", "true", "yes"},
        "persistence_mode": PersistenceMode.EPHEMERAL,
    }
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
        overrides["persistence_mode"] = PersistenceMode.PERSISTENT
    if args.gcs_root:
        overrides["gcs_local_root"] = Path(args.gcs_root)

    DuckDBEngine._load_spatial = _load_spatial_offline  # type: ignore[method-assign]
    run_forever(Settings(**overrides))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
