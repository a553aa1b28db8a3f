"""``green_taxi_etl`` for 2020-10 against Postgres and the GCS stand-in."""

import io

import pyarrow.parquet as pq
import pytest

from tests.samples import GREEN_2020_10, read_with_pandas

pytestmark = pytest.mark.integration


def _state(pg_conn, pg_schema, storage_client, bucket):
    rows = pg_conn.execute(
        f"SELECT lpep_pickup_date, count(*) FROM {pg_schema}.green_taxi GROUP BY 1 ORDER BY 1"
    ).fetchall()
    objects = {b.name: b.download_as_bytes() for b in storage_client.list_blobs(bucket)}
    return dict(rows), objects


def test_loads_postgres_and_the_partitions_and_a_rerun_changes_nothing(
    run_dag, pg_conn, pg_schema, storage_client, gcs_bucket, chart_dir
):
    conf = {"year": 2020, "months": [10]}
    first = run_dag("green_taxi_etl", conf, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    source = read_with_pandas(GREEN_2020_10, parse_dates=["lpep_pickup_datetime"])
    kept = source[(source.passenger_count > 0) & (source.trip_distance > 0)]
    per_day = kept.lpep_pickup_datetime.dt.date.value_counts().to_dict()
    assert f"rows after the filter: {len(kept)}" in first.stdout + first.stderr
    assert f"date partitions written: {len(per_day)}" in first.stdout + first.stderr

    rows_by_day, objects = _state(pg_conn, pg_schema, storage_client, gcs_bucket)
    assert rows_by_day == per_day
    chart = "green_taxi_reports/green_taxi_trips_per_day_2020-10_2020-10.png"
    assert set(objects) == {chart} | {
        f"green_taxi/lpep_pickup_date={day}/green_tripdata_2020-10.parquet" for day in per_day
    }, "one file per day, the chart, and no staging file left behind"
    local_chart = chart_dir / "green_taxi_trips_per_day_2020-10_2020-10.png"
    assert objects[chart] == local_chart.read_bytes()
    assert objects[chart].startswith(b"\x89PNG\r\n\x1a\n")
    assert f"chart written to {local_chart} and gs://{gcs_bucket}/{chart}" in first.stdout + first.stderr
    for name, data in objects.items():
        if name == chart:
            continue
        day = name.split("/")[1].split("=")[1]
        table = pq.read_table(io.BytesIO(data))
        assert table.num_rows == per_day[next(d for d in per_day if str(d) == day)]
        assert "vendor_id" in table.column_names and "VendorID" not in table.column_names

    second = run_dag("green_taxi_etl", conf, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert _state(pg_conn, pg_schema, storage_client, gcs_bucket) == (rows_by_day, objects)


def test_an_unpublished_month_fails_and_leaves_the_table_as_it_was(
    run_dag, pg_conn, pg_schema, storage_client, gcs_bucket
):
    assert (
        run_dag(
            "green_taxi_etl", {"year": 2020, "months": [10]}, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket
        ).returncode
        == 0
    )
    before = _state(pg_conn, pg_schema, storage_client, gcs_bucket)

    failed = run_dag("green_taxi_etl", {"year": 2020, "months": [10, 11]}, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket)

    assert failed.returncode != 0
    assert "green_tripdata_2020-11.csv.gz is not published (HTTP 404)" in failed.stdout + failed.stderr
    assert _state(pg_conn, pg_schema, storage_client, gcs_bucket) == before
