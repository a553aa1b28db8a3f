"""DAG integrity: every DAG imports cleanly, follows the repository's conventions, and parses fast
without touching the network, a database, or heavy libraries at import time."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(DAGS_FOLDER.glob("*.py"))
# One DAG per file, named after it (dags/<dag_id>.py).
EXPECTED_DAGS = {dag_file.stem for dag_file in DAG_FILES}

# Imported lazily inside tasks: a DAG file importing them would slow every parse of the folder. Each
# DAG's task bodies (include/flows/<dag_id>.py) import the data libraries, so they count too.
HEAVY_MODULES = (
    "pandas",
    "pyarrow",
    "psycopg",
    "google.cloud",
    "requests",
    "matplotlib",
    *(f"include.flows.{dag_id}" for dag_id in sorted(EXPECTED_DAGS)),
)
# Imported by a library a DAG file cannot do without, counted in its parse time all the same: Cosmos's
# operators import the OpenLineage client, which imports requests (no request is made).
LIBRARY_IMPORTS = dict.fromkeys(
    ("taxi_warehouse_models.py", "taxi_warehouse_models_bigquery.py"), ("requests",)
)


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS_FOLDER)


def test_every_dag_file_imports_without_errors(dag_bag):
    assert dag_bag.import_errors == {}
    assert set(dag_bag.dag_ids) == EXPECTED_DAGS


def test_every_dag_serializes_as_the_dag_processor_stores_it(dag_bag):
    """The scheduler and `airflow dags test` run the serialized DAG: what imports must serialize too."""
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id, dag in dag_bag.dags.items():
        serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        assert set(serialized.task_ids) == set(dag.task_ids), dag_id


def test_every_dag_has_an_owner_tags_docs_and_retries(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner not in ("", "airflow"), f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


# Parses of a DAG file as the dag-processor does them: a process with Airflow already imported
# forks, and the child imports the file, with the network refused. CPU time is what a parse costs
# the dag-processor and hardly moves when other processes share the machine; the time the parse
# was blocked (wall time less CPU time and the time it waited for a CPU, from the kernel's
# /proc/self/schedstat) catches a file that sleeps or waits on I/O, whatever the machine's load.
# Each parse reports on its own line.
_PARSE_PROBE = """
import json, os, socket, sys, time, runpy
def refuse(*args, **kwargs):
    raise AssertionError("network or database access while parsing a DAG file")
socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
import airflow.sdk  # noqa: F401  (Airflow itself is not the DAG file's cost)
for _ in range(int(sys.argv[2])):
    sys.stdout.flush()
    if os.fork() == 0:
        before = set(sys.modules)
        def scheduled():  # nanoseconds on a CPU, and waiting for one
            return [int(field) for field in open("/proc/self/schedstat").read().split()[:2]]
        wall, cpu, (on_cpu, queued) = time.perf_counter(), time.process_time(), scheduled()
        runpy.run_path(sys.argv[1])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        on_cpu, queued = (after - start for after, start in zip(scheduled(), (on_cpu, queued)))
        print(json.dumps({"cpu": cpu, "blocked": wall - (on_cpu + queued) / 1e9,
                          "modules": sorted(set(sys.modules) - before)}), flush=True)
        os._exit(0)
    _, status = os.wait()
    if status:
        sys.exit("a parse failed")
