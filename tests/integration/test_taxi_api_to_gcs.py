"""``taxi_api_to_gcs`` run with ``airflow dags test`` against the GCS stand-in."""

import io
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.schema import schema_for
from local_stack.tlc_server import serve_in_thread
from tests.samples import GREEN_2020_10, YELLOW_2021_01, read_with_pandas, two_month_mirror

pytestmark = pytest.mark.integration


def _objects(storage_client, bucket: str) -> dict[str, bytes]:
    return {blob.name: blob.download_as_bytes() for blob in storage_client.list_blobs(bucket)}


def _table(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def _run(run_dag, gcs_bucket, taxi, month, **env):
    result = run_dag(
        "taxi_api_to_gcs", {"taxi": taxi, "month": month}, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket, **env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize(
    ("taxi", "month", "sample"), [("yellow", "2021-01", YELLOW_2021_01), ("green", "2020-10", GREEN_2020_10)]
)
def test_writes_the_month_and_its_daily_partitions(run_dag, gcs_bucket, storage_client, taxi, month, sample):
    _run(run_dag, gcs_bucket, taxi, month)

    objects = _objects(storage_client, gcs_bucket)
    source = read_with_pandas(sample, parse_dates=[schema_for(taxi).pickup_column])
    kept = source[source.passenger_count != 0]
    file_name = f"{taxi}_tripdata_{month}.parquet"

    monthly = _table(objects.pop(f"{taxi}/{file_name}"))
    assert monthly.schema == schema_for(taxi).arrow_schema
    assert monthly.num_rows == len(kept)

    expected_days = kept[schema_for(taxi).pickup_column].dt.date.value_counts().to_dict()
    partitions = {name: _table(data) for name, data in objects.items()}
    assert {name.split("/")[1] for name in partitions} == {f"pickup_date={day}" for day in expected_days}
    for name, table in partitions.items():
        prefix, day, file = name.split("/")
        assert (prefix, file) == (f"{taxi}_trips", file_name)
        assert table.num_rows == expected_days[date.fromisoformat(day.split("=")[1])]


def test_two_months_have_identical_schemas(run_dag, gcs_bucket, storage_client, tmp_path):
    server, base_url = serve_in_thread(two_month_mirror(tmp_path))
    try:
        for month in ("2020-12", "2021-01"):
            _run(run_dag, gcs_bucket, "yellow", month, AIRFLOW_VAR_TLC_BASE_URL=base_url)
    finally:
        server.shutdown()
    objects = _objects(storage_client, gcs_bucket)
    december, january = (
        _table(objects[f"yellow/yellow_tripdata_{m}.parquet"]) for m in ("2020-12", "2021-01")
    )
    assert december.schema == january.schema == schema_for("yellow").arrow_schema
    assert december.num_rows == january.num_rows > 0


def test_a_rerun_replaces_the_months_objects(run_dag, gcs_bucket, storage_client):
    _run(run_dag, gcs_bucket, "yellow", "2021-01")
    first = _objects(storage_client, gcs_bucket)
    stray = "yellow_trips/pickup_date=2021-01-30/yellow_tripdata_2021-01.parquet"
    storage_client.bucket(gcs_bucket).blob(stray).upload_from_string(b"left over from an older run")

    _run(run_dag, gcs_bucket, "yellow", "2021-01")

    second = _objects(storage_client, gcs_bucket)
    assert second.keys() == first.keys(), "the rerun must delete what it no longer writes"
    for name in first:
        assert _table(second[name]).equals(_table(first[name]))


def test_green_and_yellow_files_keep_their_declared_types_when_columns_are_empty(
    run_dag, gcs_bucket, storage_client
):
    _run(run_dag, gcs_bucket, "green", "2020-10")
    monthly = _table(_objects(storage_client, gcs_bucket)["green/green_tripdata_2020-10.parquet"])
    assert monthly.schema.field("ehail_fee").type == pa.float64()
    assert monthly.column("ehail_fee").null_count == monthly.num_rows
    assert monthly.schema.field("lpep_pickup_datetime").type == pa.timestamp("us")
