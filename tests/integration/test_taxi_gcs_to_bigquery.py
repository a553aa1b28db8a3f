"""``taxi_api_to_gcs`` then ``taxi_gcs_to_bigquery``, against the GCS and BigQuery stand-ins."""

import pandas as pd
import pytest

from include.schema import schema_for
from local_stack.tlc_server import SAMPLES
from tests.samples import GREEN_2020_10, YELLOW_2021_01, read_with_pandas

pytestmark = pytest.mark.integration


def _run(run_dag, dag_id, conf, gcs_bucket, bq_dataset):
    result = run_dag(dag_id, conf, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket, AIRFLOW_VAR_BQ_DATASET=bq_dataset)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _rows(client, sql):
    return [tuple(row.values()) for row in client.query(sql).result()]


@pytest.mark.parametrize(
    ("taxi", "month", "sample"), [("yellow", "2021-01", YELLOW_2021_01), ("green", "2020-10", GREEN_2020_10)]
)
def test_loads_exact_rows_and_a_summary_equal_to_pandas_and_reruns_change_nothing(
    run_dag, gcs_bucket, bq_dataset, bigquery_client, taxi, month, sample
):
    conf = {"taxi": taxi, "month": month}
    _run(run_dag, "taxi_api_to_gcs", conf, gcs_bucket, bq_dataset)
    _run(run_dag, "taxi_gcs_to_bigquery", conf, gcs_bucket, bq_dataset)

    pickup = schema_for(taxi).pickup_column
    source = read_with_pandas(sample, parse_dates=[pickup])
    kept = source[source.passenger_count != 0]
    table = f"local-project.{bq_dataset}.{taxi}_tripdata"
    assert _rows(bigquery_client, f"SELECT COUNT(*) FROM `{table}`") == [(len(kept),)]
    columns = [field.name for field in bigquery_client.get_table(table).schema]
    assert columns[:1] == ["vendor_id"] and {"ratecode_id", "pu_location_id", "do_location_id"} <= set(
        columns
    )

    zones = read_with_pandas(SAMPLES / "misc" / "taxi_zone_lookup.csv")
    joined = kept.merge(zones, how="left", left_on="PULocationID", right_on="LocationID")
    joined["pickup_day"] = joined[pickup].dt.date
    joined["pickup_borough"] = joined.Borough.fillna("Unknown")
    expected = joined.groupby(["pickup_day", "pickup_borough"]).agg(
        trips=("total_amount", "size"),
        revenue=("total_amount", "sum"),
        avg_trip_distance=("trip_distance", "mean"),
    )
    summary_sql = (
        "SELECT pickup_day, pickup_borough, trips, revenue, avg_trip_distance"
        f" FROM `local-project.{bq_dataset}.{taxi}_daily_summary` ORDER BY 1, 2"
    )
    actual = pd.DataFrame(
        _rows(bigquery_client, summary_sql),
        columns=["pickup_day", "pickup_borough", "trips", "revenue", "avg_trip_distance"],
    ).set_index(["pickup_day", "pickup_borough"])
    assert list(actual.index) == list(expected.index)
    assert actual.trips.tolist() == expected.trips.tolist()
    assert actual.revenue.tolist() == pytest.approx(expected.revenue.tolist())
    assert actual.avg_trip_distance.tolist() == pytest.approx(expected.avg_trip_distance.tolist())

    _run(run_dag, "taxi_gcs_to_bigquery", conf, gcs_bucket, bq_dataset)
    assert _rows(bigquery_client, f"SELECT COUNT(*) FROM `{table}`") == [(len(kept),)]
    leftovers = [t.table_id for t in bigquery_client.list_tables(bq_dataset) if "staging" in t.table_id]
    assert leftovers == []


def test_a_manual_run_without_a_month_fails_naming_the_param(run_dag, gcs_bucket, bq_dataset):
    result = run_dag(
        "taxi_gcs_to_bigquery",
        {"taxi": "yellow"},
        AIRFLOW_VAR_GCS_BUCKET=gcs_bucket,
        AIRFLOW_VAR_BQ_DATASET=bq_dataset,
    )
    assert result.returncode != 0
    assert "a manual run needs the 'month' param" in result.stdout + result.stderr
