"""Lineage: one month (green 2020-10 from the local mirror) through the three flows, with the
OpenLineage provider sending its events over HTTP to a receiver in this test.

The DAGs run whole with ``airflow dags test``; the test then follows the graph the events
describe, file → Postgres table and file → GCS objects → BigQuery table (and the daily export and
the course's pipeline), and compares every row count in it with what landed, counted
independently (pandas on the sample, SQL on Postgres and BigQuery, Parquet read back from GCS).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import psycopg
import pyarrow.parquet as pq
import pytest

from include.source.families import schema_for
from local_stack.stack import LOCAL_PROJECT, free_port
from tests.conftest import dags_test
from tests.samples import GREEN_2020_10, read_with_pandas

pytestmark = pytest.mark.integration

MONTH = "2020-10"
DAY = "2020-10-15"
# Where taxi_api_to_gcs writes a month: the file, its days, its rejects, its profile.
GCS_FLOW_PREFIXES = {
    "green_tripdata",
    "green_tripdata_by_day",
    "green_tripdata_rejects",
    "green_tripdata_profiles",
}
# In this order: the daily export reads what taxi_api_to_postgres published, BigQuery what GCS wrote.
RUNS = {
    "taxi_api_to_postgres": {"taxis": ["green"], "month": MONTH},
    "taxi_api_to_gcs": {"taxis": ["green"], "month": MONTH},
    "taxi_gcs_to_bigquery": {"taxis": ["green"], "month": MONTH},
    "taxi_daily_trips_to_gcs": {"taxis": ["green"], "day": DAY},
    "green_taxi_etl": {"year": 2020, "months": [10]},
}
JOB_NAMESPACE = "nyc_taxi_lineage_test"


class LineageReceiver(ThreadingHTTPServer):
    """An OpenLineage HTTP endpoint on loopback that keeps every event it is sent."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.events.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


@dataclass(frozen=True)
class Landed:
    """Where the month landed, and the events the runs sent."""

    events: list[dict]
    source_namespace: str
    postgres_namespace: str
    database: str
    schema: str
    bucket: str
    dataset: str


