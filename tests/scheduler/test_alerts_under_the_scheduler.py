"""Alerts as a deployment sends them: a real scheduler, LocalExecutor workers and a triggerer.

A deadline is evaluated by the scheduler and its callback runs in the triggerer, so ``airflow dags
test`` cannot show it. Here the TLC mirror is throttled so a monthly run outlasts a deadline of a
few seconds; the alert must arrive by SMTP while the run goes on, and the run must still succeed.
Each test sets the deadline Variable in the metadata DB before it creates its run.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from local_stack.report import month_row_counts
from local_stack.tlc_server import serve_in_thread
from tests.samples import GREEN_2020_10, read_with_pandas

pytestmark = pytest.mark.scheduler

DAG_ID = "taxi_api_to_postgres"
DEADLINE_VARIABLE = "monthly_run_deadline_seconds"
# Green 2020-10 is 1.7 MB: about 17 s to download at this rate, far past a 3 s deadline.
SLOW_BYTES_PER_SECOND = 100_000


@pytest.fixture
def slow_tlc_base_url() -> Iterator[str]:
    server, url = serve_in_thread(bytes_per_second=SLOW_BYTES_PER_SECOND)
    yield url
    server.shutdown()


@pytest.fixture
def scheduler_env(dag_env: dict, alert_env: dict, slow_tlc_base_url: str) -> dict[str, str]:
    """Alerts on, the slow mirror, and no deadline in the env, so each test can set its own."""
    env = {**dag_env, **alert_env, "AIRFLOW_VAR_TLC_BASE_URL": slow_tlc_base_url}
    del env["AIRFLOW_VAR_MONTHLY_RUN_DEADLINE_SECONDS"]
    return env


def _rows(mail) -> dict[str, str]:
    """The alert's table, ``{name: value}``."""
    cells = html.unescape(mail.html).split("<tr><td>")[1:]
    return {cell.split("</td><td>")[0]: cell.split("</td><td>")[1].split("</td>")[0] for cell in cells}


def _is_deadline_alert(mail) -> bool:
    return "missed its deadline" in mail.subject


def test_a_run_past_its_deadline_sends_one_alert_while_it_runs_and_still_succeeds(
    airflow_scheduler, mail_server, pg_conn, pg_schema
):
    airflow_scheduler.set_variable(DEADLINE_VARIABLE, "3")
    airflow_scheduler.unpause(DAG_ID)
    run_id = airflow_scheduler.trigger(DAG_ID, {"taxi": "green", "month": "2020-10"})

    mail = mail_server.wait_for(_is_deadline_alert, timeout=180)
    run = airflow_scheduler.wait_for_run(DAG_ID, run_id, timeout=300)

    assert run["state"] == "success"
    states = airflow_scheduler.task_states(DAG_ID, run_id)
    assert states == {"extract_load": "success", "check_month": "success"}
    kept = int((read_with_pandas(GREEN_2020_10).passenger_count != 0).sum())
    assert list(month_row_counts(pg_conn, pg_schema, "green_taxi_trips").values()) == [kept]

    # Sent once the deadline had passed, while the run was still going.
    deadline = datetime.fromisoformat(run["queued_at"]) + timedelta(seconds=3)
    assert deadline <= mail.received_at < datetime.fromisoformat(run["end_date"])
    assert mail.subject == f"[Airflow] {DAG_ID} missed its deadline, month 2020-10: run {run_id} not finished"
    rows = _rows(mail)
    assert {name: rows[name] for name in ("DAG", "Run", "Month")} == {
        "DAG": DAG_ID,
        "Run": run_id,
        "Month": "2020-10",
    }
    run_link = f"{airflow_scheduler.url}/dags/{DAG_ID}/runs/{quote(run_id)}"
    assert f'<a href="{run_link}">' in html.unescape(mail.html)
    assert len([mail for mail in mail_server.received if _is_deadline_alert(mail)]) == 1


def test_a_task_that_fails_sends_its_alert_and_its_run_no_deadline_alert_afterwards(
    airflow_scheduler, mail_server
):
    deadline_seconds = 20  # well after the run fails
    airflow_scheduler.set_variable(DEADLINE_VARIABLE, str(deadline_seconds))
    airflow_scheduler.unpause(DAG_ID)
    run_id = airflow_scheduler.trigger(DAG_ID, {"taxi": "yellow", "month": "2021-02"})  # not on the mirror

    run = airflow_scheduler.wait_for_run(DAG_ID, run_id, timeout=300)
    mail = mail_server.wait_for(lambda mail: "extract_load failed" in mail.subject, timeout=60)

    assert run["state"] == "failed"
    states = airflow_scheduler.task_states(DAG_ID, run_id)
    assert states == {"extract_load": "failed", "check_month": "upstream_failed"}
    rows = _rows(mail)
    expected = {"DAG": DAG_ID, "Run": run_id, "Task": "extract_load", "Month": "2021-02"}
    assert {name: rows[name] for name in expected} == expected
    assert rows["Error"].startswith("SourceNotPublishedError: ") and rows["Error"].endswith("(HTTP 404)")
    log_link = f"{airflow_scheduler.url}/dags/{DAG_ID}/runs/{quote(run_id)}/tasks/extract_load?try_number=1"
    assert f'<a href="{log_link}">' in html.unescape(mail.html)
    # The link's task log is there, and says what the alert says.
    log = airflow_scheduler.task_log(DAG_ID, run_id, "extract_load")
    assert rows["Error"].removeprefix("SourceNotPublishedError: ") in log

    # Airflow keeps a failed run's deadline and fires it later; the callback sees the run has ended.
    deadline = datetime.fromisoformat(run["queued_at"]) + timedelta(seconds=deadline_seconds)
    assert datetime.fromisoformat(run["end_date"]) < deadline
    skipped = f"No deadline alert for {DAG_ID} (run {run_id}, month 2021-02): the run had already ended"
    airflow_scheduler.wait_for_log_line("triggerer", skipped)
    assert datetime.now(timezone.utc) > deadline
    time.sleep(2)  # an email sent anyway would be on its way
    assert [mail.subject for mail in mail_server.received if _is_deadline_alert(mail)] == []
