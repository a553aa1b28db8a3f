"""The local stack: every service the DAGs talk to, started on loopback from a state folder.

``up`` is idempotent: services already running are left alone. The environment the DAGs need
(Airflow home, connections, variables) is written to ``{state}/stack.env`` for shells to source,
and the same mapping is what the tests hand to ``airflow dags test``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from include.observing.alerts import DEFAULT_DEADLINE_SECONDS
from local_stack import mirror
from local_stack.postgres import METADATA_DATABASE, PostgresServer

REPO = Path(__file__).resolve().parent.parent
# The pools every Airflow here gets, as docker compose's airflow-init imports them.
POOLS_FILE = REPO / "config" / "pools.json"
# The GCS and BigQuery stand-ins run from their own environment (requirements-emulators.txt).
EMULATORS_BIN = REPO / ".venv-emulators" / "bin"
LOCAL_PROJECT = "local-project"
LOCAL_BUCKET = "nyc-taxi-local"
LOCAL_DATASET = "ny_taxi"


def wait_for_port(
    port: int, timeout: float = 60.0, what: str = "service", process: subprocess.Popen | None = None
) -> None:
    """Block until something accepts connections on ``127.0.0.1:port`` (or ``process`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with code {process.returncode} before listening on port {port}"
            )
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not start listening on 127.0.0.1:{port} within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class BackgroundProcess:
    """A long-running child process tracked by a pid file, so a later ``down`` can stop it."""

    name: str
    folder: Path
    command: tuple[str, ...]
    port: int

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.name}.pid"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def start(self, env: dict[str, str] | None = None) -> None:
        if self.pid() is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        log_file = self.folder / f"{self.name}.log"
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        try:
            wait_for_port(self.port, what=f"{self.name} (log: {log_file})", process=process)
        except (RuntimeError, TimeoutError):
            self.stop()
            raise
        time.sleep(0.2)  # a server that failed to bind exits right after another one answered
        if process.poll() is not None:
            self.pid_file.unlink()
            raise RuntimeError(f"{self.name} exited; is port {self.port} taken? See {log_file}")

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)
        self.pid_file.unlink(missing_ok=True)


@dataclass(frozen=True)
class Stack:
    """Where the stack keeps its state and which loopback ports it uses."""

    state: Path
    postgres_port: int = 54320
    tlc_port: int = 8765
    gcs_port: int = 9123
    bigquery_port: int = 9150

    @property
    def postgres(self) -> PostgresServer:
        return PostgresServer(self.state / "postgres", self.postgres_port)

    @property
    def mirror_folder(self) -> Path:
        """What the TLC stand-in serves: the samples and the constructed months of ``local_stack.mirror``."""
        return self.state / "tlc"

    @property
    def tlc_server(self) -> BackgroundProcess:
        command = (
            sys.executable,
            "-m",
            "local_stack.tlc_server",
            "--root",
            str(self.mirror_folder),
            "--port",
            str(self.tlc_port),
        )
        return BackgroundProcess("tlc-server", self.state / "services", command, self.tlc_port)

    @property
    def gcs_folder(self) -> Path:
        return self.state / "gcs"

    @property
    def gcs_emulator(self) -> BackgroundProcess:
        command = (
            str(EMULATORS_BIN / "gcp-storage-emulator"),
            "-d",
            str(self.gcs_folder),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.gcs_port),
            "--default-bucket",
            LOCAL_BUCKET,
        )
        return BackgroundProcess("gcs-emulator", self.state / "services", command, self.gcs_port)

    @property
    def bigquery_emulator(self) -> BackgroundProcess:
        # It reads gs:// sources straight from the GCS emulator's folder (see docs/local-stand-ins.md).
        command = (
            str(EMULATORS_BIN / "python"),
            str(REPO / "local_stack" / "bigquery_emulator.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.bigquery_port),
            "--project",
            LOCAL_PROJECT,
            "--data-dir",
            str(self.state / "bigquery"),
            "--gcs-root",
            str(self.gcs_folder / ".cloudstorage"),
        )
        return BackgroundProcess("bigquery-emulator", self.state / "services", command, self.bigquery_port)

    def up(self) -> None:
        self.postgres.start()
        self.postgres.create_database(METADATA_DATABASE)
        mirror.build(self.mirror_folder)
        self.tlc_server.start()
        self.gcs_emulator.start()
        self.bigquery_emulator.start()
        self.create_dataset(LOCAL_DATASET)
        self.env_file.write_text(
            "".join(f"export {key}={shlex.quote(value)}\n" for key, value in self.env().items())
        )
        self.env_file.chmod(0o600)

    def create_dataset(self, dataset: str) -> None:
        """Create a BigQuery dataset on the stand-in (on GCP an admin does it, see docs/gcp.md)."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        client = bigquery.Client(
            project=LOCAL_PROJECT,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=f"http://127.0.0.1:{self.bigquery_port}"),
        )
        client.create_dataset(dataset, exists_ok=True)

    def down(self) -> None:
        self.bigquery_emulator.stop()
        self.gcs_emulator.stop()
        self.tlc_server.stop()
        self.postgres.stop()

    @property
    def env_file(self) -> Path:
        return self.state / "stack.env"

    def env(self) -> dict[str, str]:
        """Connections and variables for the DAGs, plus a self-contained Airflow home.

        Its metadata is in the stack's Postgres, so the UI (four processes writing at once) and the
        demo's ``airflow dags test`` runs share it; tests keep a SQLite file per session.
        """
        return {
            **airflow_env(self.state / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.metadata_uri(),
            "AIRFLOW_CONN_POSTGRES_DEFAULT": self.postgres.uri,
            # One stand-in serves both sources' layouts.
            "AIRFLOW_VAR_MIRROR_BASE_URL": f"http://127.0.0.1:{self.tlc_port}",
            "AIRFLOW_VAR_TLC_BASE_URL": f"http://127.0.0.1:{self.tlc_port}",
            # The schedules cover the months the stand-in has for every family.
            "AIRFLOW_VAR_TAXI_FIRST_MONTH": str(mirror.LOCAL_MONTHS[0]),
            "AIRFLOW_VAR_TAXI_LAST_MONTH": str(mirror.LOCAL_MONTHS[1]),
            "AIRFLOW_VAR_CHART_DIR": str(self.state / "charts"),
            # The source watcher (docs/operations.md): a dozen HEADs a minute to the stand-in, so
            # editing a file under .state/ reloads its month while taxi_source_changes is unpaused.
            "AIRFLOW_VAR_WATCH_SOURCE": "on",
            "AIRFLOW_VAR_WATCH_SOURCE_SECONDS": "60",
            # alerts: a monthly run's deadline (`dags test` goes without: include/flows/defaults.py).
            "AIRFLOW_VAR_MONTHLY_RUN_DEADLINE_SECONDS": str(DEFAULT_DEADLINE_SECONDS),
            **google_cloud_env(self.gcs_port, self.bigquery_port),
        }


def airflow_env(airflow_home: Path) -> dict[str, str]:
    """An Airflow home of our own with this repository's DAGs and no examples (SQLite metadata unless set)."""
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Lineage stays off until AIRFLOW__OPENLINEAGE__TRANSPORT is set; then our tasks' reports go out.
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "include.observing.lineage.ReportedLineageExtractor",
        # Arrow's jemalloc hands freed memory back where its default (mimalloc) keeps it: see the Dockerfile.
        "ARROW_DEFAULT_MEMORY_POOL": "jemalloc",
        "PYTHONPATH": str(REPO),
    }


def google_cloud_env(gcs_port: int, bigquery_port: int) -> dict[str, str]:
    """Point the official Google clients, and so the Airflow hooks, at the local stand-ins.

    Only this differs from real GCP: the emulator hosts and an anonymous connection. On GCP the
    connection carries a service account key instead and the two hosts are unset.
    """
    connection = {
        "conn_type": "google_cloud_platform",
        "extra": {"is_anonymous": True, "project": LOCAL_PROJECT},
    }
    return {
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{gcs_port}",
        "BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{bigquery_port}",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(connection),
        "AIRFLOW_VAR_GCS_BUCKET": LOCAL_BUCKET,
    }
