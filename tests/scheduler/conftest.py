"""A real Airflow for a test: api-server, scheduler, dag-processor and triggerer, LocalExecutor.

``airflow_scheduler`` starts the four processes against a fresh metadata database in the session's
Postgres, with ``scheduler_env`` (by default ``dag_env``: the test's connections and variables) in
their environment, creates the pools the DAGs' tasks use, and hands the test a
:class:`~tests.scheduler.harness.SchedulerHarness` logged in to the REST API. Every DAG starts
paused; only the runs the test creates (trigger, backfill) run, unless ``scheduler_settings`` turns
the job schedule on (catch-up tests).

Override ``scheduler_env`` or ``scheduler_settings`` in a test module to change them. Starting
takes about 30-60 s on two cores; a failed test leaves the components' and tasks' logs in
``test-artifacts/scheduler/<test>/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.postgres import PostgresServer
from local_stack.stack import REPO
from tests.airflow_processes import running_airflow
from tests.scheduler.harness import POOLS, SchedulerHarness

ARTIFACTS = REPO / "test-artifacts" / "scheduler"
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Keep each phase's report on the test, so the fixture can tell at teardown whether it failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def scheduler_env(dag_env: dict[str, str]) -> dict[str, str]:
    """Connections and variables in the environment of every Airflow process (and so of every task)."""
    return dag_env


@pytest.fixture
def scheduler_settings() -> dict[str, str]:
    """Airflow settings over those of ``local_stack.airflow_ui`` (e.g. the job schedule on)."""
    return {}


@pytest.fixture
def airflow_scheduler(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres: PostgresServer,
    scheduler_env: dict[str, str],
    scheduler_settings: dict[str, str],
) -> Iterator[SchedulerHarness]:
    """Airflow's four processes on the test's services, and a client of their REST API."""
    with running_airflow(tmp_path, postgres, scheduler_env, scheduler_settings) as airflow:
        harness = SchedulerHarness(airflow)
        harness.log_in()
        for name, slots in POOLS.items():
            harness.create_pool(name, slots)
        yield harness
    reports = request.node.stash.get(_REPORTS, {})
    if any(report.failed for report in reports.values()):
        destination = ARTIFACTS / request.node.name
        shutil.copytree(airflow.folder, destination / "components", dirs_exist_ok=True, ignore=_only_logs)
        shutil.copytree(tmp_path / "airflow" / "logs", destination / "task-logs", dirs_exist_ok=True)


def _only_logs(folder: str, names: list[str]) -> list[str]:
    """Leave the passwords file and pid files out of the artifacts."""
    return [name for name in names if not name.endswith(".log")]
