"""The benchmark still runs end to end: every method on slices of the real months, JSON and chart.

Speed is not judged here: on a few thousand rows the numbers measure start-up, not throughput,
and CI machines vary. What is checked is that every method loaded exactly the rows it should
(the benchmark itself fails on a wrong count), that every number was measured, and that the
report judges every target. ``python -m bench.run`` (full size) is where the targets are judged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
METHODS = {
    "dag_postgres",
    "pipe",
    "load",
    "dag_postgres_small",
    "dag_floor",
    "dbt_build",
    "dbt_build_small",
    "copy_numpy_x1",
    "copy_adbc_x1",
    "copy_numpy_x2",
    "copy_adbc_x2",
    "course",
    "load_parquet_x1",
    "parquet_plain_x1",
    "load_parquet_x2",
    "parquet_plain_x2",
    "dag_gcs",
    "gcs_stage",
    "gcs_plain",
}
TARGETS = {
    "dag_vs_pipe",
    "own_overhead_sample",
    "own_overhead_full",
    "load_vs_pipe",
    "dag_memory_flat",
    "load_memory",
    "gcs_vs_plain",
    "dag_parse",
}


def run_benchmark(module: str, *arguments: str, timeout: float) -> subprocess.CompletedProcess:
    """``python -m {module} {arguments}`` from the repository, which must exit 0."""
    done = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.integration
def test_smoke_size_runs_every_method_and_writes_json_and_chart(tmp_path: Path) -> None:
    result = run_benchmark("bench.run", "--size", "smoke", "--results", str(tmp_path), timeout=600)

    report = json.loads((tmp_path / "latest.json").read_text())
    methods = {method["key"]: method for method in report["methods"]}
    assert set(methods) == METHODS
    for key, method in methods.items():
        assert method["rows"] > 0 or key == "dag_floor", key
        assert method["median_seconds"] > 0, key
        assert method["median_cpu_seconds"] > 0, key
        assert method["peak_rss_mb"] > 0, key
    # Ours loads the cleaned rows, the plain pipe every row of the same file.
    assert methods["load"]["rows"] == methods["dag_postgres"]["rows"] < methods["pipe"]["rows"]
    assert methods["dag_postgres_small"]["rows"] < methods["dag_postgres"]["rows"]
    assert methods["dag_floor"]["rows"] == 0  # Airflow's share of a DAG run, measured apart
    assert methods["copy_numpy_x2"]["rows"] == 2 * methods["copy_numpy_x1"]["rows"]
    assert methods["copy_adbc_x1"]["rows"] == methods["copy_numpy_x1"]["rows"]
    # Postgres's own work is measured apart from the client's.
    assert methods["pipe"]["median_postgres_cpu_seconds"] >= 0
    assert methods["dag_postgres"]["baseline"] == "pipe" and methods["dag_postgres"]["wall_ratio"] > 0
    assert {target["name"] for target in report["targets"]} == TARGETS
    dag_vs_pipe = next(target for target in report["targets"] if target["name"] == "dag_vs_pipe")
    assert "Airflow's floor" in dag_vs_pipe["detail"]
    assert report["dag_parse"]["import_errors"] == {}
    assert report["noise"]["load_average_max"] >= report["noise"]["load_average_min"]
    assert "| `airflow dags test taxi_api_to_postgres`" in result.stdout
    assert (tmp_path / "ratios.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.integration
def test_backfill_smoke_runs_under_the_scheduler_beside_the_pipe(tmp_path: Path) -> None:
    """``bench.backfill`` at smoke size: three months through a real scheduler, then the pipe."""
    results = tmp_path / "backfill.json"
    done = run_benchmark("bench.backfill", "--size", "smoke", "--results", str(results), timeout=900)

    report = json.loads(results.read_text())
    (backfill,), (one,), (two,) = (report["results"][key] for key in ("backfill", "pipe_x1", "pipe_x2"))
    months = len(report["months"])
    # The benchmark fails on rows that differ from pandas' counts; the pipe loads every row.
    assert 0 < backfill["rows"] < one["rows"] == two["rows"]
    tasks = backfill["tasks"]
    for step in ("stage", "audit", "check_anomalies", "publish", "drop_staging"):
        assert tasks[f"green.{step}"]["states"] == {"success": months}, step
        assert tasks[f"green.{step}"]["run"]["total"] > 0, step
    # The other families' tasks never ran: the branch skipped them.
    others = {
        task_id: task
        for task_id, task in tasks.items()
        if task_id.split(".")[0] not in ("green", "plan_month")
    }
    assert others and all(task["states"] == {"skipped": months} for task in others.values())
    assert tasks["green.stage"]["parse"]["mean"] > 0  # read from the task runner's log
    assert backfill["cpu_seconds"] > 0 and backfill["peak_task_rss_mb"] > 0 and backfill["task_processes"] > 0
    assert backfill["seconds"] > 0 and one["seconds"] > 0 and two["seconds"] > 0
    assert "backfill_vs_pipe" in done.stdout


@pytest.mark.integration
def test_high_volume_fhv_smoke_loads_the_constructed_month_into_postgres_and_gcs(tmp_path: Path) -> None:
    """``bench.fhvhv`` on a constructed month of 100,000 trips instead of 20 million."""
    run_benchmark(
        "bench.fhvhv", "--rows", "100000", "--repeats", "1", "--results", str(tmp_path), timeout=600
    )

    report = json.loads((tmp_path / "fhvhv.json").read_text())
    methods = {method["key"]: method for method in report["methods"]}
    # The benchmark fails on a destination whose rows differ from the file's; these are its sizes.
    assert {key: method["rows"] for key, method in methods.items()} == {
        "fhvhv_load": 100_000,
        "fhvhv_plain": 100_000,
        "fhvhv_load_sample": 25_000,
        "fhvhv_gcs": 100_000,
        "fhvhv_gcs_sample": 25_000,
    }
    assert all(method["peak_rss_mb"] > 0 and method["median_seconds"] > 0 for method in methods.values())
    assert len(report["verdicts"]) == 3 and "plain pyarrow + psql" in report["verdicts"][0]["detail"]
