"""docker-compose.yaml for real: the images built, the stack up with two Celery workers, months
loaded through the stack's own REST API, and the rows checked against the mirror's files.

The upstream images (apache/airflow, postgres, redis, python) are the stand-ins that
tests/deploy/standin-images/build.sh builds under the same names, since no image registry is
reachable here; docker-compose.yaml and Dockerfile run unchanged on them, with .env.example's
Block 1 (the local stand-ins) as the user gets it. The test reaches the stack only through ports
that compose publishes on 127.0.0.1. Without a Docker engine it fails: scripts/test.sh starts one
(scripts/docker-engine.sh).

Timings (images, build, up, runs) go to test-artifacts/stack-timings.json, and what build.sh
built, step by step, to test-artifacts/standin-build.log.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests

from local_stack import expected, mirror
from local_stack.compose import (
    FINISHED,
    ONE_SHOT,
    REPO,
    Api,
    Backfill,
    Stack,
    build_standins,
    create_backfill,
    day,
    loopback_url,
    next_scheduled_month,
    postgres_rows_per_month,
    require_docker,
    stack_env,
    wait_until_healthy,
)

pytestmark = pytest.mark.stack

# --- What the stack is asked to run, and what it must leave: update these with the DAGs ---------
POSTGRES_DAG = "taxi_api_to_postgres"
GCS_DAG = "taxi_api_to_gcs"
BIGQUERY_DAG = "taxi_gcs_to_bigquery"  # scheduled on the asset that GCS_DAG publishes
PG_SCHEMA = "ny_taxi"
BQ_DATASET = "ny_taxi"
TAXIS = ("yellow", "green", "fhv")
# .env.example's Block 1 bounds the schedules to these months, and the tlc-mirror service builds
# every family of each of them (local_stack/mirror.py).
FIRST_MONTH, LAST_MONTH = "2020-10", "2021-01"
BOUNDED_MONTHS = ["2020-10", "2020-11", "2020-12", "2021-01"]

# Created while the DAGs are paused (Airflow 3.3 starts a backfill's runs only once its DAG is
# unpaused), with the params' defaults: every family. Unpaused, taxi_api_to_postgres then catches
# up the bounded months after its backfill's, 2020-12 and 2021-01, and nothing later. GCS_DAG's
# backfill is of the last bounded month, so it has nothing to catch up: one month into GCS and,
# through its asset events, BigQuery.
POSTGRES_BACKFILL = Backfill(
    POSTGRES_DAG, "2020-10-01", "2020-11-01", {}, {"2020-10-01": "success", "2020-11-01": "success"}
)
GCS_BACKFILL = Backfill(GCS_DAG, "2021-01-01", "2021-01-01", {}, {"2021-01-01": "success"})
# Each DAG's runs once everything has finished: logical date -> (run type, state).
EXPECTED_RUNS = {
    POSTGRES_DAG: {
        "2020-10-01": ("backfill", "success"),
        "2020-11-01": ("backfill", "success"),
        "2020-12-01": ("scheduled", "success"),
        "2021-01-01": ("scheduled", "success"),
    },
    GCS_DAG: {"2021-01-01": ("backfill", "success")},
}
# What DAG's next scheduled month is once the backfills exist: the catch-up's first month, or None
# when the bounds leave nothing (the timetable's last month is behind it).
NEXT_AFTER_BACKFILLS = {POSTGRES_DAG: "2020-12", GCS_DAG: None}
POSTGRES_MONTHS = [(taxi, month) for taxi in TAXIS for month in BOUNDED_MONTHS]
BIGQUERY_MONTHS = [(taxi, "2021-01") for taxi in TAXIS]


def bigquery_table(taxi: str) -> str:
    return f"{taxi}_tripdata"


@pytest.fixture(scope="module")
def local_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mirror built here with the tlc-mirror service's code and months: the same bytes."""
    return mirror.build(
        tmp_path_factory.mktemp("mirror") / "tlc",
        mirror.Month.parse(FIRST_MONTH),
        mirror.Month.parse(LAST_MONTH),
    )


def expected_counts(folder: Path, months: list[tuple[str, str]]) -> dict[str, dict[date, int]]:
    """Per family, rows per source month (its first day, as the tables store it), counted with
    pandas from the mirror's files by the documented rules (local_stack/expected.py)."""
    counts: dict[str, dict[date, int]] = {}
    for taxi, month in months:
        rows = expected.rows(expected.mirror_file(folder, taxi, month))
        counts.setdefault(taxi, {})[date.fromisoformat(f"{month}-01")] = rows
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


