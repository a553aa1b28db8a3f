"""``green_taxi_etl`` against Postgres and the GCS stand-in, run with ``airflow dags test``."""

import io

import pyarrow.parquet as pq
import pytest

from local_stack import expected
from tests.samples import GREEN_2020_10, read_with_pandas

pytestmark = pytest.mark.integration


def state(pg_conn, pg_schema, storage_client, bucket):
    """Rows per pickup day in Postgres, and every object in the bucket (but the chart)."""
    rows = pg_conn.execute(
        f"SELECT lpep_pickup_date, count(*) FROM {pg_schema}.green_taxi GROUP BY 1 ORDER BY 1"
    ).fetchall()
    objects = {
        b.name: b.download_as_bytes()
        for b in storage_client.list_blobs(bucket)
        if not b.name.endswith(".png")
    }
    return dict(rows), objects


def months_in(objects) -> set[str]:
    return {
        name.rsplit("_", 1)[-1].removesuffix(".parquet") for name in objects if name.startswith("green_taxi/")
    }


def assert_succeeded(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def kept_per_day(path):
    source = read_with_pandas(path, parse_dates=["lpep_pickup_datetime"])
    kept = source[(source.passenger_count > 0) & (source.trip_distance > 0)]
    return kept.lpep_pickup_datetime.dt.date.value_counts().to_dict()


def test_loads_postgres_and_the_partitions_and_an_unchanged_source_is_not_downloaded_again(
    run_dag, pg_conn, pg_schema, storage_client, gcs_bucket
):
    conf = {"year": 2020, "months": [10]}
    first = run_dag("green_taxi_etl", conf, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket)
    assert_succeeded(first)
    per_day = kept_per_day(GREEN_2020_10)
    text = first.stdout + first.stderr
    assert f"rows after the filter: {sum(per_day.values())}" in text
    assert f"date partitions written: {len(per_day)}" in text

    rows_by_day, objects = state(pg_conn, pg_schema, storage_client, gcs_bucket)
    assert rows_by_day == per_day
    assert set(objects) == {
        f"green_taxi/lpep_pickup_date={day}/green_tripdata_2020-10.parquet" for day in per_day
    }
    for name, data in objects.items():
        table = pq.read_table(io.BytesIO(data))
        assert table.num_rows == next(count for day, count in per_day.items() if f"={day}/" in name)
        assert "vendor_id" in table.column_names and "VendorID" not in table.column_names

    second = run_dag("green_taxi_etl", conf, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket)
    assert_succeeded(second)
    text = second.stdout + second.stderr
    assert "Every source file is unchanged since the last run (HTTP 304): nothing to download or load" in text
    assert "Downloading" not in text
    assert state(pg_conn, pg_schema, storage_client, gcs_bucket) == (rows_by_day, objects)


def test_postgres_and_gcs_hold_exactly_the_months_of_the_last_run(
    run_dag, pg_conn, pg_schema, storage_client, gcs_bucket, local_mirror
):
    folder, url = local_mirror
    env = {"AIRFLOW_VAR_GCS_BUCKET": gcs_bucket, "AIRFLOW_VAR_MIRROR_BASE_URL": url}
    assert_succeeded(run_dag("green_taxi_etl", {"year": 2020, "months": [10, 11]}, **env))
    rows_by_day, objects = state(pg_conn, pg_schema, storage_client, gcs_bucket)
    assert months_in(objects) == {"2020-10", "2020-11"}
    assert sum(rows_by_day.values()) == sum(
        sum(kept_per_day(expected.mirror_file(folder, "green", m)).values()) for m in ("2020-10", "2020-11")
    )

    assert_succeeded(run_dag("green_taxi_etl", {"year": 2020, "months": [10]}, **env))
    rows_by_day, objects = state(pg_conn, pg_schema, storage_client, gcs_bucket)
    assert months_in(objects) == {"2020-10"}
    assert rows_by_day == kept_per_day(expected.mirror_file(folder, "green", "2020-10"))


def test_an_unpublished_month_fails_and_leaves_both_destinations_as_they_were(
    run_dag, pg_conn, pg_schema, storage_client, gcs_bucket
):
    assert_succeeded(
        run_dag("green_taxi_etl", {"year": 2020, "months": [10]}, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket)
    )
    before = state(pg_conn, pg_schema, storage_client, gcs_bucket)

    failed = run_dag("green_taxi_etl", {"year": 2020, "months": [10, 11]}, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket)

    assert failed.returncode != 0
    assert "green_tripdata_2020-11.csv.gz is not published (HTTP 404)" in failed.stdout + failed.stderr
    assert state(pg_conn, pg_schema, storage_client, gcs_bucket) == before
