"""Fixtures shared by all tests: a private Airflow home, and real local services per session.

Services start on free loopback ports in pytest's temporary folders, so the tests never touch the
demo's stack in ``.state/`` and can run while it is up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from include.observing.alerts import DEFAULT_DEADLINE_SECONDS
from local_stack.mirror import build as build_mirror
from local_stack.postgres import PostgresServer
from local_stack.stack import LOCAL_PROJECT, POOLS_FILE, Stack, airflow_env, free_port, google_cloud_env
from local_stack.tlc_server import SAMPLES, serve_in_thread
from tests.mail import MailServer, start_mail_server

# Before anything imports Airflow: its configuration is read once, at import.
os.environ.update(airflow_env(Path(tempfile.mkdtemp(prefix="airflow-home-"))))

AIRFLOW = str(Path(sys.executable).parent / "airflow")
# `airflow dags test`, the same CLI and code path, with Python's cyclic garbage collector off: a
# test's run is short and small, and the collector's passes over Airflow's ~770,000 objects (at
# exit, and while importing) cost about 3 s of the 11 s floor of every run on two cores.
DAGS_TEST = [
    sys.executable,
    "-c",
    "import atexit, gc, sys; gc.disable(); atexit.register(gc.freeze)\n"
    "from airflow.__main__ import main; sys.exit(main())",
    "dags",
    "test",
]
ALERT_RECIPIENTS = "on-call@example.test, data-team@example.test"


def dags_test(dag_id: str, env: dict[str, str], logical_date: str | None = None) -> list[str]:
    """``DAGS_TEST`` of ``dag_id`` from its own file (``-f``), as the README's edit loop runs it:
    without it, every run parses and stores every DAG of the folder first."""
    dag_file = Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"
    # The logical date is a positional argument: before the options, or argparse refuses it.
    return [*DAGS_TEST, dag_id, *([logical_date] if logical_date else []), "-f", str(dag_file)]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tlc_base_url() -> Iterator[str]:
    """The TLC stand-in serving the sample files in ``data/tlc`` with both sources' layouts."""
    server, url = serve_in_thread(SAMPLES)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def local_mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The local stack's stand-in: the samples plus constructed months, every family from 2020-10
    to 2021-01 (``local_stack.mirror``); its folder and base URL."""
    folder = build_mirror(tmp_path_factory.mktemp("mirror") / "tlc")
    server, url = serve_in_thread(folder)
    yield folder, url
    server.shutdown()


@pytest.fixture(scope="session")
def cloud_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The GCS and BigQuery stand-ins, with this process's Google clients pointed at them."""
    stack = Stack(tmp_path_factory.mktemp("cloud"), gcs_port=free_port(), bigquery_port=free_port())
    stack.gcs_emulator.start()
    stack.bigquery_emulator.start()
    saved = dict(os.environ)
    os.environ.update(google_cloud_env(stack.gcs_port, stack.bigquery_port))
    yield stack
    os.environ.clear()
    os.environ.update(saved)
    stack.bigquery_emulator.stop()
    stack.gcs_emulator.stop()


@pytest.fixture
def storage_client(cloud_stack: Stack):
    """The official GCS client on the stand-in, independent of the code under test."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials())


@pytest.fixture
def gcs_bucket(storage_client) -> str:
    """A new, empty bucket for one test."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    storage_client.create_bucket(name)
    return name


@pytest.fixture
def bigquery_client(cloud_stack: Stack):
    """The official BigQuery client on the stand-in, independent of the code under test."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    endpoint = ClientOptions(api_endpoint=f"http://127.0.0.1:{cloud_stack.bigquery_port}")
    return bigquery.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials(), client_options=endpoint)


@pytest.fixture
def bq_dataset(cloud_stack: Stack) -> str:
    """A new, empty BigQuery dataset for one test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    cloud_stack.create_dataset(name)
    return name


@pytest.fixture
def pg_schema(postgres: PostgresServer) -> Iterator[str]:
    """A fresh warehouse schema for one test, dropped afterwards."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def pg_conn(postgres: PostgresServer):
    """A reader's connection in autocommit, so it never holds locks between a test's queries."""
    import psycopg

    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def airflow_db() -> None:
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True)
    subprocess.run([AIRFLOW, "pools", "import", str(POOLS_FILE)], check=True, capture_output=True)


@pytest.fixture
def chart_dir(tmp_path: Path) -> Path:
    return tmp_path / "charts"


def dag_environment(postgres: PostgresServer, base_url: str, schema: str, chart_dir: Path) -> dict[str, str]:
    """Connections and variables for DAG runs on these services: the TLC stand-in at ``base_url``
    for both sources, and the warehouse schema ``schema``."""
    return {
        "AIRFLOW_CONN_POSTGRES_DEFAULT": postgres.uri,
        "AIRFLOW_VAR_MIRROR_BASE_URL": base_url,
        "AIRFLOW_VAR_TLC_BASE_URL": base_url,
        "AIRFLOW_VAR_PG_SCHEMA": schema,
        "AIRFLOW_VAR_CHART_DIR": str(chart_dir),
        # The monthly DAGs' deadline (include/flows/defaults.py), read when the DAG files are parsed.
        "AIRFLOW_VAR_MONTHLY_RUN_DEADLINE_SECONDS": str(DEFAULT_DEADLINE_SECONDS),
    }


@pytest.fixture
def dag_env(postgres: PostgresServer, tlc_base_url: str, pg_schema: str, chart_dir: Path) -> dict[str, str]:
    """Connections and variables for one DAG run, pointing at the test's services and schema."""
    return dag_environment(postgres, tlc_base_url, pg_schema, chart_dir)


@pytest.fixture
def run_dag(airflow_db: None, dag_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess]:
    """Run ``airflow dags test`` in a subprocess, as a user would, and return its result."""

    def run(
        dag_id: str, conf: dict, logical_date: str | None = None, **extra_env: str
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, **dag_env, **extra_env}
        try:
            return subprocess.run(
                [*dags_test(dag_id, env, logical_date), "-c", json.dumps(conf)],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired as timeout:
            output = (timeout.stdout or b"").decode()[-4000:] if isinstance(timeout.stdout, bytes) else ""
            pytest.fail(f"airflow dags test {dag_id} did not finish in {timeout.timeout} s:\n{output}")

    return run


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server on loopback that keeps what it receives (aiosmtpd)."""
    server, controller = start_mail_server()
    yield server
    controller.stop()


@pytest.fixture
def alert_env(mail_server: MailServer) -> dict[str, str]:
    """The connection and Variable that turn the alerts on, pointing at ``mail_server``."""
    return {
        "AIRFLOW_CONN_SMTP_DEFAULT": mail_server.connection_uri(),
        "AIRFLOW_VAR_ALERT_EMAIL": ALERT_RECIPIENTS,
    }
