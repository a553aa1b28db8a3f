"""Faults at the destinations: Postgres restarted or the connection killed mid-COPY, the GCS
stand-in away for a while, two loads of one month at once, a failed BigQuery load. (A failed
``green_taxi_etl`` run is in tests/integration/test_green_taxi_etl.py.)

Postgres faults are placed exactly with a row trigger on the target table that acts on the
20,000th row the COPY inserts (counted by a sequence, which a rollback does not reset), so the
fault hits once, in the middle of the load, and the retry passes.
"""

import functools
import socket
import struct
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from include.flows.taxi_api_to_postgres import load_month_to_postgres
from include.months import Month
from include.sources import MonthRequest, downloaded_month
from local_stack.stack import LOCAL_BUCKET, LOCAL_PROJECT, Stack, free_port, google_cloud_env
from tests.reliability.conftest import (
    GREEN_TABLE,
    OCTOBER,
    as_december,
    bucket_state,
    download_and_export,
    download_and_load,
    edited_sample,
    table_state,
)
from tests.reliability.fault_server import served

pytestmark = pytest.mark.integration

FAULT_ROW = 20_000


def _load_with_own_connection(uri: str, base_url: str, schema_name: str) -> None:
    """Load October as a task does, on a connection of its own (to run beside the test's)."""
    with psycopg.connect(uri) as conn:
        download_and_load(base_url, conn, schema_name)


def _on_row(conn, schema_name: str, action: str) -> None:
    """Run ``action`` (PL/pgSQL) when the COPY inserts row ``FAULT_ROW`` of all loads from now on."""
    conn.execute(
        f"CREATE SEQUENCE {schema_name}.rows_inserted;"
        f" CREATE FUNCTION {schema_name}.fault() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN IF nextval('{schema_name}.rows_inserted') = {FAULT_ROW} THEN {action}; END IF;"
        " RETURN NEW; END $$;"
        f" CREATE TRIGGER fault BEFORE INSERT ON {schema_name}.{GREEN_TABLE}"
        f" FOR EACH ROW EXECUTE FUNCTION {schema_name}.fault()"
    )


