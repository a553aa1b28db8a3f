"""A month of every family into one destination: the task groups of every ``taxi_api_to_<destination>`` DAG.

``load_every_family`` builds what those DAGs run: ``plan_month``, then one task group per family,
each independent of the others:

- **plan_month** decides the run's month and families, and each family's file and how long to wait
  for it (the XCom ``file_wait.{taxi}``, which the family's tasks read); a family the run does not
  load is skipped right there (a branch: its tasks never start a process);
- **wait_for_file** waits for the family's file in the triggerer, where a scheduler starts it: a
  published file costs no task process;
- **stage** downloads the file and streams it, read, cleaned and profiled
  (``include.source.month_file``), into the destination's staging area;
- **audit** fails the month unless its staged profile passes ``include.checks.quality.MONTH_CHECKS``
  (the destination may bring its own check operator instead);
- **check_anomalies** compares the staged profile with the family's trailing published months;
  when a flag's action is ``ask``, a person approves or rejects the month, which waits staged
  (``include.flows.check_anomalies``);
- **publish** puts the staged month in place of the published one;
- **drop_staging**, a teardown, removes what the run staged and did not publish.

The destination is named by its dotted path (``include.destinations.postgres.Postgres``) and made
in each task (``Destination.from_airflow``), so parsing a DAG file imports no driver. The steps
below the builder are plain functions of a ``Destination``: the tests and the benchmark run them
without Airflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import TaskGroup, XComArg, task

from include.flows.check_anomalies import CheckAnomalies
from include.flows.defaults import LOAD_TIMEOUT
from include.source.families import TAXIS
from include.source.sensors import WaitForMonthFile, file_wait_key

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.sdk import Asset
    from airflow.sdk.bases.operator import BaseOperator

    from include.checks.quality import Action, Anomaly
    from include.destinations.base import Destination, Staged
    from include.source.month_file import MissingColumns
    from include.source.sources import MonthRequest

log = logging.getLogger(__name__)


def load_every_family(
    destination: str,
    *,
    stage_pool: str | None = None,
    audit: Callable[[str], BaseOperator] | None = None,
    publish_outlets: Sequence[Asset] = (),
) -> None:
    """In a DAG: ``plan_month``, then a task group per family that loads its month into ``destination``.

    ``stage_pool`` bounds how many stages run at once; ``audit(taxi)`` makes the family's audit
    operator (default: the checks evaluated on the staged profile); each publish emits an event
    on ``publish_outlets`` with what was published as its extra.
    """
    planned = _plan_month()
    stage = _stage.override(pool=stage_pool) if stage_pool else _stage
    publish = _publish.override(outlets=list(publish_outlets)) if publish_outlets else _publish
    for taxi in TAXIS:
        with TaskGroup(group_id=taxi):
            file_wait = XComArg(planned.operator, key=file_wait_key(taxi))  # the file, as planned
            wait = WaitForMonthFile(task_id="wait_for_file", taxi=taxi, file_wait=file_wait)
            staged = stage(destination, file_wait)
            planned >> wait >> staged
            audited = audit(taxi) if audit else _audit(destination, staged)
            checked = CheckAnomalies(task_id="check_anomalies", destination=destination, staged=staged)
            published = publish(destination, staged)
            staged >> audited >> checked >> published
            published >> _drop_staging(destination, file_wait).as_teardown(setups=staged)


# --- The tasks: each makes the destination, runs its step, and hands on a JSON-safe result --------


@task.branch(task_id="plan_month")
def _plan_month(params: dict, ti=None, dag_run=None, data_interval_start=None) -> list[str]:
    from dataclasses import asdict

    from include.source.sensors import plan_file_waits
    from include.source.sources import plan_run, runtime_settings

    # "Today" is when the run was due, not the clock, so a retry validates exactly as before.
    plan = plan_run(params, data_interval_start, dag_run.run_after.date(), runtime_settings())
    for taxi, file_wait in plan_file_waits(plan, dag_run.run_after).items():  # what wait_for_file reads
        ti.xcom_push(key=file_wait_key(taxi), value=asdict(file_wait))
    skipped = [taxi for taxi in TAXIS if taxi not in plan.taxis]
    log.info("this run loads %s of %s for %s; skipped: %s", plan.taxis, plan.source, plan.month, skipped)
    # Only the families the run loads go on: the others are skipped by the scheduler, no process each.
    return [f"{taxi}.wait_for_file" for taxi in plan.taxis]


@task(task_id="stage", execution_timeout=LOAD_TIMEOUT)
def _stage(destination: str, file_wait: dict, run_id: str | None = None) -> dict:
    from airflow.sdk import Variable

    from include.destinations.base import destination_class
    from include.errors import InvalidParamsError
    from include.source.month_file import MISSING_COLUMNS_ACTIONS
    from include.source.sources import MonthRequest, downloaded

    month_request = MonthRequest.from_dict(file_wait["request"])
    missing_columns = Variable.get("missing_columns", default="fail")
    if missing_columns not in MISSING_COLUMNS_ACTIONS:
        raise InvalidParamsError(
            f"Variable missing_columns is {missing_columns!r}: use one of {MISSING_COLUMNS_ACTIONS}"
        )
    # Made before the download: a wrong Variable or connection fails before any byte is fetched.
    with destination_class(destination).from_airflow() as target, downloaded(month_request.url) as path:
        return stage(target, path, month_request, run_id, missing_columns).to_dict()


@task(task_id="audit")
def _audit(destination: str, staged: dict) -> None:
    from include.destinations.base import destination_class

    with destination_class(destination).from_airflow() as target:
        audit(target, target.staged_type.from_dict(staged))


@task(task_id="publish")
def _publish(destination: str, staged: dict, task=None, outlet_events=None) -> dict:
    from include.destinations.base import destination_class

    with destination_class(destination).from_airflow() as target:
        published = publish(target, target.staged_type.from_dict(staged))
    for asset in task.outlets:  # what downstream DAGs scheduled on the asset read (e.g. the BigQuery load)
        outlet_events[asset].extra = published
    return published


# A plain task made a teardown by the builder: a @teardown function cannot be called once per family.
@task(task_id="drop_staging")
def _drop_staging(destination: str, file_wait: dict, run_id: str | None = None) -> None:
    from include.destinations.base import destination_class
    from include.source.months import Month

    with destination_class(destination).from_airflow() as target:
        request = file_wait["request"]
        target.drop_staging(request["taxi"], Month.parse(request["month"]), run_id)


# --- The steps: plain functions of a destination, the same inside Airflow, in tests and benchmarks --


def stage(
    destination: Destination,
    path: Path,
    request: MonthRequest,
    run_id: str,
    missing_columns: MissingColumns = "fail",
) -> Staged:
    """Stream a downloaded month through the cleaning rules into the destination's staging area.

    A file without values in a column its era always has fails here, or with ``missing_columns``
    ``flag`` is staged and flagged by the anomaly test (``include.source.month_file``).
    """
    from include.observing import lineage
    from include.source.month_file import MonthFile

    month_file = MonthFile(path, request, missing_columns)
    staged = destination.stage(month_file, run_id)
    if month_file.rejects.rows:
        log.warning("%d unreadable row(s) of %s staged", len(month_file.rejects.rows), path.name)
    lineage.report([lineage.month_source(month_file)], destination.staged_datasets(staged))
    log.info("Staged %d rows of %s %s for run %s", staged.rows_loaded, staged.taxi, staged.month, run_id)
    return staged


def audit(destination: Destination, staged: Staged) -> None:
    """Fail before publishing unless the staged profile passes ``MONTH_CHECKS``."""
    from include.checks.quality import MONTH_CHECKS, failed_checks
    from include.errors import DataQualityError

    profile = destination.staged_profile(staged)
    failed = failed_checks(profile)
    if failed:
        statements = ", ".join(f"{name} ({MONTH_CHECKS[name]['check_statement']})" for name in failed)
        raise DataQualityError(
            f"{staged.taxi} {staged.month} fails {statements}: rows_read={profile.rows_read}, "
            f"rows_loaded={profile.rows_loaded}, rows_outside_month={profile.rows_outside_month}; "
            "the month is not published"
        )
    log.info("%s %s passes %s", staged.taxi, staged.month, ", ".join(MONTH_CHECKS))


def check_anomalies(destination: Destination, staged: Staged, actions: Mapping[str, Action]) -> list[Anomaly]:
    """Compare the staged profile with the published months before it and store the flags with it.

    Raises ``DataQualityError`` when a flag's action is ``fail``, so the month is not published; a
    flag whose action is ``ask`` leaves the month to a person (``include.flows.check_anomalies``).
    """
    from include.checks.quality import HISTORY_MONTHS, find_anomalies, judge
    from include.source.months import Month

    profile = destination.staged_profile(staged)
    history = destination.published_history(staged.taxi, Month.parse(staged.month), HISTORY_MONTHS)
    anomalies = find_anomalies(profile, history, actions)
    destination.record_anomalies(staged, [anomaly.as_json() for anomaly in anomalies])
    judge(profile, history, anomalies)
    return anomalies


def publish(destination: Destination, staged: Staged) -> dict[str, Any]:
    """Put the staged month in place of the published one; return what was published."""
    from include.observing import lineage

    published = destination.publish(staged)
    datasets = destination.published_datasets(staged)
    lineage.report(datasets.inputs, datasets.outputs)
    log.info(
        "Published %d rows of %s %s in %s",
        published["rows"],
        staged.taxi,
        staged.month,
        published["location"],
    )
    return published
