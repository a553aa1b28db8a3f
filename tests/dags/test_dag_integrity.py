"""DAG integrity: every DAG imports cleanly, follows the repository's conventions, and parses fast
without touching the network, a database, or heavy libraries at import time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(DAGS_FOLDER.glob("*.py"))
EXPECTED_DAGS = {
    "taxi_api_to_postgres",
    "taxi_api_to_gcs",
    "taxi_gcs_to_bigquery",
    "taxi_daily_trips_to_gcs",
    "green_taxi_etl",
}

# Imported lazily inside tasks: a DAG file importing them would slow every parse of the folder.
HEAVY_MODULES = ("pandas", "pyarrow", "psycopg", "google.cloud", "requests", "include.flows", "matplotlib")


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS_FOLDER)


def test_every_dag_file_imports_without_errors(dag_bag):
    assert dag_bag.import_errors == {}
    assert set(dag_bag.dag_ids) >= EXPECTED_DAGS


def test_every_dag_has_an_owner_tags_docs_and_retries(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner not in ("", "airflow"), f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


_PARSE_PROBE = """
import json, socket, sys, time, runpy
def refuse(*args, **kwargs):
    raise AssertionError("network or database access while parsing a DAG file")
socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
import airflow.sdk  # noqa: F401  (Airflow itself is not the DAG file's cost)
before = set(sys.modules)
started = time.perf_counter()
runpy.run_path(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - started, "modules": sorted(set(sys.modules) - before)}))
"""


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda path: path.name)
def test_parsing_is_fast_and_does_no_io_or_heavy_imports(dag_file):
    result = subprocess.run(
        [sys.executable, "-c", _PARSE_PROBE, str(dag_file)],
        capture_output=True,
        text=True,
        check=False,
        cwd=DAGS_FOLDER.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["seconds"] < 1.0
    heavy = [m for m in probe["modules"] if m.startswith(HEAVY_MODULES)]
    assert heavy == [], f"{dag_file.name} imports {heavy} at parse time"


def test_the_bigquery_flow_is_scheduled_on_the_asset_the_gcs_flow_publishes(dag_bag):
    from include.assets import TAXI_PARQUET

    for taxi in ("yellow", "green", "fhv"):
        producer = dag_bag.dags["taxi_api_to_gcs"].get_task(f"{taxi}.publish")
        assert TAXI_PARQUET in producer.outlets
    assert dag_bag.dags["taxi_gcs_to_bigquery"].timetable.asset_condition == TAXI_PARQUET
