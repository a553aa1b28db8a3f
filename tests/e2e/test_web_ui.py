"""The Airflow web UI as a user drives it: log in, find every DAG, trigger a month from the form
(which unpauses the DAG, so it catches up on the months of its schedule), find the rows in
Postgres, open the Taxi results view on what the runs loaded, and backfill the GCS flow from the
form with its defaults.

Everything a user does goes through the browser against the UI that ``scripts/ui.sh`` starts (same
code, a private Airflow home and free ports, the schedules bounded like the local stack's); the
checks of what ran and landed read the REST API, Postgres and the bucket directly.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

import numpy as np
import pyarrow.parquet as pq
import pytest
from psycopg import sql
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from include.destinations.postgres import trips_per_day
from include.observing.chart import HEIGHT_PX, WIDTH_PX
from include.source.families import TAXIS as DECLARED_FAMILIES
from include.source.families import schema_for
from include.source.months import Month
from local_stack import expected
from local_stack.airflow_ui import USERNAME, AirflowUI
from local_stack.report import month_row_counts
from local_stack.scheduler_api import SchedulerHarness
from tests.dags.test_dag_integrity import EXPECTED_DAGS
from tests.e2e.conftest import UI_MONTHS

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DAG_ID = "taxi_api_to_postgres"
BACKFILL_DAG_ID = "taxi_api_to_gcs"
TAXIS = ("yellow", "green", "fhv")  # what the course mirror publishes: the local stack's runs load these
PAGE_TIMEOUT = 30  # seconds for a page to show what it should
RUN_TIMEOUT = 600  # seconds for the runs of the schedule's months to finish on a busy machine
T = TypeVar("T")


def _poll(probe: Callable[[], T | None], timeout: float, interval: float, what: str) -> T:
    """The first truthy result of ``probe``, or a failure naming ``what`` and the last result."""
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"{what} within {timeout} s (last seen: {result!r})")


def _wait(browser: WebDriver) -> WebDriverWait:
    """A wait that looks again when React re-renders the element it found."""
    return WebDriverWait(browser, PAGE_TIMEOUT, ignored_exceptions=(StaleElementReferenceException,))


def _click(browser: WebDriver, by: str, value: str) -> None:
    """Click an element once it is there and clickable, finding it anew if React replaced it."""

    def clicked() -> bool:
        try:
            browser.find_element(by, value).click()
        except WebDriverException:  # not rendered yet, replaced, or covered while animating
            return False
        return True

    _poll(clicked, PAGE_TIMEOUT, 0.3, f"could not click {value}")


def _text(browser: WebDriver, css: str) -> str:
    """The text of the element ``css`` selects, or "" while it is not rendered."""
    try:
        return browser.find_element(By.CSS_SELECTOR, css).text
    except WebDriverException:
        return ""


def _body_text(browser: WebDriver) -> str:
    return _text(browser, "body")


def _log_in(browser: WebDriver, ui: AirflowUI, password: str) -> None:
    browser.get(f"{ui.url}/")
    _wait(browser).until(EC.visibility_of_element_located((By.NAME, "username")))

    def filled() -> bool:
        """Type both fields anew until they hold what was typed: the form may re-render meanwhile."""
        try:
            for name, value in (("username", USERNAME), ("password", password)):
                field = browser.find_element(By.NAME, name)
                field.clear()
                field.send_keys(value)
            return all(
                browser.find_element(By.NAME, name).get_attribute("value") == value
                for name, value in (("username", USERNAME), ("password", password))
            )
        except WebDriverException:
            return False

    _poll(filled, PAGE_TIMEOUT, 0.3, "the login form did not keep what was typed")
    _click(browser, By.CSS_SELECTOR, "button[type=submit]")


def _listed_dags(browser: WebDriver, ui: AirflowUI) -> set[str]:
    """The DAG ids on the Dags page, reloaded, as a user would while the DAGs are being parsed."""
    browser.get(f"{ui.url}/dags")
    try:
        _wait(browser).until(EC.visibility_of_element_located((By.XPATH, "//h2[contains(., 'Dags')]")))
        return {element.text for element in browser.find_elements(By.CSS_SELECTOR, "[data-testid=dag-id]")}
    except WebDriverException:
        return set()


def _trigger_from_form(browser: WebDriver, month: str) -> str:
    """Fill the DAG's trigger form with ``month``, leave the rest as it is, submit it and return the
    new run's id."""
    wait = _wait(browser)
    _click(browser, By.CSS_SELECTOR, "button[aria-label='Trigger Dag']")
    # The families default to all: an array param is a text box with one value per line.
    taxis = wait.until(EC.visibility_of_element_located((By.ID, "element_taxis")))
    assert taxis.get_attribute("value").split() == list(DECLARED_FAMILIES)  # the mirror's run loads its three
    month_field = browser.find_element(By.ID, "element_month")
    month_field.send_keys(month)
    assert month_field.get_attribute("value") == month
    # Ticked by default: a paused DAG's run would wait forever. It also starts the catch-up.
    assert _checkbox(browser, f"Unpause {DAG_ID} on trigger").is_selected()
    _click(browser, By.CSS_SELECTOR, "[data-testid=trigger-dag-submit]")
    wait.until(EC.url_contains(f"/dags/{DAG_ID}/runs/"))
    return unquote(browser.current_url.split("/runs/", 1)[1].split("/")[0])


