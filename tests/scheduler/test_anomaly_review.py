"""A person reviews a flagged month, under a real api-server, scheduler, dag-processor and triggerer.

``airflow dags test`` cannot show this: the review waits in Airflow 3.3's ``awaiting_input`` state
until someone answers through the REST API (what the UI's required-actions page calls) or the
scheduler's timeout sweep answers with the default. The anomaly is constructed: green 2020-10 and
a December of the same trips are published; then December is served with a tenth of its trips,
which the default ``anomaly_actions`` (``rows``: ``ask``) sends to a person. Rejected, the month
before stays published and the failure alert names the reviewer and the reason; approved, the
small month is published; with no answer in time, the default applies.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import pytest

from include.checks.review import APPROVE, REJECT
from local_stack import expected
from local_stack.airflow_ui import USERNAME
from local_stack.report import month_row_counts
from local_stack.tlc_server import SAMPLES
from tests.conftest import ALERT_RECIPIENTS, dag_environment
from tests.mail import MailServer, start_mail_server
from tests.reliability.conftest import (
    DECEMBER_PATH,
    as_december,
    edited_sample,
    profile_of_run,
    staging_tables,
)
from tests.reliability.fault_server import FaultyMirror, faulty_mirror

pytestmark = pytest.mark.scheduler

DAG_ID = "taxi_api_to_postgres"
REVIEW = "green.check_anomalies"
DECEMBER = date(2020, 12, 1)
DECEMBER_RUN = {"taxis": ["green"], "month": "2020-12"}


def _a_tenth_of_the_trips(rows: list[list[str]]) -> list[list[str]]:
    rows = as_december(rows)
    return [rows[0], *rows[1::10]]


@pytest.fixture(scope="module")
def december_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two Decembers as files: ``full`` (October's trips moved) and ``tenth`` (every tenth)."""
    folder = tmp_path_factory.mktemp("december")
    files = {}
    for name, edit in {"full": as_december, "tenth": _a_tenth_of_the_trips}.items():
        files[name] = folder / name / DECEMBER_PATH.rsplit("/", 1)[-1]  # named as the TLC names it
        files[name].parent.mkdir()
        files[name].write_bytes(edited_sample(edit))
    return files


@pytest.fixture(scope="module")
def mirror() -> Iterator[FaultyMirror]:
    with faulty_mirror(SAMPLES) as server:
        yield server


@pytest.fixture(scope="module")
def mail_server() -> Iterator[MailServer]:
    server, controller = start_mail_server()
    yield server
    controller.stop()


@pytest.fixture(scope="module")
def scheduler_env(postgres, scheduler_schema, mirror, mail_server, tmp_path_factory) -> dict[str, str]:
    """The samples from a server whose December the tests change; alerts on; ``anomaly_actions``
    unset, so its default is under test."""
    return {
        **dag_environment(postgres, mirror.url, scheduler_schema, tmp_path_factory.mktemp("charts")),
        "AIRFLOW_CONN_SMTP_DEFAULT": mail_server.connection_uri(),
        "AIRFLOW_VAR_ALERT_EMAIL": ALERT_RECIPIENTS,
    }


@pytest.fixture(scope="module")
def scheduler_settings() -> dict[str, str]:
    """Only the runs the tests trigger; the timeout sweep every 2 s instead of 15."""
    return {
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
    }


def _load_december(airflow, mirror, december_files, which: str) -> str:
    mirror.replace(DECEMBER_PATH, december_files[which].read_bytes())
    return airflow.trigger(DAG_ID, DECEMBER_RUN)


def _december_rows(pg_conn, schema: str) -> int:
    return month_row_counts(pg_conn, schema, "green_tripdata")[DECEMBER]


def _published_december(pg_conn, schema: str) -> tuple:
    """The profile December serves: its run and rows."""
    return pg_conn.execute(
        f"SELECT run_id, rows_loaded FROM {schema}.green_tripdata_profile"
        " WHERE source_month = %s AND published_at IS NOT NULL ORDER BY published_at DESC LIMIT 1",
        (DECEMBER,),
    ).fetchone()


def _december_state(pg_conn, schema: str) -> tuple:
    return _december_rows(pg_conn, schema), _published_december(pg_conn, schema)


def _alert_rows(mail) -> dict[str, str]:
    cells = html.unescape(mail.html).split("<tr><td>")[1:]
    return {cell.split("</td><td>")[0]: cell.split("</td><td>")[1].split("</td>")[0] for cell in cells}


def test_months_no_flag_asks_about_publish_without_waiting(
    airflow_scheduler, mirror, december_files, pg_conn, scheduler_schema
):
    airflow_scheduler.unpause(DAG_ID)
    october = airflow_scheduler.trigger(DAG_ID, {"taxis": ["green"], "month": "2020-10"})
    assert airflow_scheduler.wait_for_run(DAG_ID, october)["state"] == "success"
    december = _load_december(airflow_scheduler, mirror, december_files, "full")
    assert airflow_scheduler.wait_for_run(DAG_ID, december)["state"] == "success"

    for run_id in (october, december):
        [review] = [ti for ti in airflow_scheduler.task_instances(DAG_ID, run_id) if ti["task_id"] == REVIEW]
        assert review["state"] == "success" and review["duration"] < 30, review
        assert airflow_scheduler.hitl_details(DAG_ID, run_id) == []
    assert _december_rows(pg_conn, scheduler_schema) == expected.rows(december_files["full"])


