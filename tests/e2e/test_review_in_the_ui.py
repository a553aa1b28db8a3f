"""A person approves a flagged month from the UI's required-actions page, then sees it in Taxi results.

The runs are made through the REST API (green 2020-10 and a December of the same trips, then a
December with a tenth of them, which the default ``anomaly_actions`` sends to a person); what the
person does goes through the browser: the page the review's email links to, its flag and chart
link, the reason field and the Approve button, then the results view.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from local_stack import expected
from local_stack.airflow_processes import running_airflow
from local_stack.airflow_ui import USERNAME, AirflowUI
from local_stack.postgres import PostgresServer
from local_stack.report import month_row_counts
from local_stack.scheduler_api import SchedulerHarness
from local_stack.tlc_server import SAMPLES
from tests.conftest import dag_environment
from tests.e2e.conftest import ARTIFACTS, _failed, _only_logs
from tests.e2e.test_web_ui import PAGE_TIMEOUT, _body_text, _click, _log_in, _poll, _wait
from tests.reliability.conftest import DECEMBER_PATH, as_december, edited_sample
from tests.reliability.fault_server import FaultyMirror, faulty_mirror

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DAG_ID = "taxi_api_to_postgres"
REVIEW = "green.check_anomalies"
DECEMBER = date(2020, 12, 1)


@pytest.fixture
def mirror() -> Iterator[FaultyMirror]:
    with faulty_mirror(SAMPLES) as server:
        yield server


@pytest.fixture
def airflow_ui(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: PostgresServer, pg_schema: str, mirror
) -> Iterator[AirflowUI]:
    """The UI on the test's services; only the runs the test makes (no schedule's catch-up)."""
    env = dag_environment(postgres, mirror.url, pg_schema, tmp_path / "charts")
    with running_airflow(tmp_path, postgres, env, {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}) as ui:
        yield ui
    if _failed(request):
        shutil.copytree(ui.folder, ARTIFACTS / "airflow-ui-review", dirs_exist_ok=True, ignore=_only_logs)
        shutil.copytree(tmp_path / "airflow" / "logs", ARTIFACTS / "review-task-logs", dirs_exist_ok=True)


def test_a_person_approves_a_flagged_month_in_the_ui_and_sees_it_in_taxi_results(
    airflow_ui, browser, mirror, pg_conn, pg_schema, tmp_path
):
    api = SchedulerHarness(airflow_ui)
    api.log_in()
    api.unpause(DAG_ID)
    for month, edit in (("2020-10", None), ("2020-12", as_december)):
        if edit:
            mirror.replace(DECEMBER_PATH, edited_sample(edit))
        run_id = api.trigger(DAG_ID, {"taxis": ["green"], "month": month})
        assert api.wait_for_run(DAG_ID, run_id, timeout=600)["state"] == "success"
    tenth = tmp_path / "tenth" / DECEMBER_PATH.rsplit("/", 1)[-1]
    tenth.parent.mkdir()
    tenth.write_bytes(edited_sample(lambda rows: [rows[0], *as_december(rows)[1::10]]))
    mirror.replace(DECEMBER_PATH, tenth.read_bytes())
    run_id = api.trigger(DAG_ID, {"taxis": ["green"], "month": "2020-12"})
    api.wait_for_task_state(DAG_ID, run_id, REVIEW, "awaiting_input", timeout=600)
    subject = api.hitl_detail(DAG_ID, run_id, REVIEW)["subject"]

    _log_in(browser, airflow_ui, airflow_ui.password)
    # The dashboard counts what waits for a person.
    _poll(lambda: "Required Actions" in _body_text(browser), PAGE_TIMEOUT, 0.5, "no dashboard after login")
    # The page the review's email links to.
    browser.get(
        f"{airflow_ui.url}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{REVIEW}/required_actions"
    )
    _poll(lambda: subject in _body_text(browser), PAGE_TIMEOUT, 0.5, "the review's subject is not shown")
    shown = _body_text(browser)
    assert "rows" in shown and f"{expected.rows(tenth):,}" in shown and "2020-10" in shown
    # The body's link to the staged month's chart in Taxi results (not the navigation's entry).
    chart = browser.find_element(By.CSS_SELECTOR, "a[href*='/taxi-results/?']").get_attribute("href")
    assert f"run_id={quote(run_id, safe='')}" in chart and chart.endswith("#chart")

    reason = "real: checked with the TLC"

    def typed() -> bool:
        try:
            field = browser.find_element(By.ID, "element_reason")
            field.clear()
            field.send_keys(reason)
            return field.get_attribute("value") == reason
        except WebDriverException:
            return False

    _poll(typed, PAGE_TIMEOUT, 0.3, "the reason field did not keep what was typed")
    _click(browser, By.XPATH, "//button[normalize-space()='Approve']")

    assert api.wait_for_run(DAG_ID, run_id, timeout=300)["state"] == "success"
    assert month_row_counts(pg_conn, pg_schema, "green_tripdata")[DECEMBER] == expected.rows(tenth)
    answer = api.hitl_detail(DAG_ID, run_id, REVIEW)
    assert (answer["chosen_options"], answer["params_input"]["reason"]) == (["Approve"], reason)
    assert answer["responded_by_user"]["name"] == USERNAME

    browser.get(f"{airflow_ui.url}/taxi-results/?taxi=green&month=2020-12#chart")
    row = _wait(browser).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, f"tr.load[data-run-id='{run_id}'] .review"))
    )
    assert row.get_attribute("data-decision") == "approve" and row.get_attribute("data-by") == USERNAME
    assert f"approved by {USERNAME}" in row.text and reason in row.text
