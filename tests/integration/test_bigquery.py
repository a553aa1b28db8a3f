"""``include.destinations.bigquery`` against the BigQuery stand-in: month partitions replaced by load jobs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest
from google.api_core.exceptions import BadRequest

from include.destinations.bigquery import BigQuery
from tests.bigquery_inputs import rows, table_state, upload_parquet

pytestmark = pytest.mark.integration

COLUMNS = pa.schema(
    [
        ("trip_id", pa.int64()),
        ("pickup_datetime", pa.timestamp("us")),
        ("pu_location_id", pa.int64()),
        ("do_location_id", pa.int64()),
        ("fare", pa.float64()),
        ("source_month", pa.date32()),
    ]
)
TABLE = "trips"


@pytest.fixture
def bq(cloud_stack, bq_dataset) -> BigQuery:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    return BigQuery(BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False), bq_dataset)


def trips(month: date, count: int, first_id: int = 0, columns: pa.Schema = COLUMNS) -> pa.Table:
    """``count`` trips of ``month``, one every 7 hours 13 minutes from its first midnight."""
    start = datetime(month.year, month.month, 1)
    values = {
        "trip_id": list(range(first_id, first_id + count)),
        "pickup_datetime": [start + timedelta(minutes=433 * i) for i in range(count)],
        "pu_location_id": [i % 7 + 1 for i in range(count)],
        "do_location_id": [i % 5 + 1 for i in range(count)],
        "fare": [round(2.5 + i * 0.25, 2) for i in range(count)],
        "cbd_congestion_fee": [0.75] * count,
        "source_month": [month] * count,
    }
    return pa.table({name: values[name] for name in columns.names}, schema=columns)


def create(bq: BigQuery, columns: pa.Schema = COLUMNS) -> None:
    bq.create_table(
        TABLE, columns, month_partitioned_by="source_month", clustered_by=("pu_location_id", "do_location_id")
    )


def load(bq, storage_client, bucket, month: date, table: pa.Table, columns: pa.Schema = COLUMNS) -> None:
    uri = upload_parquet(storage_client, bucket, f"{TABLE}_{month:%Y-%m}_{table.num_rows}.parquet", table)
    bq.replace_month_partition(TABLE, columns, uri, month)


def month_state(bq: BigQuery, bigquery_client, month: date) -> tuple[int, int]:
    return table_state(bigquery_client, bq.ref(TABLE), f"source_month = DATE '{month.isoformat()}'")


OCTOBER, NOVEMBER = date(2020, 10, 1), date(2020, 11, 1)


def test_the_table_is_month_partitioned_clustered_and_keeps_times_as_datetime(bq, bigquery_client):
    create(bq)
    create(bq)  # a second create (another month's load) finds it and goes on

    table = bigquery_client.get_table(f"{bq.project}.{bq.dataset}.{TABLE}")
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("MONTH", "source_month")
    assert table.clustering_fields == ["pu_location_id", "do_location_id"]
    assert [(f.name, f.field_type) for f in table.schema] == [
        ("trip_id", "INT64"),
        ("pickup_datetime", "DATETIME"),
        ("pu_location_id", "INT64"),
        ("do_location_id", "INT64"),
        ("fare", "FLOAT64"),
        ("source_month", "DATE"),
    ]


def test_rerunning_a_month_replaces_exactly_that_month(bq, bigquery_client, storage_client, gcs_bucket):
    create(bq)
    load(bq, storage_client, gcs_bucket, OCTOBER, trips(OCTOBER, 100))
    load(bq, storage_client, gcs_bucket, NOVEMBER, trips(NOVEMBER, 90, first_id=1000))
    november = month_state(bq, bigquery_client, NOVEMBER)
    assert november[0] == 90

    rerun = trips(OCTOBER, 60, first_id=5000)
    load(bq, storage_client, gcs_bucket, OCTOBER, rerun)

    assert month_state(bq, bigquery_client, NOVEMBER) == november
    assert rows(
        bigquery_client,
        f"SELECT MIN(trip_id), MAX(trip_id), COUNT(*) FROM {bq.ref(TABLE)}"
        f" WHERE source_month = DATE '2020-10-01'",
    ) == [(5000, 5059, 60)]
    assert bq.count_month(TABLE, "source_month", OCTOBER) == 60


def test_loads_of_several_months_at_once_all_land(bq, bigquery_client, storage_client, gcs_bucket):
    create(bq)
    months = [date(2021, month, 1) for month in range(1, 7)]
    uris = {
        month: upload_parquet(storage_client, gcs_bucket, f"m{month:%Y%m}.parquet", trips(month, 50 + i))
        for i, month in enumerate(months)
    }

    with ThreadPoolExecutor(len(months)) as pool:
        loads = [pool.submit(bq.replace_month_partition, TABLE, COLUMNS, uris[m], m) for m in months]
        for finished in loads:
            finished.result()

    counts = rows(
        bigquery_client, f"SELECT source_month, COUNT(*) FROM {bq.ref(TABLE)} GROUP BY 1 ORDER BY 1"
    )
    assert counts == [(month, 50 + i) for i, month in enumerate(months)]


def test_times_keep_their_wall_clock_values(bq, bigquery_client, storage_client, gcs_bucket):
    create(bq)
    table = trips(NOVEMBER, 3)
    # 01:30 on 2020-11-01 happened twice in New York; DATETIME keeps it as written, with no offset.
    wall_clock = [
        datetime(2020, 11, 1, 1, 30),
        datetime(2020, 11, 1, 23, 59, 59, 999999),
        datetime(2020, 11, 30),
    ]
    table = table.set_column(1, "pickup_datetime", pa.array(wall_clock, pa.timestamp("us")))
    load(bq, storage_client, gcs_bucket, NOVEMBER, table)

    loaded = rows(bigquery_client, f"SELECT pickup_datetime FROM {bq.ref(TABLE)} ORDER BY 1")
    assert [value for (value,) in loaded] == wall_clock
    days = rows(
        bigquery_client,
        f"SELECT DATE(pickup_datetime) AS d, COUNT(*) FROM {bq.ref(TABLE)} GROUP BY d ORDER BY d",
    )
    assert days == [(date(2020, 11, 1), 2), (date(2020, 11, 30), 1)]


def test_a_declared_column_the_table_lacks_is_added_on_the_next_load(
    bq, bigquery_client, storage_client, gcs_bucket
):
    create(bq)
    load(bq, storage_client, gcs_bucket, OCTOBER, trips(OCTOBER, 40))
    grown = COLUMNS.insert(5, pa.field("cbd_congestion_fee", pa.float64()))

    load(bq, storage_client, gcs_bucket, NOVEMBER, trips(NOVEMBER, 30, columns=grown), columns=grown)

    table = bigquery_client.get_table(f"{bq.project}.{bq.dataset}.{TABLE}")
    assert [f.name for f in table.schema] == [*COLUMNS.names, "cbd_congestion_fee"]
    assert table.schema[-1].field_type == "FLOAT64"
    fees = (
        "SELECT source_month, COUNT(*), COUNT(cbd_congestion_fee), SUM(cbd_congestion_fee)"
        f" FROM {bq.ref(TABLE)} GROUP BY 1 ORDER BY 1"
    )
    assert rows(bigquery_client, fees) == [
        (OCTOBER, 40, 0, None),
        (NOVEMBER, 30, 30, 22.5),
    ]


def test_a_file_with_rows_of_another_month_fails_and_leaves_the_partition(
    bq, bigquery_client, storage_client, gcs_bucket
):
    create(bq)
    load(bq, storage_client, gcs_bucket, OCTOBER, trips(OCTOBER, 25))
    before = month_state(bq, bigquery_client, OCTOBER)

    mixed = pa.concat_tables([trips(OCTOBER, 10, first_id=900), trips(NOVEMBER, 1, first_id=999)])
    with pytest.raises(BadRequest, match="different partitions"):
        load(bq, storage_client, gcs_bucket, OCTOBER, mixed)

    assert month_state(bq, bigquery_client, OCTOBER) == before
    assert bq.count(TABLE) == 25


def test_a_table_partitioned_otherwise_is_refused_naming_its_partitioning(bq, bigquery_client):
    from google.cloud import bigquery

    legacy = bigquery.Table(
        f"{bq.project}.{bq.dataset}.{TABLE}", schema=[bigquery.SchemaField("source_month", "DATE")]
    )
    legacy.time_partitioning = bigquery.TimePartitioning(type_="DAY", field="source_month")
    bigquery_client.create_table(legacy)

    with pytest.raises(
        ValueError, match=r"partitioning \('DAY', 'source_month'\), not MONTH on source_month"
    ):
        create(bq)


def test_a_declared_type_other_than_the_tables_fails_naming_both(
    bq, bigquery_client, storage_client, gcs_bucket
):
    from google.cloud import bigquery

    # As the previous version of the flow made it: times as TIMESTAMP (UTC).
    columns = [("trip_id", "INT64"), ("pickup_datetime", "TIMESTAMP"), ("source_month", "DATE")]
    legacy = bigquery.Table(
        f"{bq.project}.{bq.dataset}.{TABLE}", schema=[bigquery.SchemaField(*column) for column in columns]
    )
    legacy.time_partitioning = bigquery.TimePartitioning(type_="MONTH", field="source_month")
    bigquery_client.create_table(legacy)

    with pytest.raises(ValueError, match="pickup_datetime is TIMESTAMP, declared DATETIME"):
        load(bq, storage_client, gcs_bucket, OCTOBER, trips(OCTOBER, 5))
    assert bq.count(TABLE) == 0


@pytest.mark.parametrize("name", ["trips; DROP TABLE x", "trips$202010", "`trips`", ""])
def test_a_crafted_table_name_is_rejected_before_any_job(bq, name):
    with pytest.raises(ValueError, match="not a valid BigQuery name"):
        bq.replace_month_partition(name, COLUMNS, "gs://bucket/object.parquet", OCTOBER)