"""
PARSES = 3  # the median of three parses: one reading on a busy 2-core machine is noise
CPU_LIMIT_SECONDS = 1.0  # a parse takes about 0.1-0.2 s of CPU here
# The Cosmos DAG files take 0.82-0.85 s of CPU on a quiet machine, under the 1 s target, 0.4 s of it
# Cosmos's operators importing the OpenLineage client; CI's two lanes at once pushed one to 1.12 s.
COSMOS_CPU_LIMIT_SECONDS = 1.5
CPU_LIMITS = dict.fromkeys(
    ("taxi_warehouse_models.py", "taxi_warehouse_models_bigquery.py"), COSMOS_CPU_LIMIT_SECONDS
)
BLOCKED_LIMIT_SECONDS = 1.0  # a parse reads a few files: milliseconds


def parse_cost(dag_file: Path) -> dict:
    """The median CPU and blocked seconds of ``PARSES`` parses of ``dag_file``, and the modules it imports."""
    result = subprocess.run(
        [sys.executable, "-c", _PARSE_PROBE, str(dag_file), str(PARSES)],
        capture_output=True,
        text=True,
        check=False,
        cwd=DAGS_FOLDER.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probes = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(probes) == PARSES, result.stdout[-2000:]
    return {
        "cpu": statistics.median(p["cpu"] for p in probes),
        "blocked": statistics.median(p["blocked"] for p in probes),
        "modules": sorted({m for p in probes for m in p["modules"]}),
    }


def too_slow(cost: dict, cpu_limit: float = CPU_LIMIT_SECONDS) -> list[str]:
    """What makes a parse too slow, if anything."""
    found = []
    if cost["cpu"] >= cpu_limit:
        found.append(f"{cost['cpu']:.2f} s of CPU (limit {cpu_limit} s)")
    if cost["blocked"] >= BLOCKED_LIMIT_SECONDS:
        found.append(
            f"{cost['blocked']:.2f} s blocked, sleeping or waiting on I/O (limit {BLOCKED_LIMIT_SECONDS} s)"
        )
    return found


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda path: path.name)
def test_parsing_is_fast_and_does_no_io_or_heavy_imports(dag_file):
    cost = parse_cost(dag_file)
    limit = CPU_LIMITS.get(dag_file.name, CPU_LIMIT_SECONDS)
    assert too_slow(cost, limit) == [], f"{dag_file.name} parses slowly"
    allowed = LIBRARY_IMPORTS.get(dag_file.name, ())
    heavy = [m for m in cost["modules"] if m.startswith(HEAVY_MODULES) and not m.startswith(allowed)]
    assert heavy == [], f"{dag_file.name} imports {heavy} at parse time"


_DAG_DOING_WORK = """
import time

from airflow.sdk import dag, task

{work}


@dag(schedule=None, tags=["test"])
def works_at_import():
    @task
    def nothing():
        pass

    nothing()