def test_a_rejected_month_is_not_published_and_the_failure_alert_names_who_and_why(
    airflow_scheduler, mirror, december_files, mail_server, pg_conn, scheduler_schema
):
    before = _december_state(pg_conn, scheduler_schema)
    run_id = _load_december(airflow_scheduler, mirror, december_files, "tenth")

    states = airflow_scheduler.wait_for_task_state(DAG_ID, run_id, REVIEW, "awaiting_input")
    assert states["green.publish"] is None  # not yet scheduled: the month waits staged
    asked = airflow_scheduler.hitl_detail(DAG_ID, run_id, REVIEW)
    small = expected.rows(december_files["tenth"])
    assert asked["options"] == [APPROVE, REJECT] and asked["defaults"] == [REJECT]
    assert asked["subject"] == "Publish green 2020-12? Its rows differ from the months before it"
    # The flag as the reviewer sees it: feature, action, value, expected range, months compared.
    assert f"| rows | ask | {small:,} | " in asked["body"] and " | 2020-10 |" in asked["body"]
    query = urlencode({"taxi": "green", "month": "2020-12", "run_id": run_id})
    chart = f"{airflow_scheduler.url}/taxi-results/?{query}#chart"
    assert f"]({chart})" in asked["body"]
    assert _december_state(pg_conn, scheduler_schema) == before  # still the published December

    reason = "a tenth of October's trips: the file is truncated"
    airflow_scheduler.respond(DAG_ID, run_id, REVIEW, REJECT, {"reason": reason})
    run = airflow_scheduler.wait_for_run(DAG_ID, run_id)

    assert run["state"] == "failed"
    states = airflow_scheduler.task_states(DAG_ID, run_id)
    assert (states[REVIEW], states["green.publish"], states["green.drop_staging"]) == (
        "failed",
        "upstream_failed",
        "success",
    )
    assert _december_state(pg_conn, scheduler_schema) == before
    assert staging_tables(pg_conn, scheduler_schema) == []
    refused = profile_of_run(pg_conn, scheduler_schema, "green", run_id)
    assert refused["published_at"] is None and refused["rows_loaded"] == small
    review = refused["review"]
    assert (review["decision"], review["by"], review["reason"], review["timed_out"]) == (
        "reject",
        USERNAME,
        reason,
        False,
    )
    assert review["anomalies"] == refused["anomalies"] and review["chart"] == chart
    mail = mail_server.wait_for(lambda mail: f"{REVIEW} failed" in mail.subject, timeout=60)
    error = _alert_rows(mail)["Error"]
    assert error.startswith(f"MonthRejectedError: green 2020-12 rejected by {USERNAME} at ")
    assert error.endswith(f": {reason}; the month is not published")


def test_an_approved_month_is_published_with_its_review(
    airflow_scheduler, mirror, december_files, pg_conn, scheduler_schema
):
    run_id = _load_december(airflow_scheduler, mirror, december_files, "tenth")
    airflow_scheduler.wait_for_task_state(DAG_ID, run_id, REVIEW, "awaiting_input")

    airflow_scheduler.respond(DAG_ID, run_id, REVIEW, APPROVE, {"reason": "real: a storm"})
    run = airflow_scheduler.wait_for_run(DAG_ID, run_id)

    assert run["state"] == "success"
    small = expected.rows(december_files["tenth"])
    assert _december_rows(pg_conn, scheduler_schema) == small
    assert _published_december(pg_conn, scheduler_schema) == (run_id, small)
    review = profile_of_run(pg_conn, scheduler_schema, "green", run_id)["review"]
    assert (review["decision"], review["by"], review["reason"]) == ("approve", USERNAME, "real: a storm")
    assert airflow_scheduler.hitl_detail(DAG_ID, run_id, REVIEW)["responded_by_user"]["name"] == USERNAME


@pytest.mark.parametrize(("default", "published"), [(None, False), ("approve", True)])
def test_no_answer_in_time_takes_the_default(
    airflow_scheduler, mirror, december_files, pg_conn, scheduler_schema, default, published
):
    airflow_scheduler.set_variable("anomaly_review_timeout", "3")
    airflow_scheduler.set_variable("anomaly_review_default", default or "")
    before = _published_december(pg_conn, scheduler_schema)
    started = time.monotonic()
    run_id = _load_december(airflow_scheduler, mirror, december_files, "tenth")

    run = airflow_scheduler.wait_for_run(DAG_ID, run_id, timeout=180)

    assert run["state"] == ("success" if published else "failed")
    review = profile_of_run(pg_conn, scheduler_schema, "green", run_id)["review"]
    assert (review["decision"], review["by"], review["timed_out"]) == (
        "approve" if published else "reject",
        None,
        True,
    )
    assert time.monotonic() - started >= 3
    served = _published_december(pg_conn, scheduler_schema)
    assert served == ((run_id, expected.rows(december_files["tenth"])) if published else before)
