"""Alerts as a deployment sends them: a real scheduler, LocalExecutor workers and a triggerer.

A deadline is evaluated by the scheduler and its callback runs in the triggerer, so ``airflow dags
test`` cannot show it. The deadline is read when the DAG files are parsed, from the processes'
environment (``AIRFLOW_VAR_MONTHLY_RUN_DEADLINE_SECONDS``), so both tests share one: long enough
for a run that fails at once to end before it, short enough for a download from the throttled TLC
mirror to outlast it. The alert must arrive by SMTP while that run goes on, and the run succeed.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from local_stack import expected
from local_stack.report import month_row_counts
from local_stack.tlc_server import serve_in_thread
from tests.conftest import ALERT_RECIPIENTS, dag_environment
from tests.mail import MailServer, start_mail_server
from tests.samples import GREEN_2020_10

pytestmark = pytest.mark.scheduler

DAG_ID = "taxi_api_to_postgres"
DEADLINE_SECONDS = 30
# Green 2020-10 is 1.7 MB: about 43 s to download at this rate, well past the deadline.
SLOW_BYTES_PER_SECOND = 40_000
GREEN_STEPS = ("wait_for_file", "stage", "audit", "check_anomalies", "publish", "drop_staging")


@pytest.fixture(scope="module")
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server on loopback for the module's Airflow (aiosmtpd)."""
    server, controller = start_mail_server()
    yield server
    controller.stop()


@pytest.fixture(scope="module")
def scheduler_env(postgres, scheduler_schema, mail_server, tmp_path_factory) -> Iterator[dict[str, str]]:
    """Alerts on, a deadline of ``DEADLINE_SECONDS``, and the samples served slowly."""
    server, slow_url = serve_in_thread(bytes_per_second=SLOW_BYTES_PER_SECOND)
    yield {
        **dag_environment(postgres, slow_url, scheduler_schema, tmp_path_factory.mktemp("charts")),
        "AIRFLOW_VAR_MONTHLY_RUN_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
        "AIRFLOW_CONN_SMTP_DEFAULT": mail_server.connection_uri(),
        "AIRFLOW_VAR_ALERT_EMAIL": ALERT_RECIPIENTS,
    }
    server.shutdown()


@pytest.fixture(scope="module")
def scheduler_settings() -> dict[str, str]:
    """Only the runs the tests trigger: the samples fill no month of the mirror's schedule."""
    return {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}


def _rows(mail) -> dict[str, str]:
    """The alert's table, ``{name: value}``."""
    cells = html.unescape(mail.html).split("<tr><td>")[1:]
    return {cell.split("</td><td>")[0]: cell.split("</td><td>")[1].split("</td>")[0] for cell in cells}


def _is_deadline_alert(mail) -> bool:
    return "missed its deadline" in mail.subject


def test_a_run_past_its_deadline_sends_one_alert_while_it_runs_and_still_succeeds(
    airflow_scheduler, mail_server, pg_conn, scheduler_schema
):
    airflow_scheduler.unpause(DAG_ID)
    run_id = airflow_scheduler.trigger(DAG_ID, {"taxis": ["green"], "month": "2020-10"})

    mail = mail_server.wait_for(_is_deadline_alert, timeout=180)
    run = airflow_scheduler.wait_for_run(DAG_ID, run_id, timeout=300)

    assert run["state"] == "success"
    states = airflow_scheduler.task_states(DAG_ID, run_id)
    assert {task: states[f"green.{task}"] for task in GREEN_STEPS} == dict.fromkeys(GREEN_STEPS, "success")
    assert month_row_counts(pg_conn, scheduler_schema, "green_tripdata") == {
        date(2020, 10, 1): expected.rows(GREEN_2020_10)
    }

    # Sent once the deadline had passed, while the run was still going.
    deadline = datetime.fromisoformat(run["queued_at"]) + timedelta(seconds=DEADLINE_SECONDS)
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
    received_before = len(mail_server.received)
    airflow_scheduler.unpause(DAG_ID)
    run_id = airflow_scheduler.trigger(DAG_ID, {"taxis": ["yellow"], "month": "2021-02"})  # not on the mirror
    task_id = "yellow.wait_for_file"

    run = airflow_scheduler.wait_for_run(DAG_ID, run_id, timeout=300)
    mail = mail_server.wait_for(lambda mail: f"{task_id} failed" in mail.subject, timeout=60)

    assert run["state"] == "failed"
    states = airflow_scheduler.task_states(DAG_ID, run_id)
    assert (states[task_id], states["yellow.stage"], states["green.wait_for_file"]) == (
        "failed",
        "upstream_failed",
        "skipped",
    )
    rows = _rows(mail)
    expected_rows = {"DAG": DAG_ID, "Run": run_id, "Task": task_id, "Month": "2021-02"}
    assert {name: rows[name] for name in expected_rows} == expected_rows
    assert rows["Error"].startswith("SourceNotPublishedError: ") and rows["Error"].endswith("(HTTP 404)")
    log_link = f"{airflow_scheduler.url}/dags/{DAG_ID}/runs/{quote(run_id)}/tasks/{task_id}?try_number=1"
    assert f'<a href="{log_link}">' in html.unescape(mail.html)
    # The link's task log is there, and says what the alert says.
    log = airflow_scheduler.task_log(DAG_ID, run_id, task_id)
    assert rows["Error"].removeprefix("SourceNotPublishedError: ") in log

    # Airflow keeps a failed run's deadline and fires it later; the callback sees the run has ended.
    deadline = datetime.fromisoformat(run["queued_at"]) + timedelta(seconds=DEADLINE_SECONDS)
    assert datetime.fromisoformat(run["end_date"]) < deadline
    skipped = f"No deadline alert for {DAG_ID} (run {run_id}, month 2021-02): the run had already ended"
    airflow_scheduler.wait_for_log_line("triggerer", skipped, timeout=DEADLINE_SECONDS + 60)
    assert datetime.now(timezone.utc) > deadline
    time.sleep(2)  # an email sent anyway would be on its way
    assert [mail.subject for mail in mail_server.received[received_before:] if _is_deadline_alert(mail)] == []