@pytest.fixture(scope="module")
def landed(postgres, tlc_base_url, cloud_stack, airflow_db, tmp_path_factory) -> Iterator[Landed]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    schema, bucket, dataset = (f"test_{uuid.uuid4().hex[:10]}" for _ in range(3))
    bucket = bucket.replace("_", "-")
    storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials()).create_bucket(bucket)
    cloud_stack.create_dataset(dataset)
    receiver = LineageReceiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "AIRFLOW_CONN_POSTGRES_DEFAULT": postgres.uri,
        "AIRFLOW_VAR_MIRROR_BASE_URL": tlc_base_url,
        "AIRFLOW_VAR_PG_SCHEMA": schema,
        "AIRFLOW_VAR_GCS_BUCKET": bucket,
        "AIRFLOW_VAR_BQ_DATASET": dataset,
        "AIRFLOW_VAR_CHART_DIR": str(tmp_path_factory.mktemp("charts")),
        # The configuration the README documents: the HTTP transport, a namespace, our extractor.
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "http", "url": receiver.url, "endpoint": "api/v1/lineage"}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": JOB_NAMESPACE,
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "include.observing.lineage.ReportedLineageExtractor",
    }
    try:
        for dag_id, conf in RUNS.items():
            result = subprocess.run(
                [*dags_test(dag_id, env), "-c", json.dumps(conf)],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        parts = urlsplit(postgres.uri)
        yield Landed(
            receiver.events,
            tlc_base_url.rstrip("/"),
            f"postgres://{parts.hostname}:{parts.port}",
            parts.path.lstrip("/"),
            schema,
            bucket,
            dataset,
        )
    finally:
        receiver.shutdown()
        with psycopg.connect(postgres.uri, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def complete_event(events: list[dict], job: str) -> dict:
    [event] = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == job]
    return event


def inputs(event: dict) -> dict[tuple[str, str], int | None]:
    """The event's inputs, each with its rowCount (None when the task did not count it)."""
    return {
        (d["namespace"], d["name"]): d.get("inputFacets", {}).get("inputStatistics", {}).get("rowCount")
        for d in event["inputs"]
    }


def outputs(event: dict) -> dict[tuple[str, str], int | None]:
    return {
        (d["namespace"], d["name"]): d.get("outputFacets", {}).get("outputStatistics", {}).get("rowCount")
        for d in event["outputs"]
    }


def path_between(events: list[dict], jobs: list[str], start: tuple, end: tuple) -> list[str]:
    """The jobs, in order, that lead from ``start`` to ``end`` through the given jobs' COMPLETE events."""
    edges = {}
    for job in jobs:
        event = complete_event(events, job)
        for source in inputs(event):
            for target in outputs(event):
                edges.setdefault(source, []).append((job, target))
    frontier, seen = [(start, [])], {start}
    while frontier:
        node, route = frontier.pop(0)
        if node == end:
            return route
        for job, target in edges.get(node, []):
            if target not in seen:
                seen.add(target)
                frontier.append((target, [*route, job]))
    return []


@pytest.fixture(scope="module")
def source_rows() -> int:
    return len(read_with_pandas(GREEN_2020_10))


def test_the_file_lands_in_the_postgres_table_with_the_rows_published(landed: Landed, pg_conn, source_rows):
    source = (landed.source_namespace, f"/green/green_tripdata_{MONTH}.csv.gz")
    table = (landed.postgres_namespace, f"{landed.database}.{landed.schema}.green_tripdata")
    rejects = (landed.postgres_namespace, f"{landed.database}.{landed.schema}.green_tripdata_rejects")
    [[published]] = pg_conn.execute(
        f"SELECT count(*) FROM {landed.schema}.green_tripdata WHERE source_month = %s", (f"{MONTH}-01",)
    ).fetchall()
    [[rejected]] = pg_conn.execute(f"SELECT count(*) FROM {landed.schema}.green_tripdata_rejects").fetchall()
    stage, publish = "taxi_api_to_postgres.green.stage", "taxi_api_to_postgres.green.publish"

    assert path_between(landed.events, [stage, publish], source, table) == [stage, publish]
    staged, moved = complete_event(landed.events, stage), complete_event(landed.events, publish)
    assert inputs(staged) == {source: source_rows}
    # publish reads the staging table and its rejects, as stage wrote them
    assert inputs(moved).items() <= outputs(staged).items()
    assert sorted(inputs(moved).values()) == sorted([published, rejected])
    assert outputs(moved)[table] == published
    assert outputs(moved)[rejects] == rejected
    assert 0 < published <= source_rows


def test_the_file_lands_in_gcs_and_then_in_the_bigquery_table_with_the_rows_loaded(
    landed: Landed, storage_client, bigquery_client, source_rows
):
    source = (landed.source_namespace, f"/green/green_tripdata_{MONTH}.csv.gz")
    month_object = (f"gs://{landed.bucket}", f"green_tripdata/green_tripdata_{MONTH}.parquet")
    table = ("bigquery", f"{LOCAL_PROJECT}.{landed.dataset}.green_tripdata")
    blob = storage_client.bucket(landed.bucket).blob(month_object[1]).download_as_bytes()
    in_gcs = pq.read_metadata(io.BytesIO(blob)).num_rows
    [[in_bigquery]] = bigquery_client.query(
        f"SELECT COUNT(*) FROM `{LOCAL_PROJECT}.{landed.dataset}.green_tripdata`"
        f" WHERE source_month = DATE '{MONTH}-01'"
    ).result()
    stage, publish = "taxi_api_to_gcs.green.stage", "taxi_api_to_gcs.green.publish"
    load = "taxi_gcs_to_bigquery.load_month"

    assert path_between(landed.events, [stage, publish, load], source, table) == [stage, publish, load]
    assert inputs(complete_event(landed.events, stage)) == {source: source_rows}
    assert outputs(complete_event(landed.events, publish))[month_object] == in_gcs
    assert inputs(complete_event(landed.events, load)) == {month_object: None}
    assert outputs(complete_event(landed.events, load)) == {table: in_bigquery}
    assert in_bigquery == in_gcs > 0


def test_every_object_published_to_the_bucket_is_an_output_of_publish(landed: Landed, storage_client):
    published = {
        (f"gs://{landed.bucket}", blob.name)
        for blob in storage_client.list_blobs(landed.bucket)
        if blob.name.split("/", 1)[0] in GCS_FLOW_PREFIXES
    }
    staged = outputs(complete_event(landed.events, "taxi_api_to_gcs.green.stage"))

    assert set(outputs(complete_event(landed.events, "taxi_api_to_gcs.green.publish"))) == published
    assert {name.rsplit("/", 1)[-1] for _, name in staged} == {
        name.rsplit("/", 1)[-1] for _, name in published
    }


def test_the_wait_names_the_file_it_found_and_every_event_is_in_the_configured_namespace(landed: Landed):
    wait = complete_event(landed.events, "taxi_api_to_postgres.green.wait_for_file")

    assert inputs(wait) == {(landed.source_namespace, f"/green/green_tripdata_{MONTH}.csv.gz"): None}
    assert {event["job"]["namespace"] for event in landed.events} == {JOB_NAMESPACE}
    started = {e["run"]["runId"] for e in landed.events if e["eventType"] == "START"}
    stage = complete_event(landed.events, "taxi_api_to_postgres.green.stage")
    assert stage["run"]["runId"] in started
    assert stage["run"]["facets"]["parent"]["job"]["name"] == "taxi_api_to_postgres"


def test_the_daily_export_reads_the_postgres_table_and_writes_the_days_rows(landed: Landed, pg_conn):
    table = (landed.postgres_namespace, f"{landed.database}.{landed.schema}.green_tripdata")
    export = (
        f"gs://{landed.bucket}",
        f"green_tripdata_exports/pickup_date={DAY}/green_tripdata_{DAY}.parquet",
    )
    pickup = schema_for("green").pickup_column
    [[trips]] = pg_conn.execute(
        f"SELECT count(*) FROM {landed.schema}.green_tripdata WHERE {pickup}::date = %s", (DAY,)
    ).fetchall()
    event = complete_event(landed.events, "taxi_daily_trips_to_gcs.export_day")

    assert inputs(event) == {table: None}
    assert outputs(event) == {export: trips}
    assert trips > 0


def test_the_courses_pipeline_goes_from_the_file_to_its_table_and_partitions(landed: Landed, pg_conn):
    source = (landed.source_namespace, f"/green/green_tripdata_{MONTH}.csv.gz")
    table = (landed.postgres_namespace, f"{landed.database}.{landed.schema}.green_taxi")
    day = (f"gs://{landed.bucket}", f"green_taxi/lpep_pickup_date={DAY}/green_tripdata_{MONTH}.parquet")
    [[loaded]] = pg_conn.execute(f"SELECT count(*) FROM {landed.schema}.green_taxi").fetchall()
    extract, load = "green_taxi_etl.extract_transform", "green_taxi_etl.load_postgres"
    partitions = "green_taxi_etl.write_partitions"
    jobs = [extract, load, partitions]

    assert path_between(landed.events, jobs, source, table) == [extract, load]
    assert path_between(landed.events, jobs, source, day) == [extract, partitions]
    assert outputs(complete_event(landed.events, load)) == {table: loaded}
    [staged_rows] = outputs(complete_event(landed.events, extract)).values()
    assert staged_rows == loaded > 0
