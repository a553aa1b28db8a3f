"""Fixtures of the browser test: the Airflow UI on the test session's services, and headless Chromium.

A failed test leaves what it saw in ``test-artifacts/``: the page's screenshot and HTML, the UI's
component logs and the task logs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from include.source.months import Month
from local_stack.airflow_processes import running_airflow
from local_stack.airflow_ui import AirflowUI
from local_stack.postgres import PostgresServer
from local_stack.stack import REPO

ARTIFACTS = REPO / "test-artifacts"
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Keep each phase's report on the test, so fixtures can tell at teardown whether it failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(report.failed for report in reports.values())


@pytest.fixture
def artifacts() -> Path:
    """``test-artifacts/``, kept by CI: what the browser saw."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# The months the UI's schedules cover here: like the local stack's, bounded by the Variables
# taxi_first_month / taxi_last_month, and two of them rather than its four to keep the test short.
UI_MONTHS = (Month(2020, 10), Month(2020, 11))


@pytest.fixture
def ui_env(dag_env: dict[str, str], local_mirror: tuple[Path, str], gcs_bucket: str) -> dict[str, str]:
    """The DAGs' connections and variables as the local stack sets them: the mirror with every
    family, the schedules bounded to ``UI_MONTHS``, and a bucket of the test's own."""
    _, url = local_mirror
    return {
        **dag_env,
        "AIRFLOW_VAR_MIRROR_BASE_URL": url,
        "AIRFLOW_VAR_TLC_BASE_URL": url,
        "AIRFLOW_VAR_TAXI_FIRST_MONTH": str(UI_MONTHS[0]),
        "AIRFLOW_VAR_TAXI_LAST_MONTH": str(UI_MONTHS[-1]),
        "AIRFLOW_VAR_GCS_BUCKET": gcs_bucket,
    }


@pytest.fixture
def airflow_ui(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: PostgresServer, ui_env: dict[str, str]
) -> Iterator[AirflowUI]:
    """The UI as ``scripts/ui.sh`` starts it, with an Airflow home and metadata DB of its own, on
    the test's services.

    The password is random, so logging in with it proves the configured passwords file is used.
    """
    with running_airflow(tmp_path, postgres, ui_env) as ui:
        yield ui
    if _failed(request):
        shutil.copytree(ui.folder, ARTIFACTS / "airflow-ui", dirs_exist_ok=True, ignore=_only_logs)
        shutil.copytree(tmp_path / "airflow" / "logs", ARTIFACTS / "airflow-task-logs", dirs_exist_ok=True)


def _only_logs(folder: str, names: list[str]) -> list[str]:
    """Leave the passwords file and pid files out of the artifacts."""
    return [name for name in names if not name.endswith(".log")]


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """Debian's Chromium, headless, through Debian's chromedriver (Selenium Manager never downloads)."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail(
            "the browser test needs Debian's chromium and chromium-driver packages: run "
            "scripts/bootstrap.sh --browser, or apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # No sandbox: CI runs as root, where Chromium refuses to start with one.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    yield driver
    if _failed(request):
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / f"{request.node.name}-failure.png"))
        (ARTIFACTS / f"{request.node.name}-failure.html").write_text(driver.page_source)
    driver.quit()
