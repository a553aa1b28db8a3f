"""Faults at the destinations: Postgres restarted mid-COPY, a publish stuck behind a lock, two loads
of one month at once, the GCS stand-in away for a while, a failed BigQuery load. (A connection
killed mid-COPY, retried by Airflow, is in test_retry_policy.py; a failed ``green_taxi_etl`` run in
tests/integration/test_green_taxi_etl.py.)
"""

import functools
import socket
import struct
import threading
import time
from datetime import timedelta

import psycopg
import pytest

from include.destinations import postgres as warehouse
from include.flows import load_month
from include.flows.defaults import RETRY_POLICY
from include.source.sources import downloaded
from local_stack.stack import LOCAL_BUCKET, LOCAL_PROJECT, Stack, free_port, google_cloud_env
from tests.reliability.conftest import (
    DECEMBER,
    DECEMBER_PATH,
    OCTOBER,
    as_december,
    bucket_state,
    edited_sample,
    export_to_gcs,
    in_thread,
    load_to_postgres,
    month_request,
    new_run_id,
    postgres_state,
    staging_objects,
    staging_tables,
    wait_for_backend,
)

pytestmark = pytest.mark.integration


def _load_with_own_connection(uri: str, base_url: str, schema_name: str, **options) -> None:
    """Load a month as a task does, on a connection of its own (to run beside the test's)."""
    with psycopg.connect(uri) as conn:
        load_to_postgres(base_url, conn, schema_name, **options)


def _published_profiles(conn, schema_name: str) -> list[tuple]:
    return conn.execute(
        f"SELECT source_month, count(*) FROM {schema_name}.green_tripdata_profile"
        " WHERE published_at IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()


def test_postgres_restarted_mid_copy_keeps_the_month_and_the_retry_loads_it_once(
    postgres, pg_schema, mirror, staging_fault
):
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        load_to_postgres(mirror.url, conn, pg_schema)
        before = postgres_state(conn, pg_schema)
        one_good_load = postgres_state(conn, pg_schema, with_runs=False)
    staging_fault("PERFORM pg_sleep(60)")

    run_id = new_run_id()  # Airflow's retry runs under the same run id
    thread, errors = in_thread(
        functools.partial(_load_with_own_connection, postgres.uri, mirror.url, pg_schema, run_id=run_id)
    )
    with psycopg.connect(postgres.uri, autocommit=True) as watcher:
        wait_for_backend(watcher, "wait_event = 'PgSleep' AND query LIKE 'COPY%'")
    postgres.stop()  # a fast shutdown, as a restart by an operator or a failover
    postgres.start()
    thread.join()

    assert len(errors) == 1 and isinstance(errors[0], psycopg.OperationalError), errors
    staging = warehouse.staging_name("green_tripdata", OCTOBER, run_id)
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        assert postgres_state(conn, pg_schema) == before
        # The COPY's rows went with its transaction; the empty staging tables, created in a
        # transaction of their own, wait for the retry (which replaces them) or the teardown.
        assert sorted(staging_tables(conn, pg_schema)) == [staging, warehouse.rejects_table(staging)]
        assert conn.execute(f"SELECT count(*) FROM {pg_schema}.{staging}").fetchone() == (0,)
        load_to_postgres(mirror.url, conn, pg_schema, run_id=run_id)  # the retry
        assert staging_tables(conn, pg_schema) == []
        assert postgres_state(conn, pg_schema, with_runs=False) == one_good_load


def test_a_publish_stuck_behind_a_lock_fails_with_a_transient_error_and_the_retry_publishes(
    postgres, pg_conn, pg_schema, mirror
):
    """A reader's open transaction on the table holds the publish (dropping the month's old
    partition needs an exclusive lock on the table): ``lock_timeout`` ends the wait with an error
    the retry policy retries, the month stays as it was, and the retry publishes once the lock is gone."""
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    before = postgres_state(pg_conn, pg_schema)
    request = month_request(mirror.url, "green", OCTOBER)
    run_id = new_run_id()
    with downloaded(request.url) as path:
        staged = load_month.stage(warehouse.Postgres(pg_conn, pg_schema), path, request, run_id)

    with psycopg.connect(postgres.uri) as reader:  # not autocommit: its transaction stays open
        reader.execute(f"SELECT count(*) FROM {pg_schema}.green_tripdata")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable, match="lock timeout") as stuck:
            warehouse.publish_month(pg_conn, staged, lock_timeout=timedelta(seconds=1))
        waited = time.monotonic() - started
        assert postgres_state(pg_conn, pg_schema) == before
        assert 1 <= waited < 10

    decision = RETRY_POLICY.evaluate(stuck.value, try_number=1, max_tries=4)
    assert decision.action.value == "default", decision  # not a permanent error: the task's retries
    assert warehouse.publish_month(pg_conn, staged, lock_timeout=timedelta(seconds=1)) == staged.rows_loaded
    assert postgres_state(pg_conn, pg_schema) != before
    assert _published_profiles(pg_conn, pg_schema) == [(OCTOBER.first_day, 2)]
    warehouse.drop_staging(pg_conn, pg_schema, "green_tripdata", OCTOBER, run_id)
    assert staging_tables(pg_conn, pg_schema) == []


