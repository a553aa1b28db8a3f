"""``include.postgres`` and ``include.flows.taxi_api_to_postgres`` against the real local Postgres."""

import threading

import pandas as pd
import psycopg
import pytest

from include.extract import iter_batches
from include.flows.taxi_api_to_postgres import LoadResult, load_month_to_postgres, verify_loaded_month
from include.months import Month
from include.postgres import MonthCheck, check_month, checked_identifier, replace_month
from include.schema import schema_for
from include.sources import MonthRequest
from local_stack.report import month_row_counts
from tests.samples import YELLOW_2021_01, read_with_pandas

pytestmark = pytest.mark.integration

JANUARY = Month(2021, 1)
YELLOW = schema_for("yellow")


def _expected_rows() -> pd.DataFrame:
    """The sample month after the documented rule, computed with pandas, independently of the loader."""
    source = read_with_pandas(YELLOW_2021_01, parse_dates=["tpep_pickup_datetime"])
    return source[source.passenger_count != 0]


def _load(conn, schema_name, batches=None):
    batches = batches if batches is not None else iter_batches(YELLOW_2021_01, YELLOW)
    return replace_month(conn, schema_name, "yellow_taxi_trips", YELLOW, JANUARY, batches)


def test_load_month_writes_the_cleaned_rows_once_however_often_it_runs(pg_conn, pg_schema):
    request = MonthRequest("yellow", JANUARY)
    first = load_month_to_postgres(pg_conn, YELLOW_2021_01, request, pg_schema)
    second = load_month_to_postgres(pg_conn, YELLOW_2021_01, request, pg_schema)
    expected = _expected_rows()
    assert first.rows_loaded == second.rows_loaded == len(expected)
    assert month_row_counts(pg_conn, pg_schema, "yellow_taxi_trips") == {JANUARY.first_day: len(expected)}
    total = pg_conn.execute(
        f"SELECT sum(total_amount), min(passenger_count) FROM {pg_schema}.yellow_taxi_trips"
    )
    amount, min_passengers = total.fetchone()
    assert amount == pytest.approx(expected.total_amount.sum())
    assert min_passengers > 0


def test_a_failed_load_keeps_the_previous_rows(pg_conn, pg_schema):
    loaded = _load(pg_conn, pg_schema)

    def batches_then_failure():
        yield next(iter_batches(YELLOW_2021_01, YELLOW))
        raise OSError("connection to the source dropped")

    with pytest.raises(OSError, match="dropped"):
        _load(pg_conn, pg_schema, batches_then_failure())
    assert month_row_counts(pg_conn, pg_schema, "yellow_taxi_trips") == {JANUARY.first_day: loaded}


def test_two_concurrent_loads_of_a_month_leave_one_copy(postgres, pg_schema):
    errors = []

    def load():
        try:
            with psycopg.connect(postgres.uri) as conn:
                _load(conn, pg_schema)
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(postgres.uri) as conn:
        assert month_row_counts(conn, pg_schema, "yellow_taxi_trips") == {JANUARY.first_day: 22791}


def test_check_counts_pickups_outside_the_month(pg_conn, pg_schema):
    _load(pg_conn, pg_schema)
    source = read_with_pandas(YELLOW_2021_01, parse_dates=["tpep_pickup_datetime"])
    pickups = source.tpep_pickup_datetime
    outside = int(((pickups < "2021-01-01") | (pickups >= "2021-02-01")).sum())
    check = check_month(pg_conn, pg_schema, "yellow_taxi_trips", "tpep_pickup_datetime", JANUARY)
    assert check == MonthCheck(JANUARY, len(source), 0, outside)
    assert outside > 0
    assert check.problems(max_outside_fraction=0.01) == []
    assert "have a pickup outside the month" in check.problems(max_outside_fraction=0)[0]


def test_verify_fails_on_a_month_that_was_not_loaded(pg_conn, pg_schema):
    _load(pg_conn, pg_schema)
    missing = LoadResult("yellow", "2021-02", pg_schema, "yellow_taxi_trips", 0, 0, {}, 0, 0)
    with pytest.raises(ValueError, match="month 2021-02 has no rows"):
        verify_loaded_month(pg_conn, missing)


@pytest.mark.parametrize("value", ["ny_taxi; DROP TABLE x", 'a"b', "Trips", "1st", "", "x" * 64])
def test_identifiers_from_configuration_are_validated(value):
    with pytest.raises(ValueError, match=r"schema .* is not a valid name"):
        checked_identifier(value, "schema")


def test_a_crafted_schema_name_never_reaches_the_database(pg_conn):
    with pytest.raises(ValueError, match="not a valid name"):
        _load(pg_conn, "public; DROP SCHEMA public CASCADE; --")
    assert pg_conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'").fetchone() == (1,)


def test_the_hook_connection_type_is_what_the_loader_expects(postgres, monkeypatch):
    """The DAGs pass ``PostgresHook.get_conn()``; it must be the psycopg 3 connection used here."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_DEFAULT", postgres.uri)
    with PostgresHook("postgres_default").get_conn() as conn:
        assert isinstance(conn, psycopg.Connection)
