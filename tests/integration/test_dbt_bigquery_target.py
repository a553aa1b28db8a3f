"""The dbt project's BigQuery target, parsed offline with dbt-bigquery (no BigQuery is needed): the
models are partitioned by month, clustered by zone, and replace only the months of the run.

What the BigQuery stand-in can and cannot run of it is measured in docs/local-stand-ins.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DBT = REPO / ".venv-dbt" / "bin" / "dbt"


def parse(tmp_path: Path, target: str, months: str) -> subprocess.CompletedProcess:
    """``dbt parse`` for ``target`` with the var ``months``, on a copy of the project."""
    project = tmp_path / "dbt"
    shutil.copytree(REPO / "include" / "dbt", project, ignore=shutil.ignore_patterns("target", "logs"))
    command = [str(DBT), "parse", "--profiles-dir", ".", "--target", target]
    return subprocess.run(
        [*command, "--vars", json.dumps({"months": months})],
        cwd=project,
        env={**os.environ, "NYC_TAXI_SCHEMA": "ny_taxi"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def manifest(tmp_path: Path, target: str, months: str) -> dict:
    result = parse(tmp_path, target, months)
    assert result.returncode == 0, result.stdout[-3000:]
    return json.loads((tmp_path / "dbt" / "target" / "manifest.json").read_text())


def model_config(manifest: dict, name: str) -> dict:
    return manifest["nodes"][f"model.nyc_taxi.{name}"]["config"]


def test_bigquery_replaces_the_month_partitions_of_the_run_and_clusters_by_zone(tmp_path):
    parsed = manifest(tmp_path, "bigquery", "2020-10,2021-01")
    fact = model_config(parsed, "fact_trips")
    assert fact["incremental_strategy"] == "insert_overwrite"
    assert fact["partition_by"] == {"field": "source_month", "data_type": "date", "granularity": "month"}
    assert fact["partitions"] == ["date '2020-10-01'", "date '2021-01-01'"]
    assert fact["cluster_by"] == ["pickup_location_id", "dropoff_location_id"]
    mart = model_config(parsed, "dm_monthly_zone_revenue")
    assert mart["partition_by"]["field"] == "revenue_month"
    assert mart["partitions"] == fact["partitions"]


def test_postgres_deletes_and_inserts_the_months_it_rebuilds(tmp_path):
    parsed = manifest(tmp_path, "postgres", "")
    fact = model_config(parsed, "fact_trips")
    assert (fact["incremental_strategy"], fact["unique_key"]) == ("delete+insert", "source_month")
    assert model_config(parsed, "dm_monthly_zone_revenue")["unique_key"] == "revenue_month"


def test_a_month_that_is_not_one_fails_the_parse_by_name(tmp_path):
    result = parse(tmp_path, "postgres", "2020-10'; drop table trips; --")
    assert result.returncode != 0
    assert "is not a month" in result.stdout
