"""``taxi_api_to_gcs`` run with ``airflow dags test`` against the GCS stand-in."""

import io
import json
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.source.families import schema_for
from local_stack import expected
from tests.samples import FHVHV_2024_01_PARQUET, GREEN_2020_10, YELLOW_2021_01

pytestmark = pytest.mark.integration


def objects(storage_client, bucket: str) -> dict[str, bytes]:
    return {blob.name: blob.download_as_bytes() for blob in storage_client.list_blobs(bucket)}


def parquet(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def run(run_dag, gcs_bucket, conf, **env):
    result = run_dag("taxi_api_to_gcs", conf, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket, **env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.parametrize(
    ("taxi", "month", "sample"), [("yellow", "2021-01", YELLOW_2021_01), ("green", "2020-10", GREEN_2020_10)]
)
def test_writes_the_month_its_daily_partitions_and_its_profile(
    run_dag, gcs_bucket, storage_client, taxi, month, sample
):
    run(run_dag, gcs_bucket, {"taxis": [taxi], "month": month})
    written = objects(storage_client, gcs_bucket)
    name = f"{taxi}_tripdata_{month}"

    monthly = parquet(written.pop(f"{taxi}_tripdata/{name}.parquet"))
    assert monthly.schema == schema_for(taxi).table_schema  # snake_case, declared types, source_month
    assert monthly.num_rows == expected.rows(sample)
    assert set(monthly.column("source_month").to_pylist()) == {date.fromisoformat(f"{month}-01")}

    profile = json.loads(written.pop(f"{taxi}_tripdata_profiles/{name}.json"))
    assert profile["rows_loaded"] == monthly.num_rows and profile["published_at"]
    assert "anomalies" in profile

    per_day = expected.rows_per_day(sample)
    assert set(written) == {f"{taxi}_tripdata_by_day/pickup_date={day}/{name}.parquet" for day in per_day}
    for object_name, data in written.items():
        day = date.fromisoformat(object_name.split("/")[1].split("=")[1])
        assert parquet(data).num_rows == per_day[day]


def test_every_family_of_a_month_has_its_own_files_of_one_schema_each(
    run_dag, gcs_bucket, storage_client, local_mirror
):
    folder, url = local_mirror
    for month in ("2020-11", "2020-12"):
        run(run_dag, gcs_bucket, {"month": month}, AIRFLOW_VAR_MIRROR_BASE_URL=url)
    written = objects(storage_client, gcs_bucket)
    for taxi in ("yellow", "green", "fhv"):
        november, december = (
            parquet(written[f"{taxi}_tripdata/{taxi}_tripdata_{m}.parquet"]) for m in ("2020-11", "2020-12")
        )
        assert november.schema == december.schema == schema_for(taxi).table_schema
        for table, month in ((november, "2020-11"), (december, "2020-12")):
            assert table.num_rows == expected.rows(expected.mirror_file(folder, taxi, month))
    assert not [name for name in written if name.startswith("_staging/")], (
        "the teardown removes the staging area"
    )


def test_a_rerun_replaces_the_month_s_objects_and_deletes_what_it_no_longer_writes(
    run_dag, gcs_bucket, storage_client
):
    conf = {"taxis": ["yellow"], "month": "2021-01"}
    run(run_dag, gcs_bucket, conf)
    first = objects(storage_client, gcs_bucket)
    # A day this month's rows do not have: as if an older run had rows picked up then.
    unwritten = max(expected.rows_per_day(YELLOW_2021_01)) + timedelta(days=1)
    stray = f"yellow_tripdata_by_day/pickup_date={unwritten.isoformat()}/yellow_tripdata_2021-01.parquet"
    assert stray not in first
    storage_client.bucket(gcs_bucket).blob(stray).upload_from_string(b"left over from an older run")

    run(run_dag, gcs_bucket, conf)

    second = objects(storage_client, gcs_bucket)
    assert second.keys() == first.keys(), "the rerun must delete what it no longer writes"
    for name in first:
        if name.endswith(".parquet"):
            assert parquet(second[name]).equals(parquet(first[name]))


def test_the_tlc_parquet_lands_in_the_same_layout_with_the_same_schema(run_dag, gcs_bucket, storage_client):
    tlc = {
        "AIRFLOW_VAR_TAXI_SOURCE": "tlc",
        "AIRFLOW_VAR_TAXI_FIRST_MONTH": "2024-01",
        "AIRFLOW_VAR_TAXI_LAST_MONTH": "2024-01",
    }
    run(run_dag, gcs_bucket, {"taxis": ["green"], "month": "2024-01"}, **tlc)
    monthly = parquet(objects(storage_client, gcs_bucket)["green_tripdata/green_tripdata_2024-01.parquet"])
    assert monthly.schema == schema_for("green").table_schema
    assert monthly.column("ehail_fee").null_count == monthly.num_rows  # empty, still a float column
    # The asset event BigQuery is scheduled on, naming what was published.
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        extras = session.scalars(
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "nyc_taxi_parquet")
        ).all()
    uri = f"gs://{gcs_bucket}/green_tripdata/green_tripdata_2024-01.parquet"
    published = {"taxi": "green", "month": "2024-01", "rows": monthly.num_rows, "location": uri, "uri": uri}
    assert published in extras


def test_the_high_volume_fhv_family_lands_in_its_own_files(run_dag, gcs_bucket, storage_client):
    tlc = {
        "AIRFLOW_VAR_TAXI_SOURCE": "tlc",
        "AIRFLOW_VAR_TAXI_FIRST_MONTH": "2024-01",
        "AIRFLOW_VAR_TAXI_LAST_MONTH": "2024-01",
    }
    run(run_dag, gcs_bucket, {"taxis": ["fhvhv"], "month": "2024-01"}, **tlc)
    monthly = parquet(objects(storage_client, gcs_bucket)["fhvhv_tripdata/fhvhv_tripdata_2024-01.parquet"])
    assert monthly.schema == schema_for("fhvhv").table_schema
    assert monthly.num_rows == expected.rows(FHVHV_2024_01_PARQUET)
    assert monthly.column("cbd_congestion_fee").null_count == monthly.num_rows  # a 2025 column: nulls
