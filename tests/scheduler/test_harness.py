"""The scheduler harness itself: pools, a backfill run by the real scheduler, task instances, logs."""

from __future__ import annotations

from datetime import date

import pytest

from local_stack.report import month_row_counts
from tests.samples import GREEN_2020_10, read_with_pandas
from tests.scheduler.harness import POOLS

pytestmark = pytest.mark.scheduler

DAG_ID = "taxi_api_to_postgres"


def test_a_backfill_of_one_month_is_scheduled_run_and_loaded(airflow_scheduler, pg_conn, pg_schema):
    pools = {pool["name"]: pool["slots"] for pool in airflow_scheduler.api("GET", "/pools")["pools"]}
    assert {name: pools.get(name) for name in POOLS} == POOLS

    airflow_scheduler.unpause(DAG_ID)
    october = (date(2020, 10, 1), date(2020, 10, 31))
    backfill = airflow_scheduler.backfill(DAG_ID, *october, conf={"taxi": "green"})
    runs = airflow_scheduler.wait_for_runs(DAG_ID, count=1, timeout=300)

    assert backfill["dag_id"] == DAG_ID
    assert [(run["run_type"], run["data_interval_start"][:10], run["state"]) for run in runs] == [
        ("backfill", "2020-10-01", "success")
    ]
    run_id = runs[0]["dag_run_id"]
    states = airflow_scheduler.task_states(DAG_ID, run_id)
    assert states == {"extract_load": "success", "check_month": "success"}
    kept = int((read_with_pandas(GREEN_2020_10).passenger_count != 0).sum())
    assert month_row_counts(pg_conn, pg_schema, "green_taxi_trips") == {date(2020, 10, 1): kept}
    log = airflow_scheduler.task_log(DAG_ID, run_id, "extract_load")
    assert f"green_tripdata_2020-10.csv.gz: read 95120 rows, kept {kept}" in log
