"""docker-compose.yaml for real: the images built, the stack up with two Celery workers, months
loaded through the stack's own REST API, and the rows checked against the sample files.

The upstream images (apache/airflow, postgres, redis, python) are the stand-ins that
tests/deploy/standin-images/build.sh builds under the same names, since no image registry is
reachable here; docker-compose.yaml and Dockerfile run unchanged on them. The test reaches the
stack only through ports that compose publishes on 127.0.0.1. Without a Docker engine it fails:
scripts/test.sh starts one (scripts/docker-engine.sh).

Timings (images, build, up, runs) go to test-artifacts/stack-timings.json, and what build.sh
built, step by step, to test-artifacts/standin-build.log.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from local_stack.tlc_server import SAMPLES
from tests.deploy.compose_stack import (
    FINISHED,
    ONE_SHOT,
    Api,
    Backfill,
    Stack,
    build_standins,
    create_backfill,
    day,
    loopback_url,
    next_scheduled_month,
    require_docker,
    stack_env,
    wait_until_healthy,
)
from tests.deploy.conftest import REPO

pytestmark = pytest.mark.stack

# --- What the stack is asked to run, and what it must leave: update these with the DAGs ---------
POSTGRES_DAG = "taxi_api_to_postgres"
GCS_DAG = "taxi_api_to_gcs"
BIGQUERY_DAG = "taxi_gcs_to_bigquery"  # scheduled on the asset that GCS_DAG publishes
PG_SCHEMA = "ny_taxi"
BQ_DATASET = "ny_taxi"


def postgres_table(taxi: str) -> str:
    return f"{taxi}_taxi_trips"


def bigquery_table(taxi: str) -> str:
    return f"{taxi}_tripdata"


# Airflow 3.3 runs a backfill's runs only while its DAG is unpaused, and unpausing a monthly DAG
# (catchup=True) schedules every month after its latest run up to now. So the first wave is
# created while the DAGs are paused and reaches the last month the local mirror has; once the
# DAGs' next scheduled month lies past it, they are unpaused and the catch-up only meets months
# that answer 404. Each later wave starts when the one before has completed (Airflow allows one
# active backfill per DAG). The mirror has green 2020-10 and yellow 2021-01 only, so every other
# month's run must fail at once and load nothing.
LAST_SAMPLE_MONTH = "2021-01"
BACKFILL_WAVES = [
    [
        Backfill(POSTGRES_DAG, "2021-01-01", "2021-01-31", {"taxi": "yellow"}, {"2021-01-01": "success"}),
        Backfill(
            GCS_DAG,
            "2020-10-01",
            "2021-01-31",
            {"taxi": "green"},
            {"2020-10-01": "success", "2020-11-01": "failed", "2020-12-01": "failed", "2021-01-01": "failed"},
        ),
    ],
    [
        Backfill(
            POSTGRES_DAG,
            "2020-10-01",
            "2020-11-30",
            {"taxi": "green"},
            {"2020-10-01": "success", "2020-11-01": "failed"},
        ),
    ],
]
BACKFILLS = [backfill for wave in BACKFILL_WAVES for backfill in wave]
# (taxi, month) loaded into each destination; every other month must have no rows there.
POSTGRES_MONTHS = [("green", "2020-10"), ("yellow", "2021-01")]
BIGQUERY_MONTHS = [("green", "2020-10")]  # through the asset, after GCS_DAG's one successful run


def sample_file(taxi: str, month: str) -> Path:
    return SAMPLES / taxi / f"{taxi}_tripdata_{month}.csv.gz"


def cleaned_row_count(taxi: str, month: str) -> int:
    """The rows README's cleaning rules keep, counted with pandas apart from the pipeline's code:
    a pickup time is required, and a passenger_count of 0 is dropped while an empty one is kept."""
    frame = pd.read_csv(sample_file(taxi, month), low_memory=False)
    pickup = next(column for column in frame.columns if column.endswith("pickup_datetime"))
    kept = frame[frame[pickup].notna() & (frame["passenger_count"].isna() | (frame["passenger_count"] != 0))]
    return len(kept)


def expected_counts(months: list[tuple[str, str]]) -> dict[str, dict[date, int]]:
    """Per colour, rows per source month (the first day of the month, as the tables store it)."""
    counts: dict[str, dict[date, int]] = {}
    for taxi, month in months:
        counts.setdefault(taxi, {})[date.fromisoformat(f"{month}-01")] = cleaned_row_count(taxi, month)
    return counts


# --- The stack ------------------------------------------------------------------------------------
TIMINGS_FILE = REPO / "test-artifacts" / "stack-timings.json"
WORKERS = 2
RUNS_WITHIN = 900  # seconds for all the runs above


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_docker()
    folder = tmp_path_factory.mktemp("stack")
    env_file = folder / ".env"
    stack = Stack(f"nyctaxi-test-{uuid.uuid4().hex[:8]}", env_file, stack_env(env_file))
    started = time.monotonic()
    TIMINGS_FILE.parent.mkdir(exist_ok=True)
    (TIMINGS_FILE.parent / "standin-build.log").write_text(build_standins())  # what it built, how long
    stack.timings["stand-in images (build.sh)"] = round(time.monotonic() - started, 1)
    try:
        stack.timed("docker compose build", "build", timeout=3600)
        stack.timed("docker compose up -d", "up", "-d", "--scale", f"airflow-worker={WORKERS}", timeout=1200)
        started = time.monotonic()
        wait_until_healthy(stack)
        stack.timings["up until every service is healthy"] = round(time.monotonic() - started, 1)
        yield stack
    finally:
        stack.down()
        TIMINGS_FILE.parent.mkdir(exist_ok=True)
        TIMINGS_FILE.write_text(json.dumps(stack.timings, indent=2) + "\n")
        print(f"\nstack timings (s): {stack.timings}")


@pytest.fixture(scope="module")
def api(stack: Stack) -> Api:
    base = loopback_url(stack.published("airflow-apiserver", 8080))
    return Api(base, stack.env["AIRFLOW_ADMIN_USERNAME"], stack.env["AIRFLOW_ADMIN_PASSWORD"])


@pytest.fixture(scope="module")
def finished_runs(stack: Stack, api: Api) -> dict[str, list[dict[str, Any]]]:
    """Run BACKFILL_WAVES, then wait for the BigQuery run that the GCS flow's asset schedules."""
    monthly_dags = sorted({backfill.dag_id for backfill in BACKFILLS})
    for dag_id in [*monthly_dags, BIGQUERY_DAG]:
        api.wait_for(
            f"{dag_id} to be parsed",
            lambda d=dag_id: api("GET", f"/dags/{d}", expect=(200, 404)).get("dag_id"),
            300,
            stack,
        )
    started = time.monotonic()
    for number, wave in enumerate(BACKFILL_WAVES):
        ids = [create_backfill(api, backfill) for backfill in wave]
        if number == 0:
            for dag_id in monthly_dags:
                api.wait_for(
                    f"{dag_id}'s next scheduled month to pass {LAST_SAMPLE_MONTH}",
                    lambda d=dag_id: next_scheduled_month(api, d) > LAST_SAMPLE_MONTH or None,
                    300,
                    stack,
                )
            # BIGQUERY_DAG is scheduled on the asset only: unpaused, it waits for the GCS flow.
            for dag_id in [*monthly_dags, BIGQUERY_DAG]:
                api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        for backfill_id, backfill in zip(ids, wave, strict=True):
            api.wait_for(
                f"backfill {backfill}",
                lambda i=backfill_id: api("GET", f"/backfills/{i}").get("completed_at"),
                RUNS_WITHIN,
                stack,
            )

    def bigquery_runs_finished() -> bool | None:
        runs = api.runs(BIGQUERY_DAG, "asset_triggered")
        return True if runs and all(run["state"] in FINISHED for run in runs) else None

    api.wait_for(f"{BIGQUERY_DAG} after the asset update", bigquery_runs_finished, RUNS_WITHIN, stack)
    stack.timings["runs (backfills and the asset-triggered run)"] = round(time.monotonic() - started, 1)
    return {
        **{dag_id: api.runs(dag_id, "backfill") for dag_id in monthly_dags},
        BIGQUERY_DAG: api.runs(BIGQUERY_DAG, "asset_triggered"),
    }


