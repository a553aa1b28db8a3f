"""The Airflow web UI as a user drives it: log in, find every DAG, trigger a month from the form,
find its rows in Postgres, and open the Taxi results view on what the run loaded.

Everything goes through the browser against the UI that ``scripts/ui.sh`` starts (same code, a
private Airflow home and free ports); only the checks of what landed read Postgres directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from include.chart import HEIGHT_PX, WIDTH_PX
from include.months import Month
from include.postgres import monthly_table_name, trips_per_day
from local_stack.airflow_ui import USERNAME, AirflowUI
from local_stack.report import month_row_counts
from tests.dags.test_dag_integrity import EXPECTED_DAGS
from tests.profiles import create_profile_table, insert_profile
from tests.samples import GREEN_2020_10, read_with_pandas

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DAG_ID = "taxi_api_to_postgres"
PAGE_TIMEOUT = 30  # seconds for a page to show what it should
RUN_TIMEOUT = 180  # seconds for the triggered run to finish
# The monthly DAG does not write its month's profile yet (the core's redesign adds it): until it
# does, the test writes the profile of the loaded month itself, from the rows the run loaded.
# Set to True when it does, and the test checks the profile the run wrote instead.
DAG_WRITES_PROFILES = False
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


def _cleaned_rows(path: Path) -> int:
    """Rows the documented cleaning rules keep, counted with pandas: a pickup time and not 0 passengers."""
    source = read_with_pandas(path)
    pickup = next(column for column in source.columns if column.endswith("pickup_datetime"))
    return int((source[pickup].notna() & source.passenger_count.ne(0)).sum())


def _trigger_from_form(browser: WebDriver, taxi: str, month: str) -> str:
    """Fill the DAG's trigger form with ``taxi`` and ``month``, submit it and return the new run's id."""
    wait = _wait(browser)
    _click(browser, By.CSS_SELECTOR, "button[aria-label='Trigger Dag']")
    # The taxi param is a searchable select: its text box sits beside the input the form submits.
    taxi_choice = wait.until(
        EC.element_to_be_clickable(
            (
                By.XPATH,
                "//input[@name='element_taxi']/ancestor::*[.//input[@role='combobox']][1]//input[@role='combobox']",
            )
        )
    )
    taxi_choice.send_keys(taxi, Keys.ENTER)
    assert browser.find_element(By.NAME, "element_taxi").get_attribute("value") == taxi
    month_field = browser.find_element(By.ID, "element_month")
    month_field.send_keys(month)
    assert month_field.get_attribute("value") == month
    # A paused DAG's run would wait forever: the form unpauses it, which runs nothing else here
    # since the UI's scheduler creates only triggered runs.
    unpause = browser.find_element(
        By.XPATH, f"//label[contains(., 'Unpause {DAG_ID} on trigger')]//input[@type='checkbox']"
    )
    assert unpause.is_selected(), "the trigger form no longer unpauses the DAG by default"
    _click(browser, By.CSS_SELECTOR, "[data-testid=trigger-dag-submit]")
    wait.until(EC.url_contains(f"/dags/{DAG_ID}/runs/"))
    return unquote(browser.current_url.split("/runs/", 1)[1].split("/")[0])


def _run_state(browser: WebDriver, run_id: str) -> str:
    """The run's state badge on its page (Queued, Running, Success, Failed)."""
    badge = browser.find_element(
        By.XPATH, f"//h2[normalize-space()='{run_id}']/following::*[@data-testid='state-badge'][1]"
    )
    return badge.text.strip()


def test_a_month_triggered_from_the_trigger_form_lands_in_postgres(
    airflow_ui: AirflowUI, browser: WebDriver, artifacts: Path, pg_conn, pg_schema: str
):
    # The login is the configured one: a wrong password is refused, the configured one accepted.
    _log_in(browser, airflow_ui, "not-the-password")
    _poll(lambda: "Invalid credentials" in _body_text(browser), PAGE_TIMEOUT, 0.5, "no login error shown")
    _log_in(browser, airflow_ui, airflow_ui.password)
    _wait(browser).until(lambda driver: "/auth/login" not in driver.current_url)

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

    # Trigger green 2020-10 (the month the local mirror serves) from the DAG's trigger form.
    browser.get(f"{airflow_ui.url}/dags")
    _click(browser, By.LINK_TEXT, DAG_ID)
    _wait(browser).until(EC.url_contains(f"/dags/{DAG_ID}"))
    run_id = _trigger_from_form(browser, taxi="green", month="2020-10")

    def finished() -> str | None:
        try:
            state = _run_state(browser, run_id)
        except WebDriverException:  # the page is (re)rendering
            return None
        if state in ("Success", "Failed"):
            return state
        browser.refresh()  # the run page refreshes itself, but a reload never misses a change
        return None

    assert _poll(finished, RUN_TIMEOUT, 3, f"run {run_id} did not finish") == "Success"

    # The graph shows both tasks succeeded; it is kept as an artifact (and is docs/images' source).
    _click(browser, By.CSS_SELECTOR, "button[aria-label^='Show Graph']")
    for task_id in ("extract_load", "check_month"):
        node = f".react-flow__node[data-id='{task_id}']"
        _poll(
            lambda node=node: "success" in _text(browser, node), PAGE_TIMEOUT, 0.5, f"{task_id} not a success"
        )
    screenshot = artifacts / f"{DAG_ID}_graph.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0

    # The month's rows are in the run's schema, as many as the cleaning rules keep.
    counts = month_row_counts(pg_conn, pg_schema, monthly_table_name("green"))
    assert counts == {date(2020, 10, 1): _cleaned_rows(GREEN_2020_10)}

    # The Taxi results view, from the navigation, shows the month as the warehouse holds it.
    quietest_day = _write_or_find_profile(pg_conn, pg_schema, run_id)
    _check_results_view(browser, airflow_ui, artifacts, run_id, counts[date(2020, 10, 1)], quietest_day)