def bigquery_loads(api: Api) -> set[tuple[str, str]]:
    """(taxi, month) of every load_month instance of BIGQUERY_DAG that succeeded."""
    path = f"/dags/{BIGQUERY_DAG}/dagRuns/~/taskInstances"
    task_instances = api("GET", path, params={"limit": 1000})["task_instances"]
    return {
        tuple(ti["rendered_map_index"].split())
        for ti in task_instances
        if ti["task_id"] == "load_month" and ti["state"] == "success"
    }


@pytest.fixture(scope="module")
def finished_runs(stack: Stack, api: Api) -> dict[str, list[dict[str, Any]]]:
    """Create the backfills, unpause, and wait until the backfills, the catch-up and the BigQuery
    runs that GCS_DAG's asset events schedule have finished; every run of the three DAGs."""
    assert (stack.env["AIRFLOW_VAR_TAXI_FIRST_MONTH"], stack.env["AIRFLOW_VAR_TAXI_LAST_MONTH"]) == (
        FIRST_MONTH,
        LAST_MONTH,
    ), "update the months above with .env.example's Block 1"
    dag_ids = [POSTGRES_DAG, GCS_DAG, BIGQUERY_DAG]
    for dag_id in dag_ids:
        api.wait_for(
            f"{dag_id} to be parsed",
            lambda d=dag_id: api("GET", f"/dags/{d}", expect=(200, 404)).get("dag_id"),
            300,
            stack,
        )
    for dag_id in (POSTGRES_DAG, GCS_DAG):
        # Paused at creation, each monthly DAG's first scheduled month is the bounds' first.
        assert api("GET", f"/dags/{dag_id}")["is_paused"] is True
        assert next_scheduled_month(api, dag_id) == FIRST_MONTH
    started = time.monotonic()
    backfills = [(backfill, create_backfill(api, backfill)) for backfill in (POSTGRES_BACKFILL, GCS_BACKFILL)]
    # The dag-processor's next parse moves each DAG's next month past its backfill's runs.
    for dag_id, month in NEXT_AFTER_BACKFILLS.items():
        api.wait_for(
            f"{dag_id}'s next scheduled month to become {month}",
            lambda d=dag_id, m=month: True if next_scheduled_month(api, d) == m else None,
            300,
            stack,
        )
    for dag_id in dag_ids:  # BIGQUERY_DAG is scheduled on the asset only: it waits for GCS_DAG
        api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    for backfill, backfill_id in backfills:
        api.wait_for(
            f"backfill {backfill}",
            lambda i=backfill_id: api("GET", f"/backfills/{i}").get("completed_at"),
            RUNS_WITHIN,
            stack,
        )

    def monthly_runs_finished() -> bool | None:
        for dag_id, runs in EXPECTED_RUNS.items():
            found = api.runs(dag_id)
            if len(found) < len(runs) or any(run["state"] not in FINISHED for run in found):
                return None
        return True

    api.wait_for("the catch-up", monthly_runs_finished, RUNS_WITHIN, stack)

    def bigquery_settled() -> bool | None:
        # Every run finished and no asset event queued for a run: nothing more will happen.
        if any(run["state"] not in FINISHED for run in api.runs(BIGQUERY_DAG)):
            return None
        queued = api("GET", f"/dags/{BIGQUERY_DAG}/assets/queuedEvents", expect=(200, 404)) or {}
        return None if queued.get("queued_events") else True

    api.wait_for(f"{BIGQUERY_DAG} after the asset events", bigquery_settled, RUNS_WITHIN, stack)
    stack.timings["runs (backfills, catch-up, asset-triggered)"] = round(time.monotonic() - started, 1)
    return {dag_id: api.runs(dag_id) for dag_id in dag_ids}


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
        "tlc-mirror",
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