# --- The tests, in the order a user meets the stack ------------------------------------------------
def test_project_image_installs_consistent_requirements(stack: Stack) -> None:
    # Dockerfile installs requirements.txt over the Airflow image: pip's dependency check must hold.
    result = stack.compose(
        "run",
        "--rm",
        "--no-deps",
        "-e",
        "CONNECTION_CHECK_MAX_COUNT=0",
        "airflow-worker",
        "python",
        "-m",
        "pip",
        "check",
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No broken requirements found" in result.stdout


def test_every_service_is_healthy_with_two_workers(stack: Stack) -> None:
    containers = stack.containers()
    services = {c["Service"] for c in containers}
    assert services >= {
        "postgres",
        "taxi-postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-worker",
        "bigquery-emulator",
    }
    workers = [c for c in containers if c["Service"] == "airflow-worker"]
    assert len(workers) == WORKERS and all(c.get("Health") == "healthy" for c in workers), workers
    for container in containers:
        if container["Service"] in ONE_SHOT:
            assert (container["State"], container["ExitCode"]) == ("exited", 0), container


def test_only_loopback_ports_are_published(stack: Stack) -> None:
    published = [
        publisher
        for container in stack.containers()
        for publisher in container.get("Publishers") or []
        if publisher.get("PublishedPort")
    ]
    assert len(published) >= 5
    assert {publisher["URL"] for publisher in published} == {"127.0.0.1"}, published


def test_the_ui_answers(stack: Stack) -> None:
    base = loopback_url(stack.published("airflow-apiserver", 8080))
    page = requests.get(f"{base}/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
    version = requests.get(f"{base}/api/v2/version", timeout=30)
    assert version.status_code == 200 and version.json()["version"] == "3.3.2"


def test_airflow_init_imported_the_pools(api: Api) -> None:
    pools = {pool["name"]: pool["slots"] for pool in api("GET", "/pools")["pools"]}
    committed = json.loads((REPO / "config" / "pools.json").read_text())
    assert {name: spec["slots"] for name, spec in committed.items()}.items() <= pools.items()
    assert {"postgres_loads", "bigquery_jobs"} <= set(pools)


def test_backfills_end_in_the_expected_states(finished_runs: dict[str, list[dict[str, Any]]]) -> None:
    for backfill in BACKFILLS:
        states = {
            day(run["logical_date"]): run["state"]
            for run in finished_runs[backfill.dag_id]
            if run["conf"] == backfill.conf
        }
        assert states == backfill.runs, backfill
    bigquery_states = [run["state"] for run in finished_runs[BIGQUERY_DAG]]
    assert bigquery_states == ["success"] * len(BIGQUERY_MONTHS), finished_runs[BIGQUERY_DAG]


def test_postgres_holds_the_cleaned_rows_of_each_month(stack: Stack, finished_runs: dict) -> None:
    import psycopg

    port = stack.published("taxi-postgres", 5432).rsplit(":", 1)
    assert port[0] == "127.0.0.1"
    uri = (
        f"postgresql://{stack.env['TAXI_POSTGRES_USER']}:{stack.env['TAXI_POSTGRES_PASSWORD']}"
        f"@127.0.0.1:{port[1]}/{stack.env['TAXI_POSTGRES_DB']}"
    )
    found = {}
    with psycopg.connect(uri) as conn:
        for taxi in expected_counts(POSTGRES_MONTHS):
            rows = conn.execute(
                f'SELECT source_month, count(*) FROM "{PG_SCHEMA}"."{postgres_table(taxi)}" GROUP BY 1'
            ).fetchall()
            found[taxi] = dict(rows)
    assert found == expected_counts(POSTGRES_MONTHS)


def test_bigquery_holds_the_cleaned_rows_of_each_month(stack: Stack, finished_runs: dict) -> None:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    endpoint = loopback_url(stack.published("bigquery-emulator", 9050))
    client = bigquery.Client(
        project=stack.env["GCP_PROJECT_ID"],
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    found = {}
    for taxi in expected_counts(BIGQUERY_MONTHS):
        rows = client.query(
            f"SELECT source_month, COUNT(*) AS n FROM `{BQ_DATASET}.{bigquery_table(taxi)}`"
            " GROUP BY source_month"
        ).result()
        found[taxi] = {row["source_month"]: row["n"] for row in rows}
    assert found == expected_counts(BIGQUERY_MONTHS)


def test_task_instances_ran_on_both_workers(stack: Stack, api: Api, finished_runs: dict) -> None:
    workers = [c for c in stack.containers() if c["Service"] == "airflow-worker"]
    hostnames = set()
    for worker in workers:
        inspected = subprocess.run(
            ["docker", "inspect", "--format", "{{.Config.Hostname}}", worker["ID"]],
            capture_output=True,
            text=True,
            check=True,
        )
        hostnames.add(inspected.stdout.strip())
    assert len(hostnames) == WORKERS
    task_instances = api("GET", "/dags/~/dagRuns/~/taskInstances", params={"limit": 1000})["task_instances"]
    ran = [ti for ti in task_instances if ti["state"] in FINISHED]
    assert len(ran) >= 6
    used = {ti["hostname"] for ti in ran}
    assert used == hostnames, f"task instances ran on {used}, the workers are {hostnames}"


def test_down_leaves_nothing_running(stack: Stack) -> None:
    stack.down()
    label = f"label=com.docker.compose.project={stack.project}"
    for kind in ("ps", "volume", "network"):
        listing = (
            ["docker", "ps", "-a", "-q", "--filter", label]
            if kind == "ps"
            else ["docker", kind, "ls", "-q", "--filter", label]
        )
        left = subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split()
        assert left == [], f"{kind}: {left}"
