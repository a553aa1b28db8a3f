"""Faults at the source: the mirror answers 404, 5xx, cuts the download, or sends the wrong thing.

Every case runs the monthly flows' own steps (download, read, clean, load) against the real
Postgres and GCS stand-in, after one good load of green 2020-10, and compares the destinations.
"""

import gzip
import logging

import pytest

from include.errors import SourceNotPublishedError, TransientDownloadError
from tests.reliability.conftest import (
    GREEN_TABLE,
    OCTOBER_PATH,
    bucket_state,
    download_and_export,
    download_and_load,
    table_state,
)
from tests.reliability.fault_server import Fault, dropped_after, error, served
from tests.samples import GREEN_2020_10

pytestmark = pytest.mark.integration

QUICK_RETRIES = {"backoff_seconds": 0.05}
SAMPLE = GREEN_2020_10.read_bytes()
HTML_PAGE = b"<!DOCTYPE html>\n<html><body><h1>Sign in to continue</h1></body></html>\n"


def _load(mirror, conn, schema_name, **options):
    return download_and_load(mirror.url, conn, schema_name, **{**QUICK_RETRIES, **options})


def _export(mirror, hook, bucket, **options):
    return download_and_export(mirror.url, hook, bucket, **{**QUICK_RETRIES, **options})


FAILURES = {
    "not published (404)": (
        [error(404)],
        SourceNotPublishedError,
        r"green_tripdata_2020-10.csv.gz is not published",
    ),
    "server errors outlast the retries": ([error(503)] * 3, TransientDownloadError, r"answered HTTP 503"),
    "the connection drops every time": (
        [dropped_after(len(SAMPLE) // 2)] * 3,
        TransientDownloadError,
        rf"green_tripdata_2020-10.csv.gz failed after .*IncompleteRead\({len(SAMPLE) // 2} bytes read",
    ),
    "truncated gzip": (
        [served(SAMPLE[: len(SAMPLE) // 2])],
        ValueError,
        r"green_tripdata_2020-10.csv.gz is truncated or corrupt",
    ),
    "empty file": ([served(b"")], ValueError, r"green_tripdata_2020-10.csv.gz is empty \(0 bytes\)"),
    "an HTML page instead of the file": (
        [served(HTML_PAGE, "text/html")],
        ValueError,
        r"green_tripdata_2020-10.csv.gz is not gzip-compressed: .*an HTML page",
    ),
    "gzip of an HTML page": (
        [served(gzip.compress(HTML_PAGE))],
        ValueError,
        r"green_tripdata_2020-10.csv.gz: missing column\(s\) VendorID",
    ),
}


@pytest.mark.parametrize(("faults", "raised", "message"), FAILURES.values(), ids=FAILURES.keys())
def test_a_failed_download_or_read_leaves_postgres_as_it_was(
    mirror, pg_conn, pg_schema, faults, raised, message
):
    _load(mirror, pg_conn, pg_schema)
    before = table_state(pg_conn, pg_schema, GREEN_TABLE)

    mirror.script(OCTOBER_PATH, *faults)
    with pytest.raises(raised, match=message):
        _load(mirror, pg_conn, pg_schema, retries=2)

    assert table_state(pg_conn, pg_schema, GREEN_TABLE) == before


@pytest.mark.parametrize(("faults", "raised", "message"), FAILURES.values(), ids=FAILURES.keys())
def test_a_failed_download_or_read_leaves_the_bucket_as_it_was(
    mirror, gcs_hook, gcs_bucket, storage_client, faults, raised, message
):
    _export(mirror, gcs_hook, gcs_bucket)
    before = bucket_state(storage_client, gcs_bucket)

    mirror.script(OCTOBER_PATH, *faults)
    with pytest.raises(raised, match=message):
        _export(mirror, gcs_hook, gcs_bucket, retries=2)

    assert bucket_state(storage_client, gcs_bucket) == before


def test_a_404_is_not_retried(mirror, pg_conn, pg_schema):
    mirror.script(OCTOBER_PATH, error(404))
    with pytest.raises(SourceNotPublishedError):
        _load(mirror, pg_conn, pg_schema, retries=4)
    assert mirror.requests[OCTOBER_PATH] == 1
    assert table_state(pg_conn, pg_schema, GREEN_TABLE) is None


RECOVERED = {
    "server errors, then the file": [error(503), error(500), error(429)],
    "the connection drops, then the file": [dropped_after(1000), dropped_after(len(SAMPLE) - 1)],
    "an empty 200 whose length says otherwise": [Fault(cut_after_bytes=0)],
}


@pytest.mark.parametrize("faults", RECOVERED.values(), ids=RECOVERED.keys())
def test_transient_faults_are_retried_with_backoff_and_load_the_month_once(
    mirror, pg_conn, pg_schema, faults, caplog
):
    _load(mirror, pg_conn, pg_schema)
    one_good_load = table_state(pg_conn, pg_schema, GREEN_TABLE)
    requests_before = mirror.requests[OCTOBER_PATH]

    mirror.script(OCTOBER_PATH, *faults)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="include.download"):
        _load(mirror, pg_conn, pg_schema, backoff_seconds=0.2)

    assert mirror.requests[OCTOBER_PATH] - requests_before == len(faults) + 1
    retries = [record.getMessage() for record in caplog.records if "; retry " in record.getMessage()]
    waits = [float(message.rsplit(" in ", 1)[1].removesuffix(" s")) for message in retries]
    assert waits == [0.2 * 2**attempt for attempt in range(len(faults))]
    assert table_state(pg_conn, pg_schema, GREEN_TABLE) == one_good_load