def test_the_mirror_serves_the_files_built_here(stack: Stack, local_mirror: Path) -> None:
    # The expected counts below come from local_mirror: the container's build must be byte for byte
    # the same, every family of every bounded month included.
    base = loopback_url(stack.published("tlc-mirror", 8765))
    files = sorted(path for path in local_mirror.rglob("*") if path.is_file())
    for taxi in TAXIS:
        for month in BOUNDED_MONTHS:
            assert expected.mirror_file(local_mirror, taxi, month) in files
    for path in files:
        served = requests.get(f"{base}/{path.relative_to(local_mirror).as_posix()}", timeout=60)
        assert served.status_code == 200, path
        assert hashlib.sha256(served.content).digest() == hashlib.sha256(path.read_bytes()).digest(), path


def test_backfills_and_the_catch_up_run_exactly_the_bounded_months(
    api: Api, finished_runs: dict[str, list[dict[str, Any]]]
) -> None:
    for dag_id, runs in EXPECTED_RUNS.items():
        found = {day(run["logical_date"]): (run["run_type"], run["state"]) for run in finished_runs[dag_id]}
        assert found == runs, dag_id
        # None after the last bounded month: the timetable has nothing more to schedule.
        assert next_scheduled_month(api, dag_id) is None, dag_id
    assert all(run["conf"] in ({}, None) for run in finished_runs[POSTGRES_DAG])  # the default: every family


def test_no_run_failed(api: Api, finished_runs: dict[str, list[dict[str, Any]]]) -> None:
    runs = api("GET", "/dags/~/dagRuns", params={"limit": 1000})["dag_runs"]
    assert {run["dag_id"] for run in runs} == set(finished_runs)
    assert [run for run in runs if run["state"] != "success"] == []
    assert {run["run_type"] for run in finished_runs[BIGQUERY_DAG]} == {"asset_triggered"}


def test_every_asset_event_is_loaded_into_bigquery(api: Api, finished_runs: dict) -> None:
    loaded = bigquery_loads(api)
    if loaded != set(BIGQUERY_MONTHS):
        # Airflow 3.3.2 queues one run request per asset and consumer (asset_dag_run_queue): an
        # event of the asset that arrives while an earlier one waits there for its run is left
        # out of that run, and no run takes it until another event of the asset arrives
        # (apache/airflow#56050; fixed in 3.4 by apache/airflow#70972).
        events = api("GET", "/assets/events", params={"limit": 100})["asset_events"]
        unconsumed = [
            (e["timestamp"], e["source_task_id"], e["extra"]) for e in events if not e["created_dagruns"]
        ]
        raise AssertionError(
            f"{BIGQUERY_DAG} loaded {sorted(loaded)}, not {BIGQUERY_MONTHS}; the asset events that no run "
            f"consumed: {unconsumed}"
        )


def test_postgres_holds_the_cleaned_rows_of_each_month(
    stack: Stack, finished_runs: dict, local_mirror: Path
) -> None:
    assert stack.published("taxi-postgres", 5432).startswith("127.0.0.1:")
    found = postgres_rows_per_month(stack, PG_SCHEMA, TAXIS)
    assert found == expected_counts(local_mirror, POSTGRES_MONTHS)


def test_bigquery_holds_the_cleaned_rows_of_each_month(
    stack: Stack, finished_runs: dict, local_mirror: Path
) -> None:
    from google.api_core.client_options import ClientOptions
    from google.api_core.exceptions import NotFound
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    endpoint = loopback_url(stack.published("bigquery-emulator", 9050))
    client = bigquery.Client(
        project=stack.env["GCP_PROJECT_ID"],
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    found = {}
    for taxi in TAXIS:
        try:
            rows = client.query(
                f"SELECT source_month, COUNT(*) AS n FROM `{BQ_DATASET}.{bigquery_table(taxi)}`"
                " GROUP BY source_month"
            ).result()
        except NotFound:  # never loaded: no rows, and the comparison below says which
            rows = []
        found[taxi] = {row["source_month"]: row["n"] for row in rows}
    assert found == expected_counts(local_mirror, BIGQUERY_MONTHS)


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
    # A published file's wait_for_file starts and ends in the triggerer: no worker runs it.
    waits = [ti for ti in ran if ti["task_id"].endswith(".wait_for_file")]
    on_workers = [ti for ti in ran if ti not in waits]
    assert len(on_workers) >= 6 and waits
    used = {ti["hostname"] for ti in on_workers}
    assert used == hostnames, f"task instances ran on {used}, the workers are {hostnames}"
    assert not {ti["hostname"] for ti in waits} & hostnames, "a wait_for_file ran on a worker"


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