def _checkbox(browser: WebDriver, label: str):
    return browser.find_element(By.XPATH, f"//label[contains(., '{label}')]//input[@type='checkbox']")


def _pick_date(browser: WebDriver, which: int, day: date) -> None:
    """Type ``day`` at midnight into the backfill form's ``which``-th date picker (0: From, 1: To)."""
    browser.find_elements(By.CSS_SELECTOR, "[data-testid=datetime-input]")[which].click()

    def typed(placeholder: str, text: str) -> bool:
        """Type into the open picker's field; False while the picker is not (or no longer) shown."""
        try:
            found = browser.find_elements(By.CSS_SELECTOR, f"input[placeholder='{placeholder}']")
            field = next((field for field in found if field.is_displayed()), None)
            if field is None:
                return False
            field.send_keys(text)
            return True
        except WebDriverException:  # re-rendered while we looked
            return False

    _poll(lambda: typed("YYYY/MM/DD", day.strftime("%Y/%m/%d")), PAGE_TIMEOUT, 0.3, "no date picker")
    _poll(lambda: typed("HH:mm", "00:00"), PAGE_TIMEOUT, 0.3, "no time field in the date picker")
    browser.find_element(By.XPATH, "//*[contains(text(), 'Date Range')]").click()  # closes the picker


def _backfill_from_form(browser: WebDriver, first: date, last: date) -> None:
    """Fill the trigger form's Backfill with a date range, leave everything else as it is, submit."""
    _click(browser, By.CSS_SELECTOR, "button[aria-label='Trigger Dag']")
    _click(browser, By.XPATH, "//*[contains(text(), 'Run this Dag for a range of dates')]")
    _pick_date(browser, 0, first)
    _pick_date(browser, 1, last)
    months = sum(1 for month in UI_MONTHS if first <= month.first_day <= last)
    _poll(
        lambda: f"{months} runs will be triggered." in _body_text(browser),
        PAGE_TIMEOUT,
        0.5,
        "the backfill form did not count the range's runs",
    )
    # The defaults: the DAG is unpaused, and the form's params are not sent.
    assert _checkbox(browser, f"Unpause {BACKFILL_DAG_ID} on trigger").is_selected()
    assert not _checkbox(browser, "Override parameters on existing runs").is_selected()
    assert browser.find_element(By.ID, "element_taxis").get_attribute("value").split() == list(
        DECLARED_FAMILIES
    )
    _click(browser, By.XPATH, "//button[normalize-space()='Run Backfill']")


def _run_state(browser: WebDriver, run_id: str) -> str:
    """The run's state badge on its page (Queued, Running, Success, Failed)."""
    badge = browser.find_element(
        By.XPATH, f"//h2[normalize-space()='{run_id}']/following::*[@data-testid='state-badge'][1]"
    )
    return badge.text.strip()


def _run_summary(runs: list[dict]) -> list[tuple[str, str | None, str]]:
    return [(run["run_type"], (run["logical_date"] or "")[:10] or None, run["state"]) for run in runs]


def _expected_rows(local_mirror, taxi: str, month: Month) -> int:
    folder, _ = local_mirror
    return expected.rows(expected.mirror_file(folder, taxi, str(month)))


