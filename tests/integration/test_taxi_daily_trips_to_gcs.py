"""``taxi_daily_trips_to_gcs``: one day of the Postgres table to its own object."""

import io

import pyarrow.parquet as pq
import pytest

from tests.samples import YELLOW_2021_01, read_with_pandas

pytestmark = pytest.mark.integration


def test_exports_a_day_overwrites_on_rerun_and_skips_days_without_trips(run_dag, gcs_bucket, storage_client):
    loaded = run_dag("taxi_api_to_postgres", {"taxi": "yellow", "month": "2021-01"})
    assert loaded.returncode == 0, loaded.stdout[-3000:] + loaded.stderr[-3000:]
    source = read_with_pandas(YELLOW_2021_01, parse_dates=["tpep_pickup_datetime"])
    kept = source[source.passenger_count != 0]
    expected = int((kept.tpep_pickup_datetime.dt.date.astype(str) == "2021-01-01").sum())

    for _ in range(2):
        result = run_dag(
            "taxi_daily_trips_to_gcs",
            {"taxi": "yellow", "day": "2021-01-01"},
            AIRFLOW_VAR_GCS_BUCKET=gcs_bucket,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        names = [b.name for b in storage_client.list_blobs(gcs_bucket)]
        assert names == ["yellow/2021/01/01/daily_trips.parquet"]
    data = storage_client.bucket(gcs_bucket).blob(names[0]).download_as_bytes()
    assert pq.read_table(io.BytesIO(data)).num_rows == expected > 0

    empty = run_dag(
        "taxi_daily_trips_to_gcs", {"taxi": "yellow", "day": "2021-01-20"}, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket
    )
    assert empty.returncode == 0
    assert "No yellow trips with a pickup on 2021-01-20" in empty.stdout + empty.stderr
    assert [b.name for b in storage_client.list_blobs(gcs_bucket)] == names
