"""The steps a DAG task runs, composed from the single-concern modules.

Each function here is one task's work with its inputs made explicit (URLs, connections, months),
so the same code runs inside Airflow, in the tests and in the benchmark.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import psycopg

from include import postgres
from include.download import download, tlc_file_name, tlc_url
from include.extract import iter_batches
from include.months import Month, resolve_month, validate_month
from include.schema import TaxiSchema, schema_for
from include.transform import MONTHLY_RULES, CleaningReport, clean

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonthRequest:
    """The taxi colour and month one run loads, validated before anything is downloaded."""

    taxi: str
    month: Month

    @property
    def schema(self) -> TaxiSchema:
        return schema_for(self.taxi)

    @classmethod
    def from_run(cls, params: dict, data_interval_start: datetime | None, today: date) -> MonthRequest:
        """Build the request from a run's params and data interval (see ``include.months``)."""
        schema = schema_for(params.get("taxi"))
        month = validate_month(resolve_month(params.get("month"), data_interval_start), today)
        return cls(schema.colour, month)


@contextmanager
def downloaded_month(base_url: str, request: MonthRequest) -> Iterator[Path]:
    """Download the month's file into a temporary directory that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tlc-") as folder:
        path = Path(folder) / tlc_file_name(request.taxi, request.month)
        download(tlc_url(base_url, request.taxi, request.month), path)
        yield path


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


def load_month_to_postgres(
    conn: psycopg.Connection, path: Path, request: MonthRequest, schema_name: str
) -> LoadResult:
    """Stream a month's file through the cleaning rules into its table, replacing the month."""
    table = postgres.monthly_table_name(request.taxi)
    report = CleaningReport()
    batches = clean(iter_batches(path, request.schema), request.schema, MONTHLY_RULES, report)
    rows = postgres.replace_month(conn, schema_name, table, request.schema, request.month, batches)
    log.info("%s: %s", path.name, report.describe())
    log.info("Loaded %d rows of %s into %s.%s", rows, request.month, schema_name, table)
    return LoadResult(
        request.taxi, str(request.month), schema_name, table, report.rows_read, rows, dict(report.dropped)
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
