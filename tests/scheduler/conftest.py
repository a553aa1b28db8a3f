"""A real Airflow for a test module: api-server, scheduler, dag-processor and triggerer, LocalExecutor.

``airflow_scheduler`` starts the four processes once per test module, against a fresh metadata
database in the session's Postgres, with ``scheduler_env`` (the module's connections and variables,
by default on the sample files and a warehouse schema of the module's own) in their environment
and the pools of ``pools.json``, and hands the tests a
:class:`~local_stack.scheduler_api.SchedulerHarness` logged in to the REST API. Starting Airflow
takes 30-60 s on two cores, so the tests of a module share it, and with it the warehouse: they
run in file order, each going on from where the previous one left the system.

The scheduler runs the DAGs' schedules as a deployment does: every DAG starts paused; unpaused, it
catches up on the months its schedule has. Override ``scheduler_env`` or ``scheduler_settings``
in a module to change them. A failed test leaves the components' and tasks' logs in
``test-artifacts/scheduler/<module>/``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from local_stack.airflow_processes import running_airflow
from local_stack.postgres import PostgresServer
from local_stack.scheduler_api import SchedulerHarness
from local_stack.stack import REPO
from tests.conftest import dag_environment

ARTIFACTS = REPO / "test-artifacts" / "scheduler"
_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Mark the module of a failed test, so its Airflow's logs are kept at the module's end."""
    report = yield
    module = item.getparent(pytest.Module)
    if report.failed and module is not None:
        module.stash[_FAILED] = True
    return report


@pytest.fixture(scope="module")
def scheduler_schema(postgres: PostgresServer) -> Iterator[str]:
    """The module's warehouse schema, dropped afterwards."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(scope="module")
def scheduler_env(
    postgres: PostgresServer,
    tlc_base_url: str,
    scheduler_schema: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """Connections and variables in the environment of every Airflow process (and so of every task)."""
    return dag_environment(postgres, tlc_base_url, scheduler_schema, tmp_path_factory.mktemp("charts"))


@pytest.fixture(scope="module")
def scheduler_settings() -> dict[str, str]:
    """Airflow settings over those of ``local_stack.airflow_ui``."""
    return {}


@pytest.fixture(scope="module")
def airflow_scheduler(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
    scheduler_env: dict[str, str],
    scheduler_settings: dict[str, str],
) -> Iterator[SchedulerHarness]:
    """Airflow's four processes on the module's services, and a client of their REST API."""
    folder = tmp_path_factory.mktemp("airflow")
    with running_airflow(folder, postgres, scheduler_env, scheduler_settings) as airflow:
        harness = SchedulerHarness(airflow)
        harness.log_in()
        yield harness
    if request.node.stash.get(_FAILED, False):
        destination = ARTIFACTS / request.node.name.removesuffix(".py")
        shutil.copytree(airflow.folder, destination / "components", dirs_exist_ok=True, ignore=_only_logs)
        shutil.copytree(folder / "airflow" / "logs", destination / "task-logs", dirs_exist_ok=True)


def _only_logs(folder: str, names: list[str]) -> list[str]:
    """Leave the passwords file and pid files out of the artifacts."""
    return [name for name in names if not name.endswith(".log")]
