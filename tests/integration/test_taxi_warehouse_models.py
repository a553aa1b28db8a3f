"""The dbt models of ``taxi_warehouse_models``, run through Airflow and Cosmos on the real Postgres.

Two months of every family are loaded by ``taxi_api_to_postgres`` from the local stand-in (the
samples and the months constructed from them), then the models are built with ``airflow dags
test``. What they must hold is computed here with pandas from the files served, by the
documented rules alone: the monthly cleaning rules (include/source/transform.py: a pickup time, not
zero passengers), both zones known (borough not Unknown), and for the revenue mart trips whose
pickup falls in their file's month. Every row is compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pandas as pd
import pytest

from include.source.families import TAXIS
from include.source.sources import DEFAULT_SOURCE, SOURCES
from local_stack import expected
from tests.conftest import dag_environment, dags_test

pytestmark = pytest.mark.integration

MONTHS = ("2020-10", "2021-01")
ZONES = Path(__file__).resolve().parents[2] / "data" / "tlc" / "misc" / "taxi_zone_lookup.csv"
# The TLC's spellings in the CSV files → the models' vocabulary.
RENAMED = {
    "VendorID": "vendor_id",
    "tpep_pickup_datetime": "pickup_datetime",
    "tpep_dropoff_datetime": "dropoff_datetime",
    "lpep_pickup_datetime": "pickup_datetime",
    "lpep_dropoff_datetime": "dropoff_datetime",
    "PULocationID": "pickup_location_id",
    "DOLocationID": "dropoff_location_id",
}
MONEY = (
    "fare_amount",
    "extra",
    "mta_tax",
    "tip_amount",
    "tolls_amount",
    "improvement_surcharge",
    "congestion_surcharge",
    "total_amount",
)
FACT_COLUMNS = (
    "service_type",
    "source_month",
    "vendor_id",
    "pickup_datetime",
    "dropoff_datetime",
    "pickup_location_id",
    "pickup_borough",
    "pickup_zone",
    "dropoff_location_id",
    "dropoff_borough",
    "dropoff_zone",
    "passenger_count",
    "trip_distance",
    "payment_type",
    *MONEY,
)
TEXT_COLUMNS = ("service_type", "pickup_borough", "pickup_zone", "dropoff_borough", "dropoff_zone")
TIME_COLUMNS = ("source_month", "pickup_datetime", "dropoff_datetime")
MART_KEY = ("pickup_location_id", "revenue_month", "service_type")


class Warehouse:
    """A warehouse schema of its own, loaded once for the module, and how to run DAGs on it."""

    def __init__(self, postgres, mirror_url: str, folder: Path, chart_dir: Path):
        self.schema = f"test_{uuid.uuid4().hex[:10]}"
        self.folder = folder
        self.env = {**os.environ, **dag_environment(postgres, mirror_url, self.schema, chart_dir)}

    def run(self, dag_id: str, conf: dict) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*dags_test(dag_id, self.env), "-c", json.dumps(conf)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        return result


@pytest.fixture(scope="module")
def warehouse(airflow_db, postgres, local_mirror, tmp_path_factory):
    import psycopg

    folder, url = local_mirror
    loaded = Warehouse(postgres, url, folder, tmp_path_factory.mktemp("charts"))
    for month in MONTHS:
        loaded.run("taxi_api_to_postgres", {"month": month})
    loaded.run("taxi_warehouse_models", {"months": []})  # every month
    yield loaded
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {loaded.schema} CASCADE")


def query(conn, sql: str, params: tuple = ()) -> pd.DataFrame:
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return pd.DataFrame(cursor.fetchall(), columns=[column.name for column in cursor.description])


def zones() -> pd.DataFrame:
    lookup = pd.read_csv(ZONES, keep_default_na=False)  # the zone "NA" is a name, not a missing value
    return lookup.rename(columns={"LocationID": "location_id", "Borough": "borough", "Zone": "zone"})


def expected_trips(folder: Path, taxi: str, month: str) -> pd.DataFrame:
    """fact_trips' rows of one family and month: the kept rows of the file served, both zones known."""
    trips = expected.kept(expected.mirror_file(folder, taxi, month)).rename(columns=RENAMED)
    trips["service_type"] = taxi
    trips["source_month"] = pd.Timestamp(f"{month}-01")
    known = zones()[zones().borough != "Unknown"]
    for end in ("pickup", "dropoff"):
        named = known.rename(
            columns={"location_id": f"{end}_location_id", "borough": f"{end}_borough", "zone": f"{end}_zone"}
        )[[f"{end}_location_id", f"{end}_borough", f"{end}_zone"]]
        trips = trips.merge(named, on=f"{end}_location_id", how="inner")
    return trips[list(FACT_COLUMNS)]