def test_two_loads_of_a_month_at_once_take_turns_and_leave_one_copy(
    postgres, pg_conn, pg_schema, mirror, staging_fault
):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    one_good_load = postgres_state(pg_conn, pg_schema, with_runs=False)
    staging_fault("PERFORM pg_sleep(5)")  # holds the first load inside its stage

    load_october = functools.partial(_load_with_own_connection, postgres.uri, mirror.url, pg_schema)
    first, first_errors = in_thread(load_october)
    wait_for_backend(pg_conn, "wait_event = 'PgSleep'")
    second, second_errors = in_thread(load_october)
    first.join()
    second.join()

    assert first_errors == second_errors == []
    assert postgres_state(pg_conn, pg_schema, with_runs=False) == one_good_load
    assert _published_profiles(pg_conn, pg_schema) == [(OCTOBER.first_day, 3)]
    assert staging_tables(pg_conn, pg_schema) == []


def test_a_load_of_a_new_month_does_not_wait_for_a_running_load(
    postgres, pg_conn, pg_schema, mirror, staging_fault
):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    staging_fault("PERFORM pg_sleep(30)")  # holds October's next load inside its stage
    mirror.replace(DECEMBER_PATH, edited_sample(as_december))

    october, errors = in_thread(
        functools.partial(_load_with_own_connection, postgres.uri, mirror.url, pg_schema)
    )
    wait_for_backend(pg_conn, "wait_event = 'PgSleep'")
    started = time.monotonic()
    load_to_postgres(mirror.url, pg_conn, pg_schema, month=DECEMBER)
    assert time.monotonic() - started < 20, "December waited for October"
    assert october.is_alive(), "October's load was still running when December's was published"
    pg_conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
    october.join()
    assert len(errors) == 1 and isinstance(errors[0], psycopg.errors.QueryCanceled)
    assert _published_profiles(pg_conn, pg_schema) == [(OCTOBER.first_day, 1), (DECEMBER.first_day, 1)]


def test_two_exports_of_a_month_at_once_leave_what_one_export_leaves(
    mirror, gcs_hook, gcs_bucket, storage_client
):
    export_october = functools.partial(export_to_gcs, mirror.url, gcs_hook, gcs_bucket)
    export_october()
    one_export = bucket_state(storage_client, gcs_bucket, with_runs=False)
    exports = [in_thread(export_october) for _ in range(2)]
    for thread, errors in exports:
        thread.join()
        assert errors == []
    assert bucket_state(storage_client, gcs_bucket, with_runs=False) == one_export
    assert staging_objects(storage_client, gcs_bucket) == []


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


def _storage_client(port: int):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    endpoint = ClientOptions(api_endpoint=f"http://127.0.0.1:{port}")
    return storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials(), client_options=endpoint)


def test_the_gcs_stand_in_away_for_a_while_is_retried_until_the_month_is_written(run_dag, tmp_path):
    """The DAG's first call to GCS finds it down twice; then the stand-in comes back and the same
    try succeeds. Outages shorter than the Google client's retry deadline (120 s) are retried
    inside the try; longer ones fail the try and Airflow retries the task."""
    stack = Stack(tmp_path, gcs_port=free_port(), bigquery_port=free_port())
    down = _ServiceDown(stack.gcs_port)

    def come_back_after_two_attempts():
        deadline = time.monotonic() + 120
        while down.attempts < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        down.close()
        stack.gcs_emulator.start()

    comeback, comeback_errors = in_thread(come_back_after_two_attempts)
    try:
        result = run_dag(
            "taxi_api_to_gcs",
            {"taxis": ["green"], "month": "2020-10"},
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
    assert "green_tripdata/green_tripdata_2020-10.parquet" in written
    assert sum(name.startswith("green_tripdata_by_day/pickup_date=2020-10-") for name in written) == 31
    assert [name for name in written if name.startswith("_staging/")] == []


def test_a_failed_bigquery_load_leaves_the_month_as_it_was(
    gcs_bucket, storage_client, bq_dataset, bigquery_client
):
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.api_core.exceptions import GoogleAPICallError

    from include.destinations.bigquery import BigQuery
    from include.flows.taxi_gcs_to_bigquery import load_month, monthly_table, table_columns
    from include.source.families import schema_for
    from tests.bigquery_inputs import sample_as_published, upload_parquet
    from tests.bigquery_inputs import table_state as bigquery_state
    from tests.samples import GREEN_2020_10

    bq = BigQuery(BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False), bq_dataset)
    october = sample_as_published(GREEN_2020_10, table_columns(schema_for("green")), OCTOBER.first_day)
    name = f"green_tripdata/green_tripdata_{OCTOBER}.parquet"
    uri = upload_parquet(storage_client, gcs_bucket, name, october)
    load_month(bq, "green", OCTOBER, uri)
    table = bq.ref(monthly_table("green"))
    before = bigquery_state(bigquery_client, table)

    storage_client.bucket(gcs_bucket).blob(name).upload_from_string(b"PAR1 but not Parquet")
    with pytest.raises(GoogleAPICallError, match=r"(?i)parquet"):
        load_month(bq, "green", OCTOBER, uri)

    assert bigquery_state(bigquery_client, table) == before
    assert before[0] == october.num_rows
    assert {t.table_id for t in bigquery_client.list_tables(bq_dataset)} == {monthly_table("green")}
