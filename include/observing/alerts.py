"""Alerts for the on-call engineer: a task that failed for good, and a monthly run past its deadline.

Both are emails sent by the SMTP provider's ``SmtpNotifier`` through the connection ``smtp_default``
(host, port, login and password, ``from_email`` in its extra) to the addresses in the Variable
``alert_email`` (comma-separated). The deadline is the Variable ``monthly_run_deadline_seconds``:
how long after being queued a monthly run may take before the alert goes out.

Where alerts are not configured (no ``smtp_default`` connection or no ``alert_email``), nothing is
sent and the log says so in one warning line naming what to set: the demo runs without a mail
server, and a task's failure handling never fails because of its alert. A configured server that
refuses the mail is an error Airflow logs with its traceback (the task's state is already recorded).

DAG files import this module at parse time, so the provider and the SDK's runtime parts are imported
only when an alert is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

log = logging.getLogger(__name__)

SMTP_CONN_ID = "smtp_default"
# What compose and .env.example set; a long backfill queues its runs at once, so allow for waiting.
DEFAULT_DEADLINE_SECONDS = 7200

# The notifier renders these with Jinja; the values come from ``alert`` and are escaped for HTML.
_SUBJECT = "{{ alert.subject }}"
_BODY = (
    "<p>{{ alert.headline | e }}</p><table>"
    "{% for name, value in alert.rows %}<tr><td>{{ name | e }}</td><td>{{ value | e }}</td></tr>{% endfor %}"
    "<tr><td>{{ alert.link_name | e }}</td>"
    '<td><a href="{{ alert.link | e }}">{{ alert.link | e }}</a></td></tr>'
    "</table>"
)


def run_month(conf: Mapping[str, Any] | None, data_interval_start: datetime | str | None) -> str:
    """The month a run loads, as ``YYYY-MM``: its ``month`` param, else its data interval's month."""
    month = (conf or {}).get("month")
    if month:
        return str(month)
    if isinstance(data_interval_start, str):
        return data_interval_start[:7]
    if data_interval_start is not None:
        return data_interval_start.strftime("%Y-%m")
    return "none (no month param, no data interval)"


def first_line(error: BaseException | str | None) -> str:
    """The exception's type and the first line of its message: what an alert's reader sees first."""
    if error is None:
        return "no exception recorded (the task was stopped from outside, e.g. lost its heartbeat)"
    if isinstance(error, str):
        return error.strip().splitlines()[0] if error.strip() else "(empty error message)"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def alert_notifier(what: str, context: Mapping[str, Any]) -> SmtpNotifier | None:
    """An ``SmtpNotifier`` for one alert, or None (and a warning naming what to set) if not configured.

    ``what`` names the alert in that warning, e.g. ``failure alert for dag.task (run ...)``;
    ``context`` is what the templates are rendered with, ``alert`` included.
    """
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk import BaseHook, Variable
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(SMTP_CONN_ID)
    except AirflowNotFoundException:
        log.warning(
            "Alerts are off, %s not sent: no connection %s (set AIRFLOW_CONN_SMTP_DEFAULT)",
            what,
            SMTP_CONN_ID,
        )
        return None
    recipients = (Variable.get("alert_email", default=None) or "").strip()
    if not recipients:
        log.warning(
            "Alerts are off, %s not sent: Variable alert_email is empty (set AIRFLOW_VAR_ALERT_EMAIL)", what
        )
        return None
    return SmtpNotifier(
        to=recipients, subject=_SUBJECT, html_content=_BODY, smtp_conn_id=SMTP_CONN_ID, context=dict(context)
    )


def send(what: str, alert: dict, context: Mapping[str, Any]) -> None:
    """Send one alert from a task, if alerts are configured (``alert_notifier`` says why not)."""
    alert_context = {**context, "alert": alert}
    notifier = alert_notifier(what, alert_context)
    if notifier is not None:
        notifier(alert_context)
        log.info("Sent the %s to %s", what, notifier.to)


