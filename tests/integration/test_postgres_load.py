"""Write-audit-publish in ``include.destinations.postgres`` against the real local Postgres."""

import threading

import psycopg
import pyarrow as pa
import pytest

from include.checks.profile import MonthProfile
from include.destinations import postgres as warehouse
from include.errors import InvalidParamsError
from include.flows import load_month
from include.source.extract import Rejects, iter_batches
from include.source.families import schema_for
from include.source.months import Month
from include.source.sources import SOURCES, MonthRequest
from include.source.transform import with_source_month
from local_stack import expected
from local_stack.report import month_row_counts
from tests.samples import YELLOW_2021_01

pytestmark = pytest.mark.integration

JANUARY = Month(2021, 1)
YELLOW = schema_for("yellow")
REQUEST = MonthRequest.of(SOURCES["mirror"], "http://mirror.test", "yellow", JANUARY)


def stage(conn, path, request, schema_name, run_id):
    """``taxi_api_to_postgres``'s stage step into the schema."""
    return load_month.stage(warehouse.Postgres(conn, schema_name), path, request, run_id)


def publish(conn, staged) -> int:
    """``taxi_api_to_postgres``'s publish step: the rows published."""
    return load_month.publish(warehouse.Postgres(conn, staged.schema_name), staged)["rows"]


def table_rows(conn, schema_name, table="yellow_tripdata"):
    return month_row_counts(conn, schema_name, table)


def test_a_staged_month_is_invisible_until_published_and_a_republish_changes_nothing(pg_conn, pg_schema):
    staged = stage(pg_conn, YELLOW_2021_01, REQUEST, pg_schema, "run-1")
    assert table_rows(pg_conn, pg_schema) == {}  # staged: nobody reading the table sees it
    [(rows, published)] = pg_conn.execute(
        f"SELECT rows_loaded, published_at FROM {pg_schema}.yellow_tripdata_profile WHERE run_id = 'run-1'"
    ).fetchall()
    assert (rows, published) == (expected.rows(YELLOW_2021_01), None)

    assert publish(pg_conn, staged) == rows
    assert publish(pg_conn, staged) == rows  # a retried publish finds its work done
    assert table_rows(pg_conn, pg_schema) == {JANUARY.first_day: rows}
    [(amount,)] = pg_conn.execute(f"SELECT sum(total_amount) FROM {pg_schema}.yellow_tripdata").fetchall()
    assert amount == pytest.approx(expected.kept(YELLOW_2021_01).total_amount.sum())
    partitions = pg_conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass",
        (f"{pg_schema}.yellow_tripdata",),
    ).fetchall()
    assert partitions == [("yellow_tripdata_202101",)]


def test_publishing_a_new_load_replaces_the_month_once(pg_conn, pg_schema):
    first = stage(pg_conn, YELLOW_2021_01, REQUEST, pg_schema, "run-1")
    second = stage(pg_conn, YELLOW_2021_01, REQUEST, pg_schema, "run-2")
    publish(pg_conn, first)
    publish(pg_conn, second)
    assert table_rows(pg_conn, pg_schema) == {JANUARY.first_day: expected.rows(YELLOW_2021_01)}
    published = pg_conn.execute(
        f"SELECT run_id FROM {pg_schema}.yellow_tripdata_profile"
        " WHERE published_at IS NOT NULL ORDER BY published_at"
    ).fetchall()
    assert published == [("run-1",), ("run-2",)]  # both kept: the audit trail of what was published when


