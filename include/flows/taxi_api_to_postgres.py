"""The steps of ``taxi_api_to_postgres``: load a month of one colour into Postgres, then check it.

Each function is one task's work with its inputs made explicit (file, connection, schema), so the
same code runs inside Airflow, in the tests and in the benchmark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg

from include import postgres
from include.chart import write_trips_per_day_chart
from include.extract import Rejects, iter_batches
from include.months import Month
from include.schema import schema_for
from include.sources import MonthRequest
from include.transform import MONTHLY_RULES, CleaningReport, clean

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadResult:
    """What a load wrote: small and flat, so it travels between tasks as an XCom."""

    taxi: str
    month: str
    schema_name: str
    table: str
    rows_read: int
    rows_loaded: int
    dropped_by_rule: dict[str, int]
    rows_rejected: int
    outside_month: int


def load_month_to_postgres(
    conn: psycopg.Connection, path: Path, request: MonthRequest, schema_name: str
) -> LoadResult:
    """Stream a month's file through the cleaning rules into its table, replacing the month.

    Unreadable rows go to the table's rejects table (``{table}_rejects``) with their line and
    reason, replaced in the same transaction as the month's rows.
    """
    table = postgres.monthly_table_name(request.taxi)
    report, rejects = CleaningReport(), Rejects(path.name)
    batches = clean(
        iter_batches(path, request.schema, rejects), request.schema, MONTHLY_RULES, report, request.month
    )
    rows = postgres.replace_month(conn, schema_name, table, request.schema, request.month, batches, rejects)
    log.info("%s: %s", path.name, report.describe())
    if rejects.rows:
        rejects_table = postgres.rejects_table_name(table)
        log.warning(
            "%d unreadable row(s) of %s kept in %s.%s",
            len(rejects.rows),
            path.name,
            schema_name,
            rejects_table,
        )
    log.info("Loaded %d rows of %s into %s.%s", rows, request.month, schema_name, table)
    return LoadResult(
        request.taxi,
        str(request.month),
        schema_name,
        table,
        report.rows_read,
        rows,
        dict(report.dropped),
        len(rejects.rows),
        report.outside_month,
    )


def verify_loaded_month(
    conn: psycopg.Connection, loaded: LoadResult, max_outside_fraction: float = 0.01
) -> postgres.MonthCheck:
    """Check the loaded month in Postgres; raise ``ValueError`` listing every problem found."""
    month = Month.parse(loaded.month)
    pickup_column = schema_for(loaded.taxi).pickup_column
    check = postgres.check_month(conn, loaded.schema_name, loaded.table, pickup_column, month)
    log.info(
        "%s.%s, %s: %d rows, %d without pickup time, %d with a pickup outside the month",
        loaded.schema_name,
        loaded.table,
        month,
        check.rows,
        check.null_pickups,
        check.outside_month,
    )
    problems = check.problems(max_outside_fraction)
    if problems:
        raise ValueError("; ".join(problems))
    return check


def write_month_chart(conn: psycopg.Connection, loaded: LoadResult, chart_dir: Path) -> Path:
    """Draw the loaded month's trips per pickup day as PNG into ``chart_dir``; return its path."""
    month = Month.parse(loaded.month)
    pickup_column = schema_for(loaded.taxi).pickup_column
    trips = postgres.trips_per_day(conn, loaded.schema_name, loaded.table, pickup_column, month)
    path = write_trips_per_day_chart(
        chart_dir / f"{loaded.table}_{month}_trips_per_day.png",
        f"{loaded.taxi} trips per pickup day, {month}",
        trips,
        month.first_day,
        month.last_day,
    )
    log.info("Trips per pickup day of %s: chart written to %s", month, path)
    return path
