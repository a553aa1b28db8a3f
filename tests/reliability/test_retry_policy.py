"""The retry policy (``include.flows.defaults.RETRY_POLICY``) in real DAG runs: what fails at once, what
Airflow retries.

A month that is not published, or a source that refuses access, fails its task on the first try
(another try would get the same answer); server errors that outlast the download's own retries,
and a database connection killed mid-COPY, are retried by Airflow and load the month once. The
other permanent faults are proven where they happen: invalid params in test_parameters.py, an
unreadable file in test_parquet_faults.py, a refused check in test_write_audit_publish.py.
Each retry waits the DAGs' ``retry_delay`` (30 s), as it would in production.
"""

import re

import pytest

from tests.reliability.conftest import (
    OCTOBER_PATH,
    assert_run_failed,
    assert_run_succeeded,
    load_to_postgres,
    postgres_state,
    staging_tables,
    task_tries,
)
from tests.reliability.fault_server import error

pytestmark = pytest.mark.integration

OCTOBER_RUN = {"taxis": ["green"], "month": "2020-10"}
DOWNLOAD_ATTEMPTS = 5
RETRIED = re.compile(
    r"Retry policy decision\s+\[task\] action=retry"
)  # include.source.download.download: the first request and 4 retries


@pytest.mark.parametrize(
    ("status", "message"),
    [(404, "is not published (HTTP 404)"), (403, "refused access (HTTP 403)")],
    ids=["not published", "access refused"],
)
def test_a_missing_or_refused_file_fails_at_once_and_changes_nothing(
    run_dag, mirror, mirror_env, pg_conn, pg_schema, status, message
):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    before = postgres_state(pg_conn, pg_schema)
    mirror.script(OCTOBER_PATH, error(status), method="HEAD")
    downloads_before = mirror.count(OCTOBER_PATH)

    text = assert_run_failed(run_dag("taxi_api_to_postgres", OCTOBER_RUN, **mirror_env))

    assert f"{mirror.url}{OCTOBER_PATH} {message}" in text
    _, tries = task_tries("taxi_api_to_postgres")
    assert tries["green.wait_for_file"] == ("failed", 1), tries
    assert tries["green.stage"][0] == "upstream_failed"
    assert mirror.count(OCTOBER_PATH, "HEAD") == 1
    assert mirror.count(OCTOBER_PATH) == downloads_before  # nothing downloaded
    assert postgres_state(pg_conn, pg_schema) == before


def test_server_errors_that_outlast_the_downloads_retries_are_retried_by_airflow(
    run_dag, mirror, mirror_env, pg_conn, pg_schema
):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    one_good_load = postgres_state(pg_conn, pg_schema, with_runs=False)
    mirror.script(OCTOBER_PATH, *[error(503)] * DOWNLOAD_ATTEMPTS)
    downloads_before = mirror.count(OCTOBER_PATH)

    text = assert_run_succeeded(run_dag("taxi_api_to_postgres", OCTOBER_RUN, **mirror_env))

    _, tries = task_tries("taxi_api_to_postgres")
    assert tries["green.stage"] == ("success", 2), tries
    assert f"TransientDownloadError: {mirror.url}{OCTOBER_PATH} answered HTTP 503" in text
    assert RETRIED.search(text)
    assert mirror.count(OCTOBER_PATH) - downloads_before == DOWNLOAD_ATTEMPTS + 1
    assert postgres_state(pg_conn, pg_schema, with_runs=False) == one_good_load
    assert staging_tables(pg_conn, pg_schema) == []


def test_a_connection_killed_mid_copy_is_retried_by_airflow_and_loads_the_month_once(
    run_dag, mirror, mirror_env, pg_conn, pg_schema, staging_fault
):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    one_good_load = postgres_state(pg_conn, pg_schema, with_runs=False)
    staging_fault("PERFORM pg_terminate_backend(pg_backend_pid())")

    text = assert_run_succeeded(run_dag("taxi_api_to_postgres", OCTOBER_RUN, **mirror_env))

    _, tries = task_tries("taxi_api_to_postgres")
    assert tries["green.stage"] == ("success", 2), tries
    assert "psycopg.OperationalError: sending copy data failed: server closed the connection" in text
    # No rule names a database error: the policy defers to the task's own retries, and says nothing.
    assert not re.search(r"Retry policy decision\s+\[task\] action=", text)
    assert postgres_state(pg_conn, pg_schema, with_runs=False) == one_good_load
    assert staging_tables(pg_conn, pg_schema) == []
