"""The whole ``taxi_api_to_postgres`` DAG, run with ``airflow dags test`` against the local stack."""

import pandas as pd
import pytest

from local_stack.report import month_row_counts
from tests.samples import GREEN_2020_10, YELLOW_2021_01, read_with_pandas

pytestmark = pytest.mark.integration


def _rows_after_rules(path) -> int:
    """Rows the documented rules keep (drop trips with 0 passengers), computed with pandas."""
    source = read_with_pandas(path)
    return int((source.passenger_count != 0).sum())


def _assert_succeeded(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_loads_the_sample_month_once_however_often_it_runs(run_dag, pg_conn, pg_schema):
    conf = {"taxi": "yellow", "month": "2021-01"}
    expected = {pd.Timestamp("2021-01-01").date(): _rows_after_rules(YELLOW_2021_01)}

    _assert_succeeded(run_dag("taxi_api_to_postgres", conf))
    assert month_row_counts(pg_conn, pg_schema, "yellow_taxi_trips") == expected

    _assert_succeeded(run_dag("taxi_api_to_postgres", conf))
    assert month_row_counts(pg_conn, pg_schema, "yellow_taxi_trips") == expected


def test_green_goes_to_its_own_table_and_the_check_charts_it(run_dag, pg_conn, pg_schema, chart_dir):
    result = run_dag("taxi_api_to_postgres", {"taxi": "green", "month": "2020-10"})
    _assert_succeeded(result)
    counts = month_row_counts(pg_conn, pg_schema, "green_taxi_trips")
    assert counts == {pd.Timestamp("2020-10-01").date(): _rows_after_rules(GREEN_2020_10)}

    chart = chart_dir / "green_taxi_trips_2020-10_trips_per_day.png"
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"chart written to {chart}" in result.stdout + result.stderr


def test_a_missing_month_fails_naming_the_url_and_leaves_the_table_unchanged(
    run_dag, pg_conn, pg_schema, tlc_base_url
):
    _assert_succeeded(run_dag("taxi_api_to_postgres", {"taxi": "yellow", "month": "2021-01"}))
    before = month_row_counts(pg_conn, pg_schema, "yellow_taxi_trips")

    result = run_dag("taxi_api_to_postgres", {"taxi": "yellow", "month": "2021-02"})

    assert result.returncode != 0
    url = f"{tlc_base_url}/yellow/yellow_tripdata_2021-02.csv.gz"
    assert f"{url} is not published (HTTP 404)" in result.stdout + result.stderr
    assert month_row_counts(pg_conn, pg_schema, "yellow_taxi_trips") == before


def test_a_colour_outside_the_allow_list_is_rejected_before_anything_runs(run_dag):
    result = run_dag("taxi_api_to_postgres", {"taxi": "blue", "month": "2021-01"})
    assert result.returncode != 0
    assert "'blue' is not one of ['yellow', 'green']" in result.stdout + result.stderr
