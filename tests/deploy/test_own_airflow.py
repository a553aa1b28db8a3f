"""docs/own-airflow.md followed from an empty ``AIRFLOW_HOME``: the DAGs in a plain Airflow.

The deployment is what the page says: ``dags/``, ``include/`` and ``plugins/`` copied into the
home, ``PYTHONPATH`` on it, ``airflow db migrate`` (SQLite), ``airflow pools import``, then the
variables and connections of its sections 4 and 5, pointed at the session's services (Postgres,
the local TLC mirror, the GCS and BigQuery stand-ins; the emulator hosts are the only settings the
page does not name). Nothing else of this repository's own setup (``local_stack.stack.airflow_env``)
reaches the commands: the ``airflow`` commands are taken from the page itself.

Without ``plugins/``, the monthly and daily DAGs' import errors name the folder. Then the same
copied folders under a real scheduler (``local_stack/airflow_processes.py``), its tests in file order: a
scheduled run lands a month, then a run whose pool is missing fails at once, saying which command
creates it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from local_stack import expected
from local_stack.airflow_processes import running_airflow
from local_stack.report import month_row_counts
from local_stack.scheduler_api import SchedulerHarness
from local_stack.stack import LOCAL_PROJECT, REPO, airflow_env, google_cloud_env

pytestmark = pytest.mark.scheduler

DOC = REPO / "docs" / "own-airflow.md"
AIRFLOW_BIN = Path(sys.executable).parent
# The DAGs whose schedule is this repository's timetable, registered by plugins/.
TIMETABLE_DAGS = ("taxi_api_to_postgres", "taxi_api_to_gcs", "taxi_daily_trips_to_gcs")
POOL_COMMAND = "airflow pools import config/pools.json"


def doc_commands(prefix: str) -> list[list[str]]:
    """The page's shell lines that start with ``prefix``, split as the shell would (comments dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.startswith(prefix)]


def page_exports() -> dict[str, str]:
    """The settings the page exports with a value of their own (not the home and path lines)."""
    exports = [command[1] for command in doc_commands("export AIRFLOW_") if "$" not in command[1]]
    return dict(export.split("=", 1) for export in exports)


def deploy(home: Path) -> None:
    """Section 2: the three folders into the Airflow home."""
    for folder in ("dags", "plugins"):
        (home / folder).mkdir(parents=True)
        for source in (REPO / folder).glob("*.py"):
            shutil.copy2(source, home / folder)
    shutil.copytree(REPO / "include", home / "include", ignore=shutil.ignore_patterns("__pycache__"))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("own-airflow") / "airflow"
    deploy(folder)
    return folder


@pytest.fixture(scope="module")
def warehouse(postgres, local_mirror, cloud_stack, tmp_path_factory) -> Iterator[dict[str, str]]:
    """Sections 4 and 5 of the page, on the session's services: a schema, bucket and dataset of
    the module's own, the local mirror as the source."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    suffix = uuid.uuid4().hex[:10]
    bucket, dataset, schema = f"own-{suffix}", f"own_{suffix}", f"own_{suffix}"
    storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials()).create_bucket(bucket)
    cloud_stack.create_dataset(dataset)
    _, mirror_url = local_mirror
    yield {
        "AIRFLOW_VAR_TAXI_SOURCE": "mirror",
        "AIRFLOW_CONN_POSTGRES_DEFAULT": postgres.uri,
        # The stand-ins' hosts and anonymous connection (docs/gcp.md has the real one).
        **google_cloud_env(cloud_stack.gcs_port, cloud_stack.bigquery_port),
        "AIRFLOW_VAR_GCS_BUCKET": bucket,
        "AIRFLOW_VAR_BQ_DATASET": dataset,
        "AIRFLOW_VAR_PG_SCHEMA": schema,
        "AIRFLOW_VAR_MIRROR_BASE_URL": mirror_url,
        "AIRFLOW_VAR_CHART_DIR": str(tmp_path_factory.mktemp("charts")),
    }
    import psycopg

    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(scope="module")
def shell(home: Path, warehouse: dict[str, str]) -> dict[str, str]:
    """A user's shell after the page: this session's own Airflow settings removed, then the page's;
    its metadata database migrated and its pools imported."""
    ours = set(airflow_env(home)) | {"PYTHONPATH"}
    clean = {key: value for key, value in os.environ.items() if key not in ours and "AIRFLOW" not in key}
    env = {
        **clean,
        "PATH": f"{AIRFLOW_BIN}{os.pathsep}{clean.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "PYTHONPATH": str(home),
        **page_exports(),
        **warehouse,
    }
    # Section 3: the metadata database (SQLite in the home) and the pools.
    for command in [*doc_commands("airflow db"), *doc_commands("airflow pools")]:
        result = run(command, env)
        assert result.returncode == 0, output_of(result)
    return env


def run(command: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    """``command`` at the root of the clone, as the page's shell runs it."""
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def output_of(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-4000:]}"