works_at_import()
"""
WORK_AT_IMPORT = {
    # A computation at import, e.g. building a table of values: CPU for every parse.
    "computes": (
        "started = time.process_time()\nwhile time.process_time() - started < 1.5:\n    pass",
        "of CPU",
    ),
    # Waiting at import, e.g. polling a service with a timeout: time that CPU does not show.
    "waits": ("time.sleep(3)", "blocked"),
}


@pytest.mark.parametrize(("work", "reason"), WORK_AT_IMPORT.values(), ids=WORK_AT_IMPORT.keys())
def test_the_parse_check_catches_a_dag_file_that_works_at_import(tmp_path, work, reason):
    dag_file = tmp_path / "works_at_import.py"
    dag_file.write_text(_DAG_DOING_WORK.format(work=work))
    slow = too_slow(parse_cost(dag_file))
    assert any(reason in found for found in slow), slow


def test_the_monthly_gcs_flow_publishes_the_asset_the_bigquery_flow_is_scheduled_on(dag_bag):
    from include.flows.assets import TAXI_PARQUET
    from include.source.families import TAXIS

    gcs_flow = dag_bag.dags["taxi_api_to_gcs"]
    assert [taxi for taxi in TAXIS if TAXI_PARQUET in gcs_flow.get_task(f"{taxi}.publish").outlets] == list(
        TAXIS
    )
    assert dag_bag.dags["taxi_gcs_to_bigquery"].timetable.asset_condition == TAXI_PARQUET


def test_the_pool_check_knows_every_pool_the_tasks_use_and_pools_json_creates_them(dag_bag):
    from include.flows.pools import POOLS

    used = {task.pool for dag in dag_bag.dags.values() for task in dag.tasks} - {"default_pool"}
    pools_file = DAGS_FOLDER.parent / "config" / "pools.json"
    assert used == POOLS == set(json.loads(pools_file.read_text()))


def test_the_monthly_dags_keep_their_deadline_except_when_airflow_dags_test_parses_them(dag_bag):
    # A scheduler evaluates it (tests/scheduler); `airflow dags test` would exit 1 with it
    # (include/flows/defaults.py), so the command line it parses under has none.
    for dag_id in ("taxi_api_to_postgres", "taxi_api_to_gcs"):
        assert dag_bag.dags[dag_id].deadline is not None, dag_id
    probe = (
        "import sys; sys.argv = ['airflow', 'dags', 'test', 'taxi_api_to_postgres']; "
        "from include.flows.defaults import MONTHLY_DEADLINE; print(MONTHLY_DEADLINE)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "None"


def test_the_source_changes_flow_reloads_through_both_monthly_dags_on_the_source_asset(dag_bag):
    changes = dag_bag.dags["taxi_source_changes"]
    assert changes.timetable.asset_condition.name == "nyc_taxi_source_files"
    reloads = {task.task_id: task for task in changes.tasks if task.task_id.startswith("reload_")}
    assert {task_id: task.partial_kwargs["trigger_dag_id"] for task_id, task in reloads.items()} == {
        "reload_postgres": "taxi_api_to_postgres",
        "reload_gcs": "taxi_api_to_gcs",
    }
    for task in reloads.values():
        # The same change announced twice reloads once; a paused monthly DAG fails the reload at once.
        assert (
            task.partial_kwargs["skip_when_already_exists"] and task.partial_kwargs["fail_when_dag_is_paused"]
        )
        assert task.upstream_task_ids == {"plan_reloads"}


def test_the_postgres_load_publishes_the_month_asset_the_warehouse_models_are_scheduled_on(dag_bag):
    from include.flows.assets import TAXI_BIGQUERY_MONTH, TAXI_POSTGRES_MONTH
    from include.source.families import TAXIS

    load = dag_bag.dags["taxi_api_to_postgres"]
    assert all(TAXI_POSTGRES_MONTH in load.get_task(f"{taxi}.publish").outlets for taxi in TAXIS)
    assert TAXI_BIGQUERY_MONTH in dag_bag.dags["taxi_gcs_to_bigquery"].get_task("load_month").outlets
    assert dag_bag.dags["taxi_warehouse_models"].timetable.asset_condition == TAXI_POSTGRES_MONTH
    assert dag_bag.dags["taxi_warehouse_models_bigquery"].timetable.asset_condition == TAXI_BIGQUERY_MONTH


@pytest.mark.parametrize("dag_id", ["taxi_warehouse_models", "taxi_warehouse_models_bigquery"])
def test_every_dbt_model_runs_after_the_tests_of_what_it_reads(dag_bag, dag_id):
    """A failed test stops what depends on it: each model's run waits for its parents' test tasks."""
    import json

    dag = dag_bag.dags[dag_id]
    manifest = json.loads((DAGS_FOLDER.parent / "include" / "dbt" / "target" / "manifest.json").read_text())
    models = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed")
    }
    assert {"stg_fhv_tripdata", "dim_zones", "fact_trips", "dm_monthly_zone_revenue"} <= set(models)
    for name, node in models.items():
        if node["resource_type"] != "model":
            continue
        run = dag.get_task(f"dbt.{name}.run")
        assert "months_to_build" in run.get_flat_relative_ids(upstream=True)
        for parent in node["depends_on"]["nodes"]:
            parent_name = parent.split(".")[-1]
            if parent.startswith("model."):
                assert f"dbt.{parent_name}.test" in run.upstream_task_ids, (
                    f"{name} does not wait for {parent}"
                )
        assert dag.get_task(f"dbt.{name}.test").upstream_task_ids == {f"dbt.{name}.run"}