def test_a_failed_stage_leaves_the_published_month_and_no_staging(pg_conn, pg_schema):
    publish(pg_conn, stage(pg_conn, YELLOW_2021_01, REQUEST, pg_schema, "run-1"))
    before = table_rows(pg_conn, pg_schema)

    def batches_then_failure():
        yield from with_source_month([next(iter_batches(YELLOW_2021_01, YELLOW))], JANUARY)
        raise OSError("connection to the source dropped")

    with pytest.raises(OSError, match="dropped"):
        warehouse.stage_month(
            pg_conn, pg_schema, "yellow_tripdata", YELLOW.table_schema, JANUARY, "run-2",
            batches_then_failure(), Rejects("yellow_tripdata_2021-01.csv.gz"), lambda: None,
        )  # fmt: skip
    assert table_rows(pg_conn, pg_schema) == before
    staging = pg_conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE '%%stage%%'", (pg_schema,)
    ).fetchone()
    assert staging == (0,)  # the staging table was created in the rolled-back transaction


def test_a_month_loads_while_another_month_is_being_staged(postgres, pg_conn, pg_schema):
    """Each month has its own staging table: staging one never waits for another's transaction."""
    publish(pg_conn, stage(pg_conn, YELLOW_2021_01, REQUEST, pg_schema, "run-1"))
    started, release = threading.Event(), threading.Event()

    def rows_that_take_their_time():
        """December's COPY, held open until January is done (it then ends with no rows)."""
        started.set()
        release.wait(120)
        yield from ()

    def stage_december():
        with psycopg.connect(postgres.uri) as conn:
            profile = MonthProfile("yellow", "2020-12", "http://mirror.test", 0, 0, 0, 0, {}, {}, {}, {})
            warehouse.stage_month(
                conn, pg_schema, "yellow_tripdata", YELLOW.table_schema, Month(2020, 12), "run-dec",
                rows_that_take_their_time(), Rejects("december"), lambda: profile,
            )  # fmt: skip

    worker = threading.Thread(target=stage_december, daemon=True)
    worker.start()
    assert started.wait(30)
    try:
        # With December's transaction open, January is staged and published again, unblocked.
        publish(pg_conn, stage(pg_conn, YELLOW_2021_01, REQUEST, pg_schema, "run-2"))
        assert worker.is_alive(), "January had to wait for December's transaction to end"
    finally:
        release.set()
        worker.join(60)
    assert table_rows(pg_conn, pg_schema)[JANUARY.first_day] == expected.rows(YELLOW_2021_01)


def test_a_table_made_before_a_declared_column_existed_gets_it(pg_conn, pg_schema):
    older = pa.schema([f for f in YELLOW.table_schema if f.name not in ("airport_fee", "cbd_congestion_fee")])
    warehouse.ensure_table(pg_conn, pg_schema, "yellow_tripdata", older, "source_month")
    publish(pg_conn, stage(pg_conn, YELLOW_2021_01, REQUEST, pg_schema, "run-1"))
    columns = [
        name
        for (name,) in pg_conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
            " ORDER BY ordinal_position",
            (pg_schema, "yellow_tripdata"),
        )
    ]
    assert columns[-2:] == ["airport_fee", "cbd_congestion_fee"]  # added, at the end
    assert set(columns) == set(YELLOW.table_schema.names)
    assert table_rows(pg_conn, pg_schema) == {JANUARY.first_day: expected.rows(YELLOW_2021_01)}


@pytest.mark.parametrize("value", ["ny_taxi; DROP TABLE x", 'a"b', "Trips", "1st", "", "x" * 64])
def test_identifiers_from_configuration_are_validated(value):
    with pytest.raises(InvalidParamsError, match=r"schema .* is not a valid name"):
        warehouse.checked_identifier(value, "schema")


def test_a_crafted_schema_name_never_reaches_the_database(pg_conn):
    with pytest.raises(InvalidParamsError, match="not a valid name"):
        stage(pg_conn, YELLOW_2021_01, REQUEST, "public; DROP SCHEMA public CASCADE; --", "run-1")
    assert pg_conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'").fetchone() == (1,)


def test_the_hook_connection_type_is_what_the_loader_expects(postgres, monkeypatch):
    """The DAGs pass ``PostgresHook.get_conn()``; it must be the psycopg 3 connection used here."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_DEFAULT", postgres.uri)
    with PostgresHook("postgres_default").get_conn() as conn:
        assert isinstance(conn, psycopg.Connection)