def expected_fact(folder: Path, months=MONTHS) -> pd.DataFrame:
    return pd.concat(
        [expected_trips(folder, taxi, month) for taxi in ("yellow", "green") for month in months],
        ignore_index=True,
    )


def expected_mart(fact: pd.DataFrame) -> pd.DataFrame:
    """dm_monthly_zone_revenue from fact_trips' expected rows: trips whose pickup is in their file's month."""
    in_month = fact[fact.pickup_datetime.dt.to_period("M").dt.start_time == fact.source_month]
    grouped = in_month.groupby(["pickup_location_id", "source_month", "service_type"])
    mart = grouped.agg(
        revenue_zone=("pickup_zone", "first"),
        trips=("pickup_zone", "size"),
        avg_monthly_passenger_count=("passenger_count", "mean"),
        avg_monthly_trip_distance=("trip_distance", "mean"),
    )
    for column in MONEY:  # SQL's SUM of only NULLs is NULL: min_count=1 says the same
        name = "fare" if column == "fare_amount" else column  # the course's name
        mart[f"revenue_monthly_{name}"] = grouped[column].sum(min_count=1)
    return mart.reset_index().rename(columns={"source_month": "revenue_month"})


def normalised(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.DataFrame:
    """Both sides in one form: numbers as floats (NULL as NaN), times as timestamps, sorted by ``key``."""
    frame = frame.copy()
    for column in frame.columns:
        if column in TIME_COLUMNS or column == "revenue_month":
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
        elif column in TEXT_COLUMNS or column == "revenue_zone":
            frame[column] = frame[column].astype(str)
        else:
            frame[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
    return frame.sort_values(list(key)).reset_index(drop=True)


def assert_same_rows(actual: pd.DataFrame, wanted: pd.DataFrame, key: tuple[str, ...]) -> None:
    assert len(actual) == len(wanted)
    pd.testing.assert_frame_equal(
        normalised(actual[list(wanted.columns)], key), normalised(wanted, key), check_exact=False, rtol=1e-9
    )


def test_fact_trips_has_every_known_zone_trip_of_the_files_and_nothing_else(warehouse, pg_conn):
    fact = query(pg_conn, f"SELECT {', '.join(FACT_COLUMNS)} FROM {warehouse.schema}.fact_trips")
    wanted = expected_fact(warehouse.folder)
    assert set(wanted.service_type) == {"yellow", "green"} and len(wanted) > 100_000
    assert_same_rows(fact, wanted, FACT_COLUMNS)


def test_the_monthly_zone_revenue_matches_pandas_on_every_row(warehouse, pg_conn):
    mart = query(pg_conn, f"SELECT * FROM {warehouse.schema}.dm_monthly_zone_revenue")
    wanted = expected_mart(expected_fact(warehouse.folder))
    assert len(wanted) > 100
    assert_same_rows(mart, wanted, MART_KEY)


def test_staging_keeps_every_loaded_row_with_a_unique_trip_id(warehouse, pg_conn):
    loaded = [taxi for taxi in TAXIS if taxi in SOURCES[DEFAULT_SOURCE].first_months]
    assert loaded == ["yellow", "green", "fhv"]
    for taxi in loaded:
        [(rows, trip_ids, service_types)] = pg_conn.execute(
            f"SELECT count(*), count(DISTINCT trip_id), array_agg(DISTINCT service_type)"
            f" FROM {warehouse.schema}.stg_{taxi}_tripdata"
        ).fetchall()
        files = [expected.mirror_file(warehouse.folder, taxi, month) for month in MONTHS]
        assert rows == trip_ids == sum(expected.rows(path) for path in files)
        assert service_types == [taxi]


def test_a_family_the_source_does_not_publish_has_an_empty_staging_model(warehouse, pg_conn):
    # The course's CSV mirror has no fhvhv: no fhvhv_tripdata was loaded, yet the build succeeded.
    [(table,)] = pg_conn.execute("SELECT to_regclass(%s)", (f"{warehouse.schema}.fhvhv_tripdata",)).fetchall()
    assert table is None
    staged = query(pg_conn, f"SELECT * FROM {warehouse.schema}.stg_fhvhv_tripdata")
    assert staged.empty and {"trip_id", "service_type", "source_month", "pickup_datetime"} <= set(
        staged.columns
    )


def test_dim_zones_is_the_tlc_lookup(warehouse, pg_conn):
    dim = query(pg_conn, f"SELECT location_id, borough, zone FROM {warehouse.schema}.dim_zones")
    wanted = zones()[["location_id", "borough", "zone"]]
    pd.testing.assert_frame_equal(
        dim.sort_values("location_id").reset_index(drop=True),
        wanted.sort_values("location_id").reset_index(drop=True),
        check_dtype=False,
    )


def test_each_published_month_is_an_event_the_models_build_that_month_from(warehouse):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from include.flows.taxi_warehouse_models import months_to_build

    with create_session() as session:
        extras = session.scalars(
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "nyc_taxi_postgres_month")
        ).all()
    published = [{"taxi": taxi, "month": month} for taxi in ("yellow", "green", "fhv") for month in MONTHS]
    # Each event's extra is what the publish returned: the family and month, its rows and location.
    assert {(extra["taxi"], extra["month"]) for extra in extras} >= {
        (e["taxi"], e["month"]) for e in published
    }
    assert all(extra["rows"] > 0 and extra["location"].endswith("_tripdata") for extra in extras)
    assert months_to_build(published, {}) == ["2020-10-01", "2021-01-01"]


def row_versions(conn, schema: str, table: str, month_column: str) -> dict:
    """Per month, the rows and the transactions that wrote them (Postgres' xmin): a row rewritten by
    a rebuild, even with the same values, has a new xmin."""
    found = conn.execute(
        f"SELECT {month_column}, count(*), array_agg(DISTINCT xmin::text ORDER BY xmin::text)"
        f" FROM {schema}.{table} GROUP BY {month_column}"
    ).fetchall()
    return {month: (rows, writers) for month, rows, writers in found}


# Last: it changes the module's warehouse.
def test_a_month_published_again_rebuilds_that_month_only(warehouse, pg_conn):
    before = {
        table: row_versions(pg_conn, warehouse.schema, table, column)
        for table, column in (("fact_trips", "source_month"), ("dm_monthly_zone_revenue", "revenue_month"))
    }
    # October's green trips republished without those of their busiest pickup zone, and with every
    # trip of their quietest zone twice: exact duplicate rows, as real TLC files have.
    zones_by_trips = pg_conn.execute(
        f"SELECT pickup_location_id FROM {warehouse.schema}.fact_trips"
        " WHERE service_type = 'green' AND source_month = '2020-10-01'"
        " GROUP BY 1 HAVING count(*) > 1 ORDER BY count(*) DESC, 1"
    ).fetchall()
    (busiest,), (quietest,) = zones_by_trips[0], zones_by_trips[-1]
    green = f"{warehouse.schema}.green_tripdata"
    pg_conn.execute(
        f"DELETE FROM {green} WHERE source_month = '2020-10-01' AND pu_location_id = %s", (busiest,)
    )
    pg_conn.execute(
        f"INSERT INTO {green} SELECT * FROM {green}"
        " WHERE source_month = '2020-10-01' AND pu_location_id = %s",
        (quietest,),
    )
    warehouse.run("taxi_warehouse_models", {"months": ["2020-10"]})

    october, january = pd.Timestamp("2020-10-01").date(), pd.Timestamp("2021-01-01").date()
    for table, versions in before.items():
        after = row_versions(
            pg_conn, warehouse.schema, table, "source_month" if table == "fact_trips" else "revenue_month"
        )
        assert after[january] == versions[january], f"{table}: January was rewritten"
        assert set(after[october][1]).isdisjoint(versions[october][1]), f"{table}: October was not rebuilt"
    wanted = expected_fact(warehouse.folder)
    green_october = (wanted.service_type == "green") & (wanted.source_month == pd.Timestamp("2020-10-01"))
    wanted = pd.concat(
        [
            wanted[~(green_october & (wanted.pickup_location_id == busiest))],
            wanted[green_october & (wanted.pickup_location_id == quietest)],
        ]
    )
    [(rows, trip_ids)] = pg_conn.execute(
        f"SELECT count(*), count(DISTINCT trip_id) FROM {warehouse.schema}.fact_trips"
    ).fetchall()
    assert rows == trip_ids == len(wanted)
    fact = query(pg_conn, f"SELECT {', '.join(FACT_COLUMNS)} FROM {warehouse.schema}.fact_trips")
    assert_same_rows(fact, wanted, FACT_COLUMNS)
    mart = query(pg_conn, f"SELECT * FROM {warehouse.schema}.dm_monthly_zone_revenue")
    assert_same_rows(mart, expected_mart(wanted), MART_KEY)
