"""Faults at the source: it answers 404, 401/403, 5xx, stalls, cuts the download, or sends the wrong thing.

Every case runs the monthly flows' steps (download, stage, audit, check, publish, teardown) against
the real Postgres and GCS stand-in, after one good load of green 2020-10, and compares digests of
the destination. The DAG-level view of the same faults (which fail the task at once, which Airflow
retries) is in test_retry_policy.py.
"""

import gzip
import logging

import pytest

from include.errors import (
    InvalidFileError,
    SourceAccessDeniedError,
    SourceNotPublishedError,
    TransientDownloadError,
)
from tests.reliability.conftest import (
    OCTOBER_PATH,
    bucket_state,
    export_to_gcs,
    load_to_postgres,
    postgres_state,
    staging_objects,
    staging_tables,
)
from tests.reliability.fault_server import Fault, dropped_after, error, served, stalled
from tests.samples import GREEN_2020_10

pytestmark = pytest.mark.integration

QUICK = {"backoff_seconds": 0.05, "read_timeout": 0.5}
SAMPLE = GREEN_2020_10.read_bytes()
HTML_PAGE = b"<!DOCTYPE html>\n<html><body><h1>Sign in to continue</h1></body></html>\n"
FILE = "green_tripdata_2020-10.csv.gz"

FAILURES = {
    "not published (404)": ([error(404)], SourceNotPublishedError, rf"{FILE} is not published \(HTTP 404\)"),
    "unauthorized (401)": ([error(401)], SourceAccessDeniedError, rf"{FILE} refused access \(HTTP 401\)"),
    "forbidden (403)": ([error(403)], SourceAccessDeniedError, rf"{FILE} refused access \(HTTP 403\)"),
    "server errors outlast the retries": ([error(503)] * 3, TransientDownloadError, r"answered HTTP 503"),
    "the connection drops every time": (
        [dropped_after(len(SAMPLE) // 2)] * 3,
        TransientDownloadError,
        rf"{FILE} failed after .*IncompleteRead\({len(SAMPLE) // 2} bytes read",
    ),
    "the server stalls past the read timeout every time": (
        [stalled(1.5)] * 3,
        TransientDownloadError,
        rf"{FILE} failed after 0 bytes: .*Read timed out",
    ),
    "truncated gzip": (
        [served(SAMPLE[: len(SAMPLE) // 2])],
        InvalidFileError,
        rf"{FILE} is truncated or corrupt",
    ),
    "empty file": ([served(b"")], InvalidFileError, rf"{FILE} is empty \(0 bytes\)"),
    "an HTML page instead of the file": (
        [served(HTML_PAGE, "text/html")],
        InvalidFileError,
        rf"{FILE} is not gzip-compressed: .*an HTML page",
    ),
    "gzip of an HTML page": (
        [served(gzip.compress(HTML_PAGE))],
        InvalidFileError,
        rf"{FILE}: missing column\(s\) lpep_pickup_datetime",
    ),
}
PERMANENT = ("not published (404)", "unauthorized (401)", "forbidden (403)")


@pytest.mark.parametrize(("faults", "raised", "message"), FAILURES.values(), ids=FAILURES.keys())
def test_a_failed_download_or_read_leaves_postgres_as_it_was(
    mirror, pg_conn, pg_schema, faults, raised, message
):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    before = postgres_state(pg_conn, pg_schema)
    profiles = pg_conn.execute(f"SELECT count(*) FROM {pg_schema}.green_tripdata_profile").fetchone()

    mirror.script(OCTOBER_PATH, *faults)
    requests_before = mirror.count(OCTOBER_PATH)
    with pytest.raises(raised, match=message):
        load_to_postgres(mirror.url, pg_conn, pg_schema, **QUICK, retries=2)

    assert postgres_state(pg_conn, pg_schema) == before
    # Nothing was staged: not even an unpublished profile, and no staging table is left.
    assert pg_conn.execute(f"SELECT count(*) FROM {pg_schema}.green_tripdata_profile").fetchone() == profiles
    assert staging_tables(pg_conn, pg_schema) == []
    assert mirror.count(OCTOBER_PATH) - requests_before == len(faults)


@pytest.mark.parametrize(("faults", "raised", "message"), FAILURES.values(), ids=FAILURES.keys())
def test_a_failed_download_or_read_leaves_the_bucket_as_it_was(
    mirror, gcs_hook, gcs_bucket, storage_client, faults, raised, message
):
    export_to_gcs(mirror.url, gcs_hook, gcs_bucket)
    before = bucket_state(storage_client, gcs_bucket)

    mirror.script(OCTOBER_PATH, *faults)
    with pytest.raises(raised, match=message):
        export_to_gcs(mirror.url, gcs_hook, gcs_bucket, **QUICK, retries=2)

    assert bucket_state(storage_client, gcs_bucket) == before
    assert staging_objects(storage_client, gcs_bucket) == []


@pytest.mark.parametrize("status", [404, 401, 403])
def test_a_missing_or_refused_file_is_asked_for_once(mirror, pg_conn, pg_schema, status):
    mirror.script(OCTOBER_PATH, error(status))
    with pytest.raises((SourceNotPublishedError, SourceAccessDeniedError)):
        load_to_postgres(mirror.url, pg_conn, pg_schema, **QUICK, retries=4)
    assert mirror.count(OCTOBER_PATH) == 1
    assert postgres_state(pg_conn, pg_schema)["green_tripdata"] is None


RECOVERED = {
    "server errors, then the file": [error(503), error(500), error(429)],
    "the connection drops, then the file": [dropped_after(1000), dropped_after(len(SAMPLE) - 1)],
    "an empty 200 whose length says otherwise": [Fault(cut_after_bytes=0)],
    "a stall past the read timeout, then the file": [stalled(1.5)],
}


@pytest.mark.parametrize("faults", RECOVERED.values(), ids=RECOVERED.keys())
def test_transient_faults_are_retried_with_backoff_and_load_the_month_once(
    mirror, pg_conn, pg_schema, faults, caplog
):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    one_good_load = postgres_state(pg_conn, pg_schema, with_runs=False)
    requests_before = mirror.count(OCTOBER_PATH)

    mirror.script(OCTOBER_PATH, *faults)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="include.source.download"):
        load_to_postgres(mirror.url, pg_conn, pg_schema, read_timeout=0.5, backoff_seconds=0.2)

    assert mirror.count(OCTOBER_PATH) - requests_before == len(faults) + 1
    retries = [record.getMessage() for record in caplog.records if "; retry " in record.getMessage()]
    waits = [float(message.rsplit(" in ", 1)[1].removesuffix(" s")) for message in retries]
    assert waits == [0.2 * 2**attempt for attempt in range(len(faults))]
    assert postgres_state(pg_conn, pg_schema, with_runs=False) == one_good_load
    assert staging_tables(pg_conn, pg_schema) == []