def _write_or_find_profile(pg_conn, schema_name: str, run_id: str) -> date:
    """The profile of the run's month (see ``DAG_WRITES_PROFILES``); returns the day its flag names."""
    october = Month(2020, 10)
    per_day = trips_per_day(
        pg_conn, schema_name, monthly_table_name("green"), "lpep_pickup_datetime", october
    )
    quietest = min((day for day in per_day if day.month == 10), key=per_day.__getitem__)
    if DAG_WRITES_PROFILES:
        [(published,)] = pg_conn.execute(
            f'SELECT published_at IS NOT NULL FROM "{schema_name}".green_tripdata_profile WHERE run_id = %s',
            (run_id,),
        ).fetchall()
        assert published, "the run published its month"
        return quietest
    read = len(read_with_pandas(GREEN_2020_10))
    loaded = sum(per_day.values())
    create_profile_table(pg_conn, schema_name, "green")
    insert_profile(
        pg_conn,
        schema_name,
        "green",
        october.first_day,
        run_id,
        staged_hours=0,
        published_hours=1,
        rows_read=read,
        rows_outside_month=sum(count for day, count in per_day.items() if day.month != 10),
        dropped_by_rule={"missing_pickup_time": 0, "no_passengers": read - loaded},
        trips_per_day={day.isoformat(): count for day, count in per_day.items()},
        anomalies=[
            {
                "feature": "trips_per_day_min",
                "value": per_day[quietest],
                "low": per_day[quietest] + 1.0,
                "high": max(per_day.values()) * 2.0,
                "action": "warn",
                "days": [quietest.isoformat()],
            }
        ],
    )
    return quietest


def _check_results_view(
    browser: WebDriver, ui: AirflowUI, artifacts: Path, run_id: str, rows_in_warehouse: int, flagged: date
) -> None:
    """Open Taxi results from the navigation and compare its green 2020-10 row with the warehouse."""
    browser.get(f"{ui.url}/")
    # A top-level button of the navigation bar, beside Browse and Admin.
    _click(browser, By.CSS_SELECTOR, "a[aria-label='Taxi results'][href$='/plugin/taxi-results']")
    _wait(browser).until(EC.url_contains("/plugin/taxi-results"))
    # The view is the plugin's page in an iframe of the UI, served by the api-server at /taxi-results/.
    _wait(browser).until(
        EC.frame_to_be_available_and_switch_to_it((By.CSS_SELECTOR, "iframe[title='Taxi results']"))
    )
    row_css = f"tr.load[data-taxi='green'][data-month='2020-10'][data-run-id='{run_id}']"
    row = _wait(browser).until(EC.visibility_of_element_located((By.CSS_SELECTOR, row_css)))
    assert row.get_attribute("data-published") == "true"
    assert row.find_element(By.CSS_SELECTOR, "td.rows-loaded").text == f"{rows_in_warehouse:,}"
    assert row.find_element(By.CSS_SELECTOR, "td.rows-rejected").text == "0"
    assert "warn anomaly: trips_per_day_min" in row.find_element(By.CSS_SELECTOR, "td.anomalies").text
    assert "No loads yet" in browser.find_element(By.ID, "yellow").text

    # The chart of the newest month is the PNG the plugin draws, loaded in full, its flagged day named.
    chart = browser.find_element(By.CSS_SELECTOR, "#chart img")
    assert chart.get_attribute("data-run-id") == run_id
    _poll(
        lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", chart),
        PAGE_TIMEOUT,
        0.5,
        "the chart did not load",
    )
    size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", chart)
    assert size == [WIDTH_PX, HEIGHT_PX]
    assert f"Flagged days, in red: {flagged.isoformat()}." in browser.find_element(By.ID, "chart").text
    browser.switch_to.default_content()
    screenshot = artifacts / "taxi_results.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0
