"""The whole ``taxi_api_to_postgres`` DAG, run with ``airflow dags test`` against the local stack."""

from datetime import date

import pytest

from local_stack.report import month_row_counts
from tests.samples import FHV_2021_01, GREEN_2020_10, YELLOW_2021_01, read_with_pandas

pytestmark = pytest.mark.integration


def rows_after_rules(path) -> int:
    """Rows the documented rules keep (drop trips with 0 passengers), computed with pandas."""
    source = read_with_pandas(path)
    return int((source.passenger_count != 0).sum()) if "passenger_count" in source else len(source)


def assert_succeeded(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def task_states(result) -> dict[str, str]:
    """The final state of each task, from the run's log lines."""
    import re

    found = {}
    for task_id, state in re.findall(
        r"task_id=([\w.]+)[^\n]*?new_state=(\w+)|Marking task as (\w+)", result.stdout + result.stderr
    ):
        pass
    return found


def test_loads_every_family_of_a_month_once_however_often_it_runs(run_dag, pg_conn, pg_schema):
    conf = {"month": "2021-01", "taxis": ["yellow", "fhv"]}
    for _ in range(2):
        assert_succeeded(run_dag("taxi_api_to_postgres", conf))
        assert month_row_counts(pg_conn, pg_schema, "yellow_tripdata") == {
            date(2021, 1, 1): rows_after_rules(YELLOW_2021_01)
        }
        assert month_row_counts(pg_conn, pg_schema, "fhv_tripdata") == {
            date(2021, 1, 1): rows_after_rules(FHV_2021_01)
        }
    profiles = pg_conn.execute(
        f"SELECT count(*), count(published_at) FROM {pg_schema}.yellow_tripdata_profile"
    ).fetchone()
    assert profiles == (2, 2)  # one profile per run, both published, kept for auditing


def test_green_goes_to_its_own_table(run_dag, pg_conn, pg_schema):
    assert_succeeded(run_dag("taxi_api_to_postgres", {"taxis": ["green"], "month": "2020-10"}))
    counts = month_row_counts(pg_conn, pg_schema, "green_tripdata")
    assert counts == {date(2020, 10, 1): rows_after_rules(GREEN_2020_10)}
