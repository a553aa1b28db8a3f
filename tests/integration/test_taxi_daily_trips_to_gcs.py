"""``taxi_daily_trips_to_gcs``: days of a loaded month exported from Postgres to GCS."""

import io
from datetime import date

import pyarrow.parquet as pq
import pytest

from include.source.families import schema_for
from local_stack import expected
from tests.samples import YELLOW_2021_01

pytestmark = pytest.mark.integration
EXPORT = "yellow_tripdata_exports/pickup_date={day}/yellow_tripdata_{day}.parquet"


def assert_succeeded(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_exports_each_day_once_and_deletes_a_day_that_lost_its_trips(
    run_dag, gcs_bucket, storage_client, pg_conn, pg_schema
):
    bucket = {"AIRFLOW_VAR_GCS_BUCKET": gcs_bucket}
    assert_succeeded(run_dag("taxi_api_to_postgres", {"taxis": ["yellow"], "month": "2021-01"}))
    per_day = expected.rows_per_day(YELLOW_2021_01)
    for _ in range(2):
        assert_succeeded(
            run_dag("taxi_daily_trips_to_gcs", {"taxis": ["yellow"], "day": "2021-01-01"}, **bucket)
        )
    blob = storage_client.bucket(gcs_bucket).blob(EXPORT.format(day="2021-01-01"))
    table = pq.read_table(io.BytesIO(blob.download_as_bytes()))
    assert table.num_rows == per_day[date(2021, 1, 1)]
    assert table.schema == schema_for("yellow").table_schema

    # The month is reloaded without that day's trips: the day's export must go too.
    pg_conn.execute(
        f"DELETE FROM {pg_schema}.yellow_tripdata WHERE tpep_pickup_datetime::date = '2021-01-01'"
    )
    result = run_dag("taxi_daily_trips_to_gcs", {"taxis": ["yellow"], "day": "2021-01-01"}, **bucket)
    assert_succeeded(result)
    assert not blob.exists()
    assert "No yellow trips on 2021-01-01 any more: deleted" in result.stdout + result.stderr


def test_a_day_of_a_month_never_loaded_fails_naming_the_flow_to_run(run_dag, gcs_bucket, storage_client):
    result = run_dag(
        "taxi_daily_trips_to_gcs",
        {"taxis": ["green"], "day": "2020-10-05"},
        AIRFLOW_VAR_GCS_BUCKET=gcs_bucket,
    )
    assert result.returncode != 0
    assert "green 2020-10 was never loaded into" in result.stdout + result.stderr
    assert "run taxi_api_to_postgres for 2020-10 first" in result.stdout + result.stderr
    assert list(storage_client.list_blobs(gcs_bucket)) == []


def test_a_scheduled_day_is_its_midnight_interval():
    from datetime import datetime, timezone

    from include.flows.defaults import daily_schedule
    from include.source.sources import SourceSettings

    interval = daily_schedule(SourceSettings.from_values("mirror")).infer_manual_data_interval(
        run_after=datetime(2021, 1, 6, 6, 0, tzinfo=timezone.utc)
    )
    assert (interval.start, interval.end) == (
        datetime(2021, 1, 5, tzinfo=timezone.utc),
        datetime(2021, 1, 6, tzinfo=timezone.utc),
    )


def test_a_day_is_planned_for_the_requested_families_the_source_has_that_month():
    from include.errors import InvalidParamsError
    from include.flows.taxi_daily_trips_to_gcs import plan_day
    from include.source.families import TAXIS
    from include.source.sources import SOURCES

    mirror, today = SOURCES["mirror"], date(2026, 1, 1)
    planned = plan_day({"day": "2021-01-15", "taxis": list(TAXIS)}, None, mirror, today)
    assert planned == [{"taxi": taxi, "day": "2021-01-15"} for taxi in ("yellow", "green", "fhv")]
    with pytest.raises(InvalidParamsError, match=r"mirror publishes none of them for 2021-01"):
        plan_day({"day": "2021-01-15", "taxis": ["fhvhv"]}, None, mirror, today)
