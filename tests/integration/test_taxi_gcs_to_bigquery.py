"""``taxi_gcs_to_bigquery`` against the GCS and BigQuery stand-ins.

Its input is built here as ``taxi_api_to_gcs`` publishes it (tests/bigquery_inputs.py), from the
real sample files, so these tests check this flow alone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from include.destinations.bigquery import BigQuery
from include.errors import InvalidParamsError
from include.flows.taxi_gcs_to_bigquery import (
    build_daily_summary,
    load_month,
    load_zone_lookup,
    months_to_load,
    parquet_uri,
    publish_zone_lookup,
    table_columns,
)
from include.source.families import schema_for
from include.source.months import Month
from include.source.sources import SOURCES
from local_stack.tlc_server import SAMPLES
from tests.bigquery_inputs import rows, sample_as_published, table_state, upload_parquet
from tests.samples import GREEN_2020_10, YELLOW_2021_01, read_with_pandas

pytestmark = pytest.mark.integration

SAMPLE_MONTHS = {"yellow": (Month(2021, 1), YELLOW_2021_01), "green": (Month(2020, 10), GREEN_2020_10)}


@pytest.fixture
def bq(cloud_stack, bq_dataset) -> BigQuery:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    return BigQuery(BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False), bq_dataset)


def published(taxi: str, month: Month, **options) -> pa.Table:
    """A month of the sample as the GCS flow publishes it: every row has a pickup time."""
    sample = SAMPLE_MONTHS[taxi][1]
    table = sample_as_published(sample, table_columns(schema_for(taxi)), month.first_day, **options)
    return table.filter(pc.is_valid(table.column(schema_for(taxi).pickup_column)))


def publish(storage_client, bucket: str, taxi: str, month: Month, table: pa.Table) -> str:
    return upload_parquet(storage_client, bucket, f"{taxi}_tripdata/{taxi}_tripdata_{month}.parquet", table)


def _run(run_dag, conf, gcs_bucket, bq_dataset):
    result = run_dag(
        "taxi_gcs_to_bigquery", conf, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket, AIRFLOW_VAR_BQ_DATASET=bq_dataset
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def expected_summary(trips: pd.DataFrame, pickup: str) -> pd.DataFrame:
    """Trips, revenue and mean distance per pickup day and borough, computed with pandas."""
    zones = read_with_pandas(SAMPLES / "misc" / "taxi_zone_lookup.csv")
    joined = trips.merge(zones, how="left", left_on="pu_location_id", right_on="LocationID")
    joined["pickup_day"] = joined[pickup].dt.date
    joined["pickup_borough"] = joined.Borough.fillna("Unknown")
    return joined.groupby(["pickup_day", "pickup_borough"]).agg(
        trips=(pickup, "size"),
        revenue=("total_amount", "sum"),
        avg_trip_distance=("trip_distance", "mean"),
    )


def actual_summary(client, table: str) -> pd.DataFrame:
    columns = ["pickup_day", "pickup_borough", "trips", "revenue", "avg_trip_distance"]
    found = rows(client, f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1, 2")
    return pd.DataFrame(found, columns=columns).set_index(columns[:2])


@pytest.mark.parametrize("taxi", ["yellow", "green"])
def test_a_run_loads_the_month_as_wall_clock_datetimes_with_a_summary_equal_to_pandas(
    run_dag, gcs_bucket, bq_dataset, bigquery_client, storage_client, taxi
):
    month, _ = SAMPLE_MONTHS[taxi]
    trips = published(taxi, month)
    publish(storage_client, gcs_bucket, taxi, month, trips)
    conf = {"taxis": [taxi], "month": str(month)}

    _run(run_dag, conf, gcs_bucket, bq_dataset)

    table_id = f"local-project.{bq_dataset}.{taxi}_tripdata"
    table = bigquery_client.get_table(table_id)
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("MONTH", "source_month")
    assert table.clustering_fields == ["pu_location_id", "do_location_id"]
    assert [f.name for f in table.schema] == table_columns(schema_for(taxi)).names
    pickup = schema_for(taxi).pickup_column
    times = {f.name: f.field_type for f in table.schema if f.name.endswith("_datetime")}
    assert times == {pickup: "DATETIME", pickup.replace("pickup", "dropoff"): "DATETIME"}

    loaded = rows(bigquery_client, f"SELECT {pickup} FROM `{table_id}` ORDER BY 1")
    assert [value for (value,) in loaded] == sorted(trips.column(pickup).to_pylist())

    expected = expected_summary(trips.to_pandas(), pickup)
    actual = actual_summary(bigquery_client, f"`local-project.{bq_dataset}.{taxi}_daily_summary`")
    assert list(actual.index) == list(expected.index)
    assert actual.trips.tolist() == expected.trips.tolist()
    assert actual.revenue.tolist() == pytest.approx(expected.revenue.tolist())
    assert actual.avg_trip_distance.tolist() == pytest.approx(expected.avg_trip_distance.tolist())

    first = table_state(bigquery_client, f"`{table_id}`")
    assert first[0] == trips.num_rows
    _run(run_dag, conf, gcs_bucket, bq_dataset)
    assert table_state(bigquery_client, f"`{table_id}`") == first
    tables = {t.table_id for t in bigquery_client.list_tables(bq_dataset)}
    assert tables == {f"{taxi}_tripdata", f"{taxi}_daily_summary", "taxi_zone_lookup"}


def test_months_loaded_at_once_all_land_and_a_rerun_replaces_only_its_month(
    bq, bigquery_client, storage_client, gcs_bucket
):
    # October 2020 is real; November and December are its rows moved on by 31 and 61 days.
    months = {
        Month(2020, 10): published("green", Month(2020, 10), rows=20_000),
        Month(2020, 11): published("green", Month(2020, 11), rows=15_000, shift_days=31),
        Month(2020, 12): published("green", Month(2020, 12), rows=10_000, shift_days=61),
    }
    uris = {
        month: publish(storage_client, gcs_bucket, "green", month, table) for month, table in months.items()
    }

    with ThreadPoolExecutor(len(months)) as pool:
        loads = {month: pool.submit(load_month, bq, "green", month, uris[month]) for month in months}
        assert {month: load.result() for month, load in loads.items()} == {
            month: table.num_rows for month, table in months.items()
        }

    table = bq.ref("green_tripdata")

    def state(month: Month) -> tuple[int, int]:
        return table_state(bigquery_client, table, f"source_month = DATE '{month.first_day}'")

    others = {month: state(month) for month in (Month(2020, 11), Month(2020, 12))}
    rerun = published("green", Month(2020, 10), rows=5_000)
    uri = publish(storage_client, gcs_bucket, "green", Month(2020, 10), rerun)
    assert load_month(bq, "green", Month(2020, 10), uri) == 5_000
    assert {month: state(month) for month in others} == others
    assert bq.count("green_tripdata") == 5_000 + 15_000 + 10_000


def test_a_table_made_before_the_newest_declared_column_gets_it_on_the_next_load(
    bq, bigquery_client, storage_client, gcs_bucket
):
    columns = table_columns(schema_for("green"))
    newest = columns.names[-2]  # the last declared column (cbd_congestion_fee), before source_month
    older = columns.remove(columns.get_field_index(newest))
    bq.create_table("green_tripdata", older, month_partitioned_by="source_month")
    september = published("green", Month(2020, 9), rows=3_000, shift_days=-30)
    bq.replace_month_partition(
        "green_tripdata",
        older,
        publish(storage_client, gcs_bucket, "green", Month(2020, 9), september.drop_columns([newest])),
        Month(2020, 9).first_day,
    )

    october = published("green", Month(2020, 10), rows=2_000)
    load_month(
        bq, "green", Month(2020, 10), publish(storage_client, gcs_bucket, "green", Month(2020, 10), october)
    )

    table = bigquery_client.get_table(f"{bq.project}.{bq.dataset}.green_tripdata")
    assert [f.name for f in table.schema] == [*older.names, newest]
    counts = (
        f"SELECT source_month, COUNT(*), COUNT({newest}) FROM {bq.ref('green_tripdata')}"
        " GROUP BY 1 ORDER BY 1"
    )
    assert rows(bigquery_client, counts) == [
        (Month(2020, 9).first_day, 3_000, 0),
        (Month(2020, 10).first_day, 2_000, october.column(newest).drop_null().length()),
    ]


def test_a_family_without_fares_gets_trips_per_day_and_null_revenue(
    bq, bigquery_client, storage_client, gcs_bucket, tlc_base_url
):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    # Constructed FHV-shaped rows (no real FHV file is on this machine); FHV pickups often lack a zone.
    fhv = pa.schema(
        [
            ("dispatching_base_num", pa.string()),
            ("pickup_datetime", pa.timestamp("us")),
            ("dropoff_datetime", pa.timestamp("us")),
            ("pu_location_id", pa.int64()),
            ("do_location_id", pa.int64()),
            ("sr_flag", pa.int64()),
            ("affiliated_base_number", pa.string()),
            ("source_month", pa.date32()),
        ]
    )
    pickups = [datetime(2019, 1, 1, 0, 5), datetime(2019, 1, 1, 23, 50), datetime(2019, 1, 2, 8, 15)]
    trips = pa.table(
        {
            "dispatching_base_num": ["B00013", "B00254", "B02510"],
            "pickup_datetime": pickups,
            "dropoff_datetime": [p.replace(hour=min(p.hour + 1, 23)) for p in pickups],
            "pu_location_id": [132, None, 132],
            "do_location_id": [265, 1, None],
            "sr_flag": [None, 1, None],
            "affiliated_base_number": ["B00013", "B02356", None],
            "source_month": [date(2019, 1, 1)] * 3,
        },
        schema=fhv,
    )
    bq.create_table("fhv_tripdata", fhv, month_partitioned_by="source_month")
    uri = upload_parquet(storage_client, gcs_bucket, "fhv_tripdata/fhv_tripdata_2019-01.parquet", trips)
    bq.replace_month_partition("fhv_tripdata", fhv, uri, Month(2019, 1).first_day)
    load_zone_lookup(
        bq,
        publish_zone_lookup(
            f"{tlc_base_url}/misc/taxi_zone_lookup.csv", GCSHook("google_cloud_default"), gcs_bucket
        ),
    )

    assert build_daily_summary(bq, "fhv_tripdata", "fhv_daily_summary", fhv, "pickup_datetime") == 3

    summary = rows(bigquery_client, f"SELECT * FROM {bq.ref('fhv_daily_summary')} ORDER BY 1, 2")
    assert summary == [
        (date(2019, 1, 1), "Queens", 1, None, None),
        (date(2019, 1, 1), "Unknown", 1, None, None),
        (date(2019, 1, 2), "Queens", 1, None, None),
    ]


def test_months_to_load_come_from_the_asset_events_once_each_latest_uri_first():
    events = [
        {"taxi": "green", "month": "2020-10", "uri": "gs://b/green_tripdata/old.parquet", "rows": 1},
        {"taxi": "yellow", "month": "2021-01", "uri": "gs://b/yellow_tripdata/y.parquet", "rows": 2},
        {"taxi": "green", "month": "2020-10", "uri": "gs://b/green_tripdata/new.parquet", "rows": 3},
        {"taxi": "green", "month": "2020-09"},
    ]

    assert months_to_load(events, {"taxi": "yellow", "month": "2019-01"}, "bucket") == [
        {
            "taxi": "green",
            "month": "2020-09",
            "uri": "gs://bucket/green_tripdata/green_tripdata_2020-09.parquet",
        },
        {"taxi": "green", "month": "2020-10", "uri": "gs://b/green_tripdata/new.parquet"},
        {"taxi": "yellow", "month": "2021-01", "uri": "gs://b/yellow_tripdata/y.parquet"},
    ]


def test_a_manual_run_loads_its_params_month_from_where_the_gcs_flow_writes_it():
    assert months_to_load([], {"taxis": ["yellow"], "month": "2021-01"}, "nyc") == [
        {"taxi": "yellow", "month": "2021-01", "uri": parquet_uri("nyc", "yellow", Month(2021, 1))}
    ]
    assert (
        parquet_uri("nyc", "yellow", Month(2021, 1))
        == "gs://nyc/yellow_tripdata/yellow_tripdata_2021-01.parquet"
    )
    # Every family by default, of those the source publishes for the month (the mirror: no fhvhv).
    mirror = SOURCES["mirror"]

    def on_the_mirror(taxi, month):
        return mirror.has(taxi, month, date(2026, 1, 1))

    loaded = months_to_load([], {"month": "2021-01"}, "nyc", on_the_mirror)
    assert [month["taxi"] for month in loaded] == ["fhv", "green", "yellow"]
    with pytest.raises(InvalidParamsError, match="the source publishes none of them for 2021-01"):
        months_to_load([], {"taxis": ["fhvhv"], "month": "2021-01"}, "nyc", on_the_mirror)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"taxi": "blue", "month": "2021-01"}, "taxi 'blue' is not supported"),
        ({"taxi": "yellow", "month": "2021-13"}, "month '2021-13' is not a month"),
        ({"taxi": "yellow", "month": "2021-01", "uri": "/etc/passwd"}, "not a gs://"),
    ],
)
def test_an_asset_event_naming_something_else_fails_before_any_load(event, message):
    with pytest.raises(ValueError, match=message):
        months_to_load([event], {}, "bucket")


def test_a_manual_run_without_a_month_fails_naming_the_param(run_dag, gcs_bucket, bq_dataset):
    result = run_dag(
        "taxi_gcs_to_bigquery",
        {"taxis": ["yellow"]},
        AIRFLOW_VAR_GCS_BUCKET=gcs_bucket,
        AIRFLOW_VAR_BQ_DATASET=bq_dataset,
    )
    assert result.returncode != 0
    assert "a manual run needs the 'month' param" in result.stdout + result.stderr