def test_a_month_triggered_from_the_form_catches_up_and_a_backfill_with_the_forms_defaults_loads_every_family(
    airflow_ui: AirflowUI,
    browser: WebDriver,
    artifacts: Path,
    pg_conn,
    pg_schema: str,
    local_mirror,
    storage_client,
    gcs_bucket: str,
):
    # The login is the configured one: a wrong password is refused, the configured one accepted.
    _log_in(browser, airflow_ui, "not-the-password")
    _poll(lambda: "Invalid credentials" in _body_text(browser), PAGE_TIMEOUT, 0.5, "no login error shown")
    _log_in(browser, airflow_ui, airflow_ui.password)
    _wait(browser).until(lambda driver: "/auth/login" not in driver.current_url)
    api = SchedulerHarness(airflow_ui)  # what ran, as the REST API reports it
    api.log_in()

    # Every DAG of the repository is listed, and no file failed to import.
    _poll(
        lambda: _listed_dags(browser, airflow_ui) >= EXPECTED_DAGS,
        60,
        2,
        f"the Dags page did not list all of {sorted(EXPECTED_DAGS)}",
    )
    assert not browser.find_elements(By.CSS_SELECTOR, "[aria-label^='Dag Import Error']")
    browser.get(f"{airflow_ui.url}/")
    _poll(lambda: "Dag Processor" in _body_text(browser), PAGE_TIMEOUT, 0.5, "the home page did not load")
    assert "Dag Import Error" not in _body_text(browser)

    # Trigger 2020-10 from the DAG's trigger form, which also unpauses the DAG.
    browser.get(f"{airflow_ui.url}/dags")
    _click(browser, By.LINK_TEXT, DAG_ID)
    _wait(browser).until(EC.url_contains(f"/dags/{DAG_ID}"))
    run_id = _trigger_from_form(browser, month=str(UI_MONTHS[0]))

    # The run's page shows its state once it has finished (the API says when, without reloading
    # the page under the browser every few seconds).
    assert api.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)["state"] == "success"
    browser.refresh()

    def shown_state() -> str | None:
        try:
            return _run_state(browser, run_id) or None
        except WebDriverException:  # the page is (re)rendering
            return None

    _poll(lambda: shown_state() == "Success", PAGE_TIMEOUT, 1, f"run {run_id}'s page shows no Success")

    # The graph shows the run's plan and a group per family; it is kept as an artifact (and is
    # docs/images' source).
    _click(browser, By.CSS_SELECTOR, "button[aria-label^='Show Graph']")
    _poll(
        lambda: "success" in _text(browser, ".react-flow__node[data-id='plan_month']"),
        PAGE_TIMEOUT,
        0.5,
        "plan_month not a success in the graph",
    )
    for taxi in TAXIS:  # each family's task group, collapsed, with the state of its tasks
        assert "success" in _text(browser, f".react-flow__node[data-id='{taxi}']"), taxi
    screenshot = artifacts / f"{DAG_ID}_graph.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0

    # Unpaused, the DAG caught up on exactly the months of its schedule; 2020-10 ran twice, and
    # each family's month is in Postgres once, with the rows the cleaning rules keep.
    runs = api.wait_for_runs(DAG_ID, count=len(UI_MONTHS) + 1, timeout=RUN_TIMEOUT)
    scheduled = [run for run in runs if run["run_type"] == "scheduled"]
    assert _run_summary(scheduled) == [("scheduled", m.first_day.isoformat(), "success") for m in UI_MONTHS]
    # The form's run has the form's logical date ("now"); its month came from the month param.
    assert [(run["dag_run_id"], run["state"]) for run in runs if run not in scheduled] == [
        (run_id, "success")
    ]
    assert api.wait_for_dag(DAG_ID)["next_dagrun_logical_date"] is None
    for taxi in TAXIS:
        assert month_row_counts(pg_conn, pg_schema, f"{taxi}_tripdata") == {
            month.first_day: _expected_rows(local_mirror, taxi, month) for month in UI_MONTHS
        }

    # The Taxi results view, from the navigation, shows the months as the warehouse holds them.
    _check_results_view(browser, airflow_ui, artifacts, pg_conn, pg_schema)

    # A backfill of the GCS flow from the form, with its defaults, writes every family's months.
    browser.get(f"{airflow_ui.url}/dags/{BACKFILL_DAG_ID}")
    _backfill_from_form(browser, UI_MONTHS[0].first_day, UI_MONTHS[-1].first_day)
    backfill = _poll(lambda: api.backfills(BACKFILL_DAG_ID), PAGE_TIMEOUT, 1, "no backfill was created")[-1]
    assert backfill["dag_run_conf"] is None, "the form sent params it was not asked to override"
    api.wait_for_backfill(backfill, timeout=RUN_TIMEOUT)
    runs = api.wait_for_runs(BACKFILL_DAG_ID, count=len(UI_MONTHS), timeout=RUN_TIMEOUT)
    # One run per month: the backfill's, or the catch-up's where the unpaused scheduler came first.
    assert [(run["logical_date"][:10], run["state"]) for run in runs] == [
        (month.first_day.isoformat(), "success") for month in UI_MONTHS
    ]
    assert "backfill" in {run["run_type"] for run in runs}
    for taxi in TAXIS:
        for month in UI_MONTHS:
            blob = storage_client.bucket(gcs_bucket).blob(f"{taxi}_tripdata/{taxi}_tripdata_{month}.parquet")
            rows = pq.read_table(io.BytesIO(blob.download_as_bytes())).num_rows
            assert rows == _expected_rows(local_mirror, taxi, month), (taxi, month)