def _wait_for(conn, condition: str, timeout: float = 60.0) -> None:
    """Wait until a backend in ``pg_stat_activity`` matches ``condition``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {condition}").fetchone()[0]:
            return
        time.sleep(0.05)
    pytest.fail(f"no backend with {condition} within {timeout:.0f} s")


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run():
        try:
            work()
        except BaseException as error:  # surfaced by the caller's assertions
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_postgres_restarted_mid_copy_keeps_the_month_and_the_retry_loads_it_once(
    postgres, pg_schema, tlc_base_url
):
    with psycopg.connect(postgres.uri) as conn:
        download_and_load(tlc_base_url, conn, pg_schema)
        before = table_state(conn, pg_schema, GREEN_TABLE)
        _on_row(conn, pg_schema, "PERFORM pg_sleep(60)")

    thread, errors = _in_thread(
        functools.partial(_load_with_own_connection, postgres.uri, tlc_base_url, pg_schema)
    )
    with psycopg.connect(postgres.uri, autocommit=True) as watcher:
        _wait_for(watcher, "wait_event = 'PgSleep' AND query LIKE 'COPY%'")
    postgres.stop()  # a fast shutdown, as a restart by an operator or a failover
    postgres.start()
    thread.join()

    assert len(errors) == 1 and isinstance(errors[0], psycopg.OperationalError), errors
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        assert table_state(conn, pg_schema, GREEN_TABLE) == before
        download_and_load(tlc_base_url, conn, pg_schema)  # the retry
        assert table_state(conn, pg_schema, GREEN_TABLE) == before


def test_a_connection_killed_mid_copy_is_retried_by_airflow_and_loads_the_month_once(
    run_dag, postgres, pg_conn, pg_schema, tlc_base_url
):
    download_and_load(tlc_base_url, pg_conn, pg_schema)
    one_good_load = table_state(pg_conn, pg_schema, GREEN_TABLE)
    _on_row(pg_conn, pg_schema, "PERFORM pg_terminate_backend(pg_backend_pid())")

    result = run_dag("taxi_api_to_postgres", {"taxi": "green", "month": "2020-10"})

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "server closed the connection unexpectedly" in output
    assert "new_state=up_for_retry" in output
    assert table_state(pg_conn, pg_schema, GREEN_TABLE) == one_good_load


def test_two_loads_of_a_month_at_once_take_turns_and_leave_one_copy(
    postgres, pg_conn, pg_schema, tlc_base_url
):
    download_and_load(tlc_base_url, pg_conn, pg_schema)
    one_good_load = table_state(pg_conn, pg_schema, GREEN_TABLE)
    _on_row(pg_conn, pg_schema, "PERFORM pg_sleep(5)")  # holds the first load in its transaction

    load_october = functools.partial(_load_with_own_connection, postgres.uri, tlc_base_url, pg_schema)
    first, first_errors = _in_thread(load_october)
    _wait_for(pg_conn, "wait_event = 'PgSleep'")
    second, second_errors = _in_thread(load_october)
    _wait_for(pg_conn, "wait_event_type = 'Lock' AND wait_event = 'advisory'")
    first.join()
    second.join()

    assert first_errors == second_errors == []
    assert table_state(pg_conn, pg_schema, GREEN_TABLE) == one_good_load


def test_a_load_of_another_month_does_not_wait_for_a_running_load(postgres, pg_conn, pg_schema, mirror):
    download_and_load(mirror.url, pg_conn, pg_schema)
    _on_row(pg_conn, pg_schema, "PERFORM pg_sleep(30)")  # holds October's load in its transaction
    december = MonthRequest("green", Month(2020, 12))
    mirror.script("/green/green_tripdata_2020-12.csv.gz", served(edited_sample(as_december)))

    october, errors = _in_thread(
        functools.partial(_load_with_own_connection, postgres.uri, mirror.url, pg_schema)
    )
    _wait_for(pg_conn, "wait_event = 'PgSleep'")
    with downloaded_month(mirror.url, december) as path:
        started = time.monotonic()
        load_month_to_postgres(pg_conn, path, december, pg_schema)
    assert time.monotonic() - started < 20, "December waited for October"
    assert october.is_alive(), "October's load was still running when December's committed"
    pg_conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
    october.join()
    assert len(errors) == 1 and isinstance(errors[0], psycopg.errors.QueryCanceled)


def test_two_exports_of_a_month_at_once_leave_what_one_export_leaves(
    tlc_base_url, gcs_hook, gcs_bucket, storage_client
):
    export_october = functools.partial(download_and_export, tlc_base_url, gcs_hook, gcs_bucket)
    export_october()
    one_export = bucket_state(storage_client, gcs_bucket)
    exports = [_in_thread(export_october) for _ in range(2)]
    for thread, errors in exports:
        thread.join()
        assert errors == []
    assert bucket_state(storage_client, gcs_bucket) == one_export


class _ServiceDown:
    """A port where a service is down: every connection is accepted and reset at once, and counted."""

    def __init__(self, port: int) -> None:
        self.attempts = 0
        self._socket = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._refuse, daemon=True).start()

    def _refuse(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:  # closed: the service is coming back
                return
            self.attempts += 1
            # Linger 0: the close sends a reset and leaves no TIME_WAIT behind on the port.
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()

    def close(self) -> None:
        self._socket.close()


def test_the_gcs_stand_in_away_for_a_while_is_retried_until_the_month_is_written(run_dag, tmp_path):
    """The upload finds GCS down twice; then the stand-in comes back and the same try succeeds.

    Outages shorter than the Google client's retry deadline (120 s) are retried inside the try;
    longer ones fail the try and Airflow retries the task (as for Postgres above).
    """
    stack = Stack(tmp_path, gcs_port=free_port(), bigquery_port=free_port())
    down = _ServiceDown(stack.gcs_port)

    def come_back_after_two_attempts():
        deadline = time.monotonic() + 120
        while down.attempts < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        down.close()
        stack.gcs_emulator.start()

    comeback, comeback_errors = _in_thread(come_back_after_two_attempts)
    try:
        result = run_dag(
            "taxi_api_to_gcs",
            {"taxi": "green", "month": "2020-10"},
            **google_cloud_env(stack.gcs_port, stack.bigquery_port),
        )
        comeback.join()
        written = [blob.name for blob in _storage_client(stack.gcs_port).list_blobs(LOCAL_BUCKET)]
    finally:
        down.close()
        stack.gcs_emulator.stop()

    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert comeback_errors == []
    assert down.attempts >= 2
    assert "green/green_tripdata_2020-10.parquet" in written
    assert sum(name.startswith("green_trips/pickup_date=") for name in written) > 28


def _storage_client(port: int):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    endpoint = ClientOptions(api_endpoint=f"http://127.0.0.1:{port}")
    return storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials(), client_options=endpoint)


def test_a_failed_bigquery_load_leaves_the_month_as_it_was(
    gcs_bucket, storage_client, bq_dataset, bigquery_client
):
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.api_core.exceptions import GoogleAPICallError

    from include.bigquery import BigQuery
    from include.flows.taxi_gcs_to_bigquery import load_month, monthly_table, table_columns
    from include.schema import schema_for
    from tests.bigquery_inputs import sample_as_published, upload_parquet
    from tests.bigquery_inputs import table_state as bigquery_state
    from tests.samples import GREEN_2020_10

    bq = BigQuery(BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False), bq_dataset)
    october = sample_as_published(GREEN_2020_10, table_columns(schema_for("green")), OCTOBER.month.first_day)
    name = f"green_tripdata/green_tripdata_{OCTOBER.month}.parquet"
    uri = upload_parquet(storage_client, gcs_bucket, name, october)
    load_month(bq, "green", OCTOBER.month, uri)
    table = bq.ref(monthly_table("green"))
    before = bigquery_state(bigquery_client, table)

    storage_client.bucket(gcs_bucket).blob(name).upload_from_string(b"PAR1 but not Parquet")
    with pytest.raises(GoogleAPICallError, match=r"(?i)parquet"):
        load_month(bq, "green", OCTOBER.month, uri)

    assert bigquery_state(bigquery_client, table) == before
    assert before[0] == october.num_rows
    assert {t.table_id for t in bigquery_client.list_tables(bq_dataset)} == {monthly_table("green")}