def notify_task_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of every task: runs once the task has failed for good (no retry left)."""
    ti = context["ti"]
    month = run_month(context.get("params"), context.get("data_interval_start"))
    error = first_line(context.get("exception"))
    what = f"failure alert for {ti.dag_id}.{ti.task_id} (run {ti.run_id}, month {month})"
    alert = {
        "subject": f"[Airflow] {ti.dag_id}.{ti.task_id} failed, month {month}: {error}"[:250],
        "headline": f"Task {ti.task_id} of DAG {ti.dag_id} failed on try {ti.try_number} of "
        f"{ti.max_tries + 1}; it will not be retried.",
        "rows": [
            ("DAG", ti.dag_id),
            ("Run", ti.run_id),
            ("Task", ti.task_id),
            ("Month", month),
            ("Error", error),
        ],
        "link_name": "Log",
        "link": ti.log_url,
    }
    send(what, alert, context)


async def notify_deadline_missed(context: Mapping[str, Any]) -> str:
    """The deadline's callback, run by the triggerer: a monthly run is still going past its deadline.

    Airflow passes a small ``context``: the run as the REST API shows it when the scheduler saw the
    deadline pass, and the deadline. A run that had ended by then gets no email.
    """
    from urllib.parse import quote

    from airflow.sdk import conf

    run = context["dag_run"]
    dag_id, run_id = run["dag_id"], run["dag_run_id"]
    month = run_month(run.get("conf"), run.get("data_interval_start"))
    deadline = str(context.get("deadline", {}).get("deadline_time", "unknown"))
    what = f"deadline alert for {dag_id} (run {run_id}, month {month})"
    if run.get("state") in ("success", "failed"):
        # Airflow 3.3 keeps the deadline of a failed run (apache/airflow#60927); its failure alert said it.
        log.info("No %s: the run had already ended (%s)", what, run["state"])
        return f"not sent: {what}; the run had already ended ({run['state']})"
    base_url = conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    alert = {
        "subject": f"[Airflow] {dag_id} missed its deadline, month {month}: run {run_id} not finished",
        "headline": f"Run {run_id} of DAG {dag_id} was queued at {run.get('queued_at')} and had not "
        f"finished by its deadline, {deadline}. It keeps running: this is a warning, not a failure.",
        "rows": [
            ("DAG", dag_id),
            ("Run", run_id),
            ("Month", month),
            ("State", str(run.get("state"))),
            ("Queued at", str(run.get("queued_at"))),
            ("Deadline", deadline),
        ],
        "link_name": "In Airflow",
        "link": f"{base_url}/dags/{dag_id}/runs/{quote(run_id)}",
    }
    notifier = alert_notifier(what, {**context, "alert": alert})
    if notifier is None:
        return f"not sent: {what}; alerts are not configured"
    await notifier
    log.info("Sent the %s to %s", what, notifier.to)
    return f"sent: {what}"


def notify_anomalies(context: Mapping[str, Any], taxi: str, month: str, anomalies: list[dict]) -> None:
    """Email the anomalies found in a month (the warnings: a failing one also fails its task, which
    sends the failure alert). Nothing to send, nothing sent."""
    if not anomalies:
        return
    from include.checks.quality import Anomaly

    ti = context["ti"]
    lines = [Anomaly.from_json(a).describe(taxi, month) for a in anomalies]
    what = f"anomaly alert for {ti.dag_id} {taxi} {month} (run {ti.run_id})"
    alert = {
        "subject": f"[Airflow] anomaly in {taxi} {month}: {', '.join(a['feature'] for a in anomalies)}"[:250],
        "headline": f"The {taxi} trips of {month} differ from the months before them ({ti.dag_id}, "
        f"task {ti.task_id}).",
        "rows": [
            ("DAG", ti.dag_id),
            ("Run", ti.run_id),
            ("Month", month),
            *(("Anomaly", line) for line in lines),
        ],
        "link_name": "Log",
        "link": ti.log_url,
    }
    send(what, alert, context)


def notify_review_requested(context: Mapping[str, Any], subject: str, review_link: str) -> None:
    """Email that a flagged month waits for a person (``include.flows.check_anomalies``), with the link to
    the task's required-actions page, where they approve or reject it."""
    ti = context["ti"]
    month = run_month(context.get("params"), context.get("data_interval_start"))
    what = f"review request for {ti.dag_id}.{ti.task_id} (run {ti.run_id}, month {month})"
    alert = {
        "subject": f"[Airflow] review needed: {subject}"[:250],
        "headline": f"{subject}. The month stays staged until someone approves or rejects it.",
        "rows": [("DAG", ti.dag_id), ("Run", ti.run_id), ("Task", ti.task_id), ("Month", month)],
        "link_name": "Review",
        "link": review_link,
    }
    send(what, alert, context)
