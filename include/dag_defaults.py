"""Settings every DAG of this repository shares: ownership, retries, and which errors are final.

Retries exist for faults that pass (a restarted database, a network blip). An unpublished month or
invalid input fails the same way on every try, so those errors fail the task at once instead of
spending its retries and hiding the message behind a wait.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import (
    AsyncCallback,
    CronDataIntervalTimetable,
    DeadlineAlert,
    DeadlineReference,
    ExceptionRetryPolicy,
    Param,
    RetryAction,
    RetryRule,
)
from airflow.sdk.definitions.deadline import VariableInterval

from include.alerts import notify_deadline_missed, notify_task_failure

FAIL_AT_ONCE = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            # ValueError covers invalid params and unreadable input (pyarrow's ArrowInvalid too).
            exception=["include.errors.SourceNotPublishedError", "builtins.ValueError"],
            action=RetryAction.FAIL,
            reason="the source or the input is invalid; another try would fail the same way",
        )
    ]
)

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "retry_policy": FAIL_AT_ONCE,
    "on_failure_callback": notify_task_failure,  # alerts: an email once a task has failed for good
}

# Monthly flows: the run of January has the interval [Jan 1, Feb 1) and starts on Feb 1, so the
# logical date of a scheduled or backfill run is the first day of the month it loads.
MONTHLY = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")
FIRST_MIRROR_MONTH = datetime(2019, 1, 1)  # the TLC mirror has 2019-01 to 2021-07
# alerts: an email when a monthly run is still going that many seconds (a Variable) after being queued.
# `airflow dags test` of a DAG with a deadline fails once the run succeeds in Airflow 3.3.2
# (apache/airflow#73428), and it cannot evaluate deadlines anyway: its callers set NYC_TAXI_DEADLINES=off.
MONTHLY_DEADLINE = (
    DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=VariableInterval("monthly_run_deadline_seconds"),
        callback=AsyncCallback(notify_deadline_missed),
    )
    if os.environ.get("NYC_TAXI_DEADLINES", "on") != "off"
    else None
)


def monthly_params() -> dict[str, Param]:
    """The params of every monthly flow: which colour, and optionally which month."""
    return {
        "taxi": Param("yellow", enum=["yellow", "green"], description="Taxi colour to load."),
        "month": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="Month to load as YYYY-MM; empty means the run's data interval.",
        ),
    }
