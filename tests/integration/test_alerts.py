"""Failure alerts: a real failing run of a DAG, an email received by a real SMTP server on loopback."""

from __future__ import annotations

import html
from urllib.parse import quote

import pytest

from local_stack import expected
from local_stack.stack import free_port
from local_stack.tlc_server import serve_in_thread
from tests.conftest import ALERT_RECIPIENTS
from tests.mail import FROM_EMAIL, MailServer
from tests.samples import YELLOW_2021_01, mirror_with_a_gap

pytestmark = pytest.mark.integration

UI_BASE_URL = "http://airflow.example.test:8080"


def _output(result) -> str:
    return result.stdout + result.stderr


def test_a_failed_task_emails_dag_run_task_month_error_and_log_link(
    run_dag, mail_server, alert_env, tlc_base_url
):
    # 2021-02 is not on the local mirror: the download gets a 404 and fails at once, no retry.
    result = run_dag(
        "taxi_api_to_postgres",
        {"taxis": ["yellow"], "month": "2021-02"},
        **alert_env,
        AIRFLOW__API__BASE_URL=UI_BASE_URL,
    )
    assert result.returncode != 0, _output(result)[-3000:]

    mail = mail_server.wait_for(lambda mail: "yellow.wait_for_file" in mail.subject, timeout=30)
    body = html.unescape(mail.html)
    url = f"{tlc_base_url}/yellow/yellow_tripdata_2021-02.csv.gz"
    error = f"SourceNotPublishedError: {url} is not published (HTTP 404)"
    run_id = next(line for line in body.split("<tr>") if line.startswith("<td>Run</td>"))
    run_id = run_id.removeprefix("<td>Run</td><td>").removesuffix("</td></tr>")

    assert mail.sender == FROM_EMAIL
    assert mail.recipients == [address.strip() for address in ALERT_RECIPIENTS.split(",")]
    assert mail.subject.startswith(
        "[Airflow] taxi_api_to_postgres.yellow.wait_for_file failed, month 2021-02"
    )
    assert "<td>DAG</td><td>taxi_api_to_postgres</td>" in body
    assert "<td>Task</td><td>yellow.wait_for_file</td>" in body
    assert "<td>Month</td><td>2021-02</td>" in body
    assert f"<td>Error</td><td>{error}</td>" in body
    assert run_id.startswith("manual__") and run_id in _output(result)
    task = "yellow.wait_for_file"
    log_link = f"{UI_BASE_URL}/dags/taxi_api_to_postgres/runs/{quote(run_id)}/tasks/{task}?try_number=1"
    assert f'<a href="{log_link}">' in body
    # The tasks after it never ran, so they send nothing: one alert per failed task.
    assert [mail.subject for mail in mail_server.received if "failed" in mail.subject] == [mail.subject]


def test_without_an_smtp_connection_the_log_says_so_and_the_failure_is_reported_as_usual(
    run_dag, tlc_base_url
):
    result = run_dag("taxi_api_to_postgres", {"taxis": ["yellow"], "month": "2021-02"})

    output = _output(result)
    assert result.returncode != 0
    assert f"{tlc_base_url}/yellow/yellow_tripdata_2021-02.csv.gz is not published (HTTP 404)" in output
    assert (
        "Alerts are off, failure alert for taxi_api_to_postgres.yellow.wait_for_file (run manual__" in output
        and "month 2021-02) not sent: no connection smtp_default (set AIRFLOW_CONN_SMTP_DEFAULT)" in output
    )
    assert "Failed to run task callback" not in output


def test_a_mail_server_that_is_down_leaves_the_failure_reported_as_usual(run_dag, tlc_base_url):
    nobody_listens = MailServer(port=free_port())  # a port no server listens on
    result = run_dag(
        "taxi_api_to_postgres",
        {"taxis": ["yellow"], "month": "2021-02"},
        AIRFLOW_CONN_SMTP_DEFAULT=nobody_listens.connection_uri(),
        AIRFLOW_VAR_ALERT_EMAIL=ALERT_RECIPIENTS,
    )

    output = _output(result)
    assert result.returncode != 0
    assert f"{tlc_base_url}/yellow/yellow_tripdata_2021-02.csv.gz is not published (HTTP 404)" in output
    # Airflow logs the notifier's error with its traceback, and the task ends failed as it would anyway.
    assert "Failed to send notification (sync): [Errno 111] Connection refused" in output
    assert "Failed to run task callback" in output
    assert "new_state=failed" in output


def test_an_anomalous_month_is_published_and_its_warning_emailed(run_dag, mail_server, alert_env, tmp_path):
    # The yellow sample with five days of January taken out: a gap the anomaly test flags.
    folder = mirror_with_a_gap(tmp_path, range(11, 16))
    low_days = expected.low_trip_days(folder / "yellow" / YELLOW_2021_01.name, "2021-01")
    server, url = serve_in_thread(folder)
    try:
        result = run_dag(
            "taxi_api_to_postgres",
            {"taxis": ["yellow"], "month": "2021-01"},
            **alert_env,
            AIRFLOW_VAR_MIRROR_BASE_URL=url,
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, _output(result)[-3000:]

    mail = mail_server.wait_for(lambda mail: "anomaly in yellow 2021-01" in mail.subject, timeout=30)
    body = html.unescape(mail.html)
    assert mail.subject == "[Airflow] anomaly in yellow 2021-01: low_trip_days"
    flag = f"anomaly in yellow 2021-01: low_trip_days is {len(low_days)}, expected 0 to 2 (warn)"
    assert f"<td>Anomaly</td><td>{flag}</td>" in body
    assert "<td>Month</td><td>2021-01</td>" in body
