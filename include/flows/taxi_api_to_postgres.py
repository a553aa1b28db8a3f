"""The steps of ``taxi_api_to_postgres``: stage a month of one taxi family in Postgres, judge it,
publish it.

Each function is one task's work with its inputs made explicit (file, connection, schema, run), so
the same code runs inside Airflow, in the tests and in the benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import psycopg

from include.checks.quality import HISTORY_MONTHS, Action, Anomaly, find_anomalies, judge
from include.destinations import postgres
from include.observing import lineage
from include.source.month_file import MonthFile
from include.source.months import Month
from include.source.sources import MonthRequest

log = logging.getLogger(__name__)


def stage(
    conn: psycopg.Connection, path: Path, request: MonthRequest, schema_name: str, run_id: str
) -> postgres.StagedMonth:
    """Stream a downloaded month through the cleaning rules into this run's staging table.

    The rows are profiled on the way in (``include.checks.profile``); unreadable rows go to the staging
    rejects table with their line and reason. Nothing is visible in ``{taxi}_tripdata`` yet.
    """
    month_file = MonthFile(path, request)
    staged = postgres.stage_month(
        conn,
        schema_name,
        postgres.tripdata_table(request.taxi),
        request.schema.arrow_schema,
        request.month,
        run_id,
        month_file.batches(),
        month_file.rejects,
        month_file.profile,
    )
    if month_file.rejects.rows:
        log.warning(
            "%d unreadable row(s) of %s staged for %s",
            len(month_file.rejects.rows),
            path.name,
            postgres.rejects_table(staged.table),
        )
    lineage.staged_in_postgres(conn, month_file, staged)
    log.info(
        "Staged %d rows of %s %s in %s.%s",
        staged.rows_loaded,
        request.taxi,
        request.month,
        schema_name,
        staged.staging_table,
    )
    return staged


def check_anomalies(
    conn: psycopg.Connection, staged: postgres.StagedMonth, actions: Mapping[str, Action]
) -> list[Anomaly]:
    """Compare the staged month's profile with the published months before it; store the flags.

    Raises ``DataQualityError`` when a flag's action is ``fail``, so the month is not published.
    """
    profile = postgres.staged_profile(conn, staged)
    history = postgres.published_history(
        conn, staged.schema_name, staged.table, staged.taxi, Month.parse(staged.month), HISTORY_MONTHS
    )
    anomalies = find_anomalies(profile, history, actions)
    postgres.record_anomalies(conn, staged, [anomaly.as_json() for anomaly in anomalies])
    judge(profile, history, anomalies)
    return anomalies


def publish(conn: psycopg.Connection, staged: postgres.StagedMonth) -> int:
    """Swap the staged month in for the published one; return its rows."""
    rows = postgres.publish_month(conn, staged)
    lineage.published_in_postgres(conn, staged, rows)
    log.info(
        "Published %d rows of %s %s in %s.%s",
        rows,
        staged.taxi,
        staged.month,
        staged.schema_name,
        staged.table,
    )
    return rows