# Named by the page apart, with what they need besides Airflow (dbt's environment, a key file for
# BigQuery); tests/integration/test_taxi_warehouse_models.py runs the Postgres one.
DBT_DAGS = {"taxi_warehouse_models", "taxi_warehouse_models_bigquery"}


def test_the_page_names_every_dag_and_the_commands_this_test_runs():
    tested = {command[3] for command in doc_commands("airflow dags test")}
    assert tested | DBT_DAGS == {path.stem for path in (REPO / "dags").glob("*.py")}
    assert all(f"`{dag_id}`" in DOC.read_text() for dag_id in DBT_DAGS)
    assert ["airflow", "db", "migrate"] in doc_commands("airflow db")
    assert shlex.split(POOL_COMMAND) in doc_commands("airflow pools")


def test_airflow_dags_test_of_every_dag_exits_0_in_a_fresh_home(shell, warehouse, postgres, local_mirror):
    for command in doc_commands("airflow dags test"):
        result = run(command, shell)
        assert result.returncode == 0, f"{shlex.join(command)}: {output_of(result)}"
        assert "'dict' object has no attribute 'hex'" not in result.stdout + result.stderr

    import psycopg

    folder, _ = local_mirror
    month = json.loads(doc_commands("airflow dags test taxi_api_to_postgres")[0][-1])["month"]
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        landed = month_row_counts(conn, warehouse["AIRFLOW_VAR_PG_SCHEMA"], "yellow_tripdata")
    first_day = datetime.strptime(month, "%Y-%m").date()
    assert landed[first_day] == expected.rows(expected.mirror_file(folder, "yellow", month))


def test_without_plugins_the_import_errors_name_the_plugins_folder(shell, tmp_path):
    empty = tmp_path / "plugins"
    empty.mkdir()
    without_plugins = {**shell, "AIRFLOW__CORE__PLUGINS_FOLDER": str(empty)}
    run(["airflow", "dags", "reserialize"], without_plugins)  # parses the folder; records the errors
    errors = import_errors(without_plugins)
    assert set(errors) == set(TIMETABLE_DAGS), errors
    for dag_id, error in errors.items():
        assert "copy this repository's plugins/ into your Airflow's plugins folder" in error, dag_id


def import_errors(env: dict[str, str]) -> dict[str, str]:
    """``{dag file stem: error}`` as ``airflow dags list-import-errors`` shows them (it exits 1 if any)."""
    listed = run(["airflow", "dags", "list-import-errors", "--output", "json"], env)
    table = next((line for line in listed.stdout.splitlines() if line.startswith("[")), None)
    if table is None:  # "No data found"
        assert listed.returncode == 0, output_of(listed)
        return {}
    return {Path(error["filepath"]).stem: error["error"] for error in json.loads(table)}


@pytest.fixture(scope="module")
def scheduler(home, shell, postgres, tmp_path_factory):
    """The copied folders under Airflow's four processes (their own home and metadata database on the
    session's Postgres; ``AirflowUI.start`` runs the page's `db migrate` and pools import). The
    schedules are bounded to one month, so unpausing a monthly DAG creates one scheduled run."""
    month = "2020-11"
    env = {
        **{key: value for key, value in shell.items() if key != "AIRFLOW_HOME"},
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW_VAR_TAXI_FIRST_MONTH": month,
        "AIRFLOW_VAR_TAXI_LAST_MONTH": month,
    }
    with running_airflow(tmp_path_factory.mktemp("scheduler"), postgres, env) as airflow:
        harness = SchedulerHarness(airflow)
        harness.log_in()
        yield harness, month


def test_a_scheduled_run_lands_its_month(scheduler, warehouse, postgres, local_mirror):
    harness, month = scheduler
    harness.unpause("taxi_api_to_postgres")
    [run_] = harness.wait_for_runs("taxi_api_to_postgres", 1, timeout=420)
    assert run_["run_type"] == "scheduled"
    assert run_["state"] == "success", harness.task_states("taxi_api_to_postgres", run_["dag_run_id"])

    import psycopg

    folder, _ = local_mirror
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        landed = month_row_counts(conn, warehouse["AIRFLOW_VAR_PG_SCHEMA"], "green_tripdata")
    first_day = datetime.strptime(month, "%Y-%m").date()
    assert landed[first_day] == expected.rows(expected.mirror_file(folder, "green", month))


def test_a_run_whose_pool_is_missing_fails_at_once_naming_the_command(scheduler):
    harness, month = scheduler
    harness.api("DELETE", "/pools/postgres_loads")
    run_id = harness.trigger("taxi_api_to_postgres", {"taxis": ["green"], "month": month})
    # Bounded: without the check the run would stay running, its stage task scheduled, for ever.
    finished = harness.wait_for_run("taxi_api_to_postgres", run_id, timeout=90)
    assert finished["state"] == "failed"
    assert "pool postgres_loads does not exist" in finished["note"]
    assert f"run `{POOL_COMMAND}`" in finished["note"]
    assert set(harness.task_states("taxi_api_to_postgres", run_id).values()) == {None}
