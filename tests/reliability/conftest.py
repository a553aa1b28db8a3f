"""What the reliability tests share: a misbehaving mirror, and snapshots of every destination.

Each test takes a snapshot of the destination after one good run, provokes a fault, and compares:
a failure must leave the snapshot exactly as it was, a recovered fault exactly as one good run.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator

import psycopg
import pytest

from include.flows.taxi_api_to_gcs import ParquetExport, export_month_to_gcs
from include.flows.taxi_api_to_postgres import LoadResult, load_month_to_postgres
from include.months import Month
from include.sources import MonthRequest, downloaded_month
from local_stack.tlc_server import SAMPLES
from tests.reliability.fault_server import FaultyMirror, faulty_mirror
from tests.samples import GREEN_2020_10

OCTOBER = MonthRequest("green", Month(2020, 10))
OCTOBER_PATH = "/green/green_tripdata_2020-10.csv.gz"
GREEN_TABLE = "green_taxi_trips"


def download_and_load(
    base_url: str,
    conn: psycopg.Connection,
    schema_name: str,
    request: MonthRequest = OCTOBER,
    **download_options: float,
) -> LoadResult:
    """Download a month from ``base_url`` and load it into Postgres: the steps of ``extract_load``."""
    with downloaded_month(base_url, request, **download_options) as path:
        return load_month_to_postgres(conn, path, request, schema_name)


def download_and_export(
    base_url: str, hook, bucket: str, request: MonthRequest = OCTOBER, **download_options: float
) -> ParquetExport:
    """Download a month from ``base_url`` and write it to the bucket: the steps of ``taxi_api_to_gcs``."""
    with downloaded_month(base_url, request, **download_options) as path:
        return export_month_to_gcs(hook, path, request, bucket)


@pytest.fixture
def mirror() -> Iterator[FaultyMirror]:
    """The real sample files, served by a server that misbehaves when told to."""
    with faulty_mirror(SAMPLES) as server:
        yield server


def table_state(conn: psycopg.Connection, schema_name: str, table: str) -> tuple[int, str] | None:
    """Row count and a digest of every row of a table (None if it does not exist)."""
    if conn.execute("SELECT to_regclass(%s)", (f"{schema_name}.{table}",)).fetchone()[0] is None:
        return None
    query = (
        "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
        f" FROM {schema_name}.{table} t"
    )
    return conn.execute(query).fetchone()


def bucket_state(storage_client, bucket: str) -> dict[str, str]:
    """Every object of a bucket with its MD5: what a reader of the bucket would see."""
    return {blob.name: blob.md5_hash for blob in storage_client.list_blobs(bucket)}


@pytest.fixture
def gcs_hook(cloud_stack):
    """The hook the DAGs use, on the GCS stand-in (``cloud_stack`` sets the connection)."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook("google_cloud_default")


def edited_sample(edit: Callable[[list[list[str]]], list[list[str]]]) -> bytes:
    """Green 2020-10 as gzip CSV after ``edit`` changed its rows (the header is row 0)."""
    with gzip.open(GREEN_2020_10, "rt", newline="") as source:
        rows = edit(list(csv.reader(source)))
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return gzip.compress(text.getvalue().encode())


def as_december(rows: list[list[str]]) -> list[list[str]]:
    """October's trips moved to December (both have 31 days): a second real-shaped green month."""
    for row in rows[1:]:
        row[1], row[2] = (value.replace("2020-10-", "2020-12-") for value in row[1:3])
    return rows
