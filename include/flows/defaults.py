"""Settings every DAG of this repository shares: ownership, time limits, retries, schedules, params.

Retries exist for faults that pass (a restarted database, a network blip, a 5xx). A month that is
not published, a refused login, invalid params, a file that cannot be read or data a check
refuses fail the same way on every try, so those errors fail the task at once instead of
spending its retries and hiding the message behind a wait. The rules name the project's own
exception classes (``include.errors``), never a library's ``ValueError``.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from airflow.sdk import (
    AsyncCallback,
    DeadlineAlert,
    DeadlineReference,
    ExceptionRetryPolicy,
    Param,
    RetryAction,
    RetryRule,
)

from include.flows.timetables import CronDataIntervalsUntil, require_registration
from include.observing.alerts import notify_deadline_missed, notify_task_failure
from include.source.families import TAXIS
from include.source.sources import SourceSettings

PERMANENT_ERRORS = [
    "include.errors.SourceNotPublishedError",
    "include.errors.SourceAccessDeniedError",
    "include.errors.InvalidParamsError",
    "include.errors.InvalidFileError",
    "include.errors.DataQualityError",
]
# Any other error (a restarted database, a lock_timeout, a 503 from GCS) gets the task's retries.
TRANSIENT_ERRORS = ["include.errors.TransientDownloadError"]


RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=PERMANENT_ERRORS,
            action=RetryAction.FAIL,
            reason="the source, the params, the file or the data is wrong: another try fails the same way",
        ),
        RetryRule(
            exception=TRANSIENT_ERRORS,
            action=RetryAction.RETRY,
            reason="a network, server or database fault that passes",
        ),
    ]
)

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "retry_policy": RETRY_POLICY,
    # No task may run unbounded; the loads override this with their own, longer limit.
    "execution_timeout": timedelta(minutes=30),
    "on_failure_callback": notify_task_failure,  # alerts: an email once a task has failed for good
}

# A full month of yellow trips, read, checked and loaded on a modest worker.
LOAD_TIMEOUT = timedelta(hours=2)


def monthly_schedule(source: SourceSettings) -> CronDataIntervalsUntil:
    """The run of January has the interval [Jan 1, Feb 1) and starts on Feb 1, so the logical
    date of a scheduled or backfill run is the first day of the month it loads; the last run is
    the source's last month (none on a live source)."""
    require_registration()
    # scheduler-tier: bounded at the first month too, so a backfill from an earlier date gets no run
    return CronDataIntervalsUntil("0 0 1 * *", source.end_date, first_start=source.start_date)


def daily_schedule(source: SourceSettings) -> CronDataIntervalsUntil:
    """The run of Jan 5 has the interval [Jan 5, Jan 6) and starts at midnight on Jan 6; the last
    run is the last day of the source's last month."""
    require_registration()
    last_day = source.last_month.end - timedelta(days=1) if source.last_month else None
    # scheduler-tier: bounded at the first day too, so a backfill from an earlier date gets no run
    return CronDataIntervalsUntil("0 0 * * *", last_day, first_start=source.start_date)


def taxis_param(what: str) -> Param:
    """Which file families a run covers; every one by default, so scheduled runs and backfills
    made with the form's defaults load them all."""
    return Param(
        list(TAXIS),
        type="array",
        items={"type": "string", "enum": list(TAXIS)},
        minItems=1,
        uniqueItems=True,
        description=f"Taxi file families to {what}: any of {', '.join(TAXIS)}.",
    )


# alerts: an email when a monthly run is still going that many seconds after being queued. The
# interval is read at parse time from the environment (AIRFLOW_VAR_MONTHLY_RUN_DEADLINE_SECONDS), like
# the source's bounds: Airflow 3.3.2's VariableInterval stops run creation when the Variable is
# missing or lives in the metastore (apache/airflow#68917).
DEFAULT_DEADLINE = timedelta(hours=2)
# Airflow 3.3.2's `dags test` exits 1 after a successful run of any DAG with a deadline, whatever its
# form (apache/airflow#73428), and evaluates no deadline anyway: the DAG it parses goes without one.
PARSED_BY_DAGS_TEST = sys.argv[1:3] == ["dags", "test"]
MONTHLY_DEADLINE = (
    None
    if PARSED_BY_DAGS_TEST
    else DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(
            seconds=float(
                os.environ.get("AIRFLOW_VAR_MONTHLY_RUN_DEADLINE_SECONDS") or DEFAULT_DEADLINE.total_seconds()
            )
        ),
        callback=AsyncCallback(notify_deadline_missed),
    )
)


def monthly_params() -> dict[str, Param]:
    """The params of every monthly flow: which families, and optionally which month."""
    return {
        "taxis": taxis_param("load"),
        "month": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="Month to load as YYYY-MM; empty means the run's data interval.",
        ),
    }