def _serving_profile(pg_conn, schema_name: str, taxi: str, month: Month) -> tuple[str, int]:
    """The run whose load of the month the warehouse serves (its latest published profile, as the
    run wrote it), and the rows it set aside as unreadable."""
    [(run_id, rejected)] = pg_conn.execute(
        sql.SQL(
            "SELECT run_id, rows_rejected FROM {} WHERE source_month = %s AND published_at IS NOT NULL"
            " ORDER BY published_at DESC LIMIT 1"
        ).format(sql.Identifier(schema_name, f"{taxi}_tripdata_profile")),
        (month.first_day,),
    ).fetchall()
    return run_id, rejected


def _low_trip_days(pg_conn, schema_name: str, taxi: str, month: Month) -> list[date]:
    """Days of the month with under half the trips of its median day with trips, from the warehouse."""
    per_day = trips_per_day(pg_conn, schema_name, f"{taxi}_tripdata", schema_for(taxi).pickup_column, month)
    days = [month.first_day + timedelta(days=i) for i in range(month.last_day.day)]
    median = float(np.median([per_day[day] for day in days if per_day.get(day)]))
    return [day for day in days if per_day.get(day, 0) < 0.5 * median]


def _check_results_view(
    browser: WebDriver, ui: AirflowUI, artifacts: Path, pg_conn, schema_name: str
) -> None:
    """Open Taxi results from the navigation and compare what it shows with the warehouse."""
    browser.get(f"{ui.url}/")
    # A top-level button of the navigation bar, beside Browse and Admin.
    _click(browser, By.CSS_SELECTOR, "a[aria-label='Taxi results'][href$='/plugin/taxi-results']")
    _wait(browser).until(EC.url_contains("/plugin/taxi-results"))
    # The view is the plugin's page in an iframe of the UI, served by the api-server at /taxi-results/.
    _wait(browser).until(
        EC.frame_to_be_available_and_switch_to_it((By.CSS_SELECTOR, "iframe[title='Taxi results']"))
    )
    for taxi in TAXIS:
        counts = month_row_counts(pg_conn, schema_name, f"{taxi}_tripdata")
        for month in UI_MONTHS:
            run_id, rejected = _serving_profile(pg_conn, schema_name, taxi, month)
            row_css = f"tr.load[data-taxi='{taxi}'][data-month='{month}'][data-run-id='{run_id}']"
            row = _wait(browser).until(EC.visibility_of_element_located((By.CSS_SELECTOR, row_css)))
            assert row.get_attribute("data-published") == "true"
            assert row.find_element(By.CSS_SELECTOR, "td.rows-loaded").text == f"{counts[month.first_day]:,}"
            assert row.find_element(By.CSS_SELECTOR, "td.rows-rejected").text == f"{rejected:,}"
    # Green October is a whole real month with no earlier month to compare: checked, nothing flagged.
    green_october = f"tr.load[data-taxi='green'][data-month='{UI_MONTHS[0]}'] td.anomalies"
    assert browser.find_element(By.CSS_SELECTOR, green_october).text == "none"

    # The chart shown first is the newest month of the first family, yellow. Its sample's trips
    # are spread over every day, so, like a real month, it has no low day to flag.
    month = UI_MONTHS[-1]
    assert _low_trip_days(pg_conn, schema_name, "yellow", month) == []
    yellow = browser.find_element(By.CSS_SELECTOR, f"tr.load[data-taxi='yellow'][data-month='{month}']")
    assert "low_trip_days" not in yellow.find_element(By.CSS_SELECTOR, "td.anomalies").text
    chart = browser.find_element(By.CSS_SELECTOR, "#chart img")
    assert chart.get_attribute("data-run-id") == _serving_profile(pg_conn, schema_name, "yellow", month)[0]
    _poll(
        lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", chart),
        PAGE_TIMEOUT,
        0.5,
        "the chart did not load",
    )
    size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", chart)
    assert size == [WIDTH_PX, HEIGHT_PX]
    assert "Flagged days" not in browser.find_element(By.ID, "chart").text
    browser.switch_to.default_content()
    screenshot = artifacts / "taxi_results.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0
