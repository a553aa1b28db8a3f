"""The monthly and daily DAGs as a scheduled system: a catch-up, backfills, reprocessing, overlaps.

One Airflow runs the whole module against the local mirror (every family, 2020-10 to 2021-01,
``local_stack.mirror``), with the schedules bounded to two of its months, 2020-11 and 2020-12, by
``taxi_first_month`` / ``taxi_last_month``: the mirror's other months exist, and nothing may load
them. The tests go on from each other, like an operator's day:

1. ``taxi_api_to_postgres``, unpaused, catches up on exactly the months of its schedule;
2. ``airflow backfill create --reprocess-behavior completed`` runs them again and changes nothing,
   while a second backfill of the same months is refused and a manual run of one of them runs
   alongside the backfill's;
3. a backfill created through the REST API over a wider range writes the schedule's months to
   GCS, and the asset-triggered ``taxi_gcs_to_bigquery`` loads them, several months at once;
4. a reprocessing backfill of the GCS flow changes nothing in GCS or BigQuery;
5. the daily export's backfill of a month exports each of its days.

What landed is compared with what ``local_stack/expected.py`` computes with pandas from the files served.
"""

from __future__ import annotations

import io
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest
from psycopg import sql

from include.source.months import Month
from local_stack import expected
from local_stack.report import month_row_counts
from local_stack.scheduler_api import AirflowApiError
from local_stack.stack import LOCAL_PROJECT
from tests.conftest import dag_environment

pytestmark = pytest.mark.scheduler

TAXIS = ("yellow", "green", "fhv")
MONTHS = (Month(2020, 11), Month(2020, 12))  # the schedules' months: the mirror also has 2020-10, 2021-01
POSTGRES_DAG = "taxi_api_to_postgres"
GCS_DAG = "taxi_api_to_gcs"
BIGQUERY_DAG = "taxi_gcs_to_bigquery"
DAILY_DAG = "taxi_daily_trips_to_gcs"
RUN_TIMEOUT = 900  # seconds for a backfill or catch-up to finish on a busy two-core machine


@pytest.fixture(scope="module")
def storage(cloud_stack):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials())


@pytest.fixture(scope="module")
def bigquery(cloud_stack):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    endpoint = ClientOptions(api_endpoint=f"http://127.0.0.1:{cloud_stack.bigquery_port}")
    return bigquery.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials(), client_options=endpoint)


@pytest.fixture(scope="module")
def bucket(storage) -> str:
    name = f"scheduler-{uuid.uuid4().hex[:12]}"
    storage.create_bucket(name)
    return name


@pytest.fixture(scope="module")
def dataset(cloud_stack) -> str:
    name = f"scheduler_{uuid.uuid4().hex[:12]}"
    cloud_stack.create_dataset(name)
    return name


@pytest.fixture(scope="module")
def scheduler_env(
    postgres, local_mirror, scheduler_schema, bucket, dataset, tmp_path_factory
) -> dict[str, str]:
    """The local mirror, two of its months as the schedules' bounds, a bucket and a dataset."""
    _, url = local_mirror
    return {
        **dag_environment(postgres, url, scheduler_schema, tmp_path_factory.mktemp("charts")),
        "AIRFLOW_VAR_TAXI_FIRST_MONTH": str(MONTHS[0]),
        "AIRFLOW_VAR_TAXI_LAST_MONTH": str(MONTHS[-1]),
        "AIRFLOW_VAR_GCS_BUCKET": bucket,
        "AIRFLOW_VAR_BQ_DATASET": dataset,
    }


# --- what should have landed, from the files served -----------------------------------------


def _file(local_mirror, taxi: str, month: Month):
    folder, _ = local_mirror
    return expected.mirror_file(folder, taxi, str(month))


def _expected_months(local_mirror, taxi: str) -> dict[date, int]:
    return {month.first_day: expected.rows(_file(local_mirror, taxi, month)) for month in MONTHS}


# --- what did land ----------------------------------------------------------------------------


def _postgres_digest(pg_conn, schema_name: str) -> dict[str, list[tuple]]:
    """Per family and source month: rows, and an md5 of every row's text, in order."""
    digests = {}
    for taxi in TAXIS:
        query = sql.SQL(
            "SELECT source_month, count(*), md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {} t"
            " GROUP BY 1 ORDER BY 1"
        ).format(sql.Identifier(schema_name, f"{taxi}_tripdata"))
        digests[taxi] = pg_conn.execute(query).fetchall()
    return digests


def _staging_tables(pg_conn, schema_name: str) -> list[str]:
    found = pg_conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
        (schema_name, "%\\_stage\\_%"),
    )
    return [name for (name,) in found]


def _objects(storage, bucket: str) -> dict[str, str]:
    """``{object: md5}`` of the bucket's data objects (the profiles carry publication times)."""
    return {
        blob.name: blob.md5_hash
        for blob in storage.list_blobs(bucket)
        if "_tripdata_profiles/" not in blob.name
    }


def _parquet_rows(storage, bucket: str, name: str) -> int:
    return pq.read_table(io.BytesIO(storage.bucket(bucket).blob(name).download_as_bytes())).num_rows


def _bigquery_months(bigquery, dataset: str, taxi: str) -> dict[date, tuple]:
    """Per source month of the family's table: its rows, first and last pickup, and sums of zones."""
    pickup = {"yellow": "tpep_pickup_datetime", "green": "lpep_pickup_datetime"}.get(taxi, "pickup_datetime")
    query = (
        f"SELECT source_month, COUNT(*), MIN({pickup}), MAX({pickup}), SUM(pu_location_id),"
        f" SUM(do_location_id) FROM `{LOCAL_PROJECT}.{dataset}.{taxi}_tripdata`"
        " GROUP BY source_month ORDER BY source_month"
    )
    return {row[0]: tuple(row[1:]) for row in bigquery.query(query).result()}


def _loaded_by_bigquery_runs(airflow_scheduler) -> list[list[str]]:
    """For each successful run of the BigQuery flow, the ``taxi month`` of each month it loaded."""
    loaded = []
    for run in airflow_scheduler.runs(BIGQUERY_DAG):
        if run["state"] == "success":
            instances = airflow_scheduler.task_instances(BIGQUERY_DAG, run["dag_run_id"])
            loaded.append(
                sorted(ti["rendered_map_index"] for ti in instances if ti["task_id"] == "load_month")
            )
    return loaded


def _wait_for_bigquery(airflow_scheduler, wanted: Counter, timeout: float = RUN_TIMEOUT) -> list[list[str]]:
    """The BigQuery flow's loads once it has loaded ``wanted`` (``taxi month`` → times) and is idle."""
    deadline = time.monotonic() + timeout
    while True:
        runs = airflow_scheduler.runs(BIGQUERY_DAG)
        if runs and all(run["state"] in ("success", "failed") for run in runs):
            loaded = _loaded_by_bigquery_runs(airflow_scheduler)
            if Counter(name for names in loaded for name in names) >= wanted:
                return loaded
        if time.monotonic() > deadline:
            states = {run["dag_run_id"]: run["state"] for run in runs}
            raise TimeoutError(f"{BIGQUERY_DAG} did not load {dict(wanted)} within {timeout:.0f} s: {states}")
        time.sleep(3)


def _run_summary(runs: list[dict]) -> list[tuple[str, str | None, str]]:
    return [(run["run_type"], (run["logical_date"] or "")[:10] or None, run["state"]) for run in runs]


# --- the tests --------------------------------------------------------------------------------


def test_the_pools_of_pools_json_exist_and_every_dag_imports(airflow_scheduler):
    import json

    from local_stack.airflow_ui import POOLS_FILE

    declared = {name: pool["slots"] for name, pool in json.loads(POOLS_FILE.read_text()).items()}
    assert {name: airflow_scheduler.pools().get(name) for name in declared} == declared
    for dag_id in (POSTGRES_DAG, GCS_DAG, BIGQUERY_DAG, DAILY_DAG):
        assert airflow_scheduler.wait_for_dag(dag_id)["is_paused"], f"{dag_id} should start paused"


def test_an_unpaused_dag_catches_up_on_exactly_the_months_of_its_schedule(
    airflow_scheduler, local_mirror, pg_conn, scheduler_schema
):
    airflow_scheduler.unpause(POSTGRES_DAG)
    runs = airflow_scheduler.wait_for_runs(POSTGRES_DAG, count=len(MONTHS), timeout=RUN_TIMEOUT)

    assert _run_summary(runs) == [("scheduled", month.first_day.isoformat(), "success") for month in MONTHS]
    # The last month's run was the last: the schedule has nothing after it, however long we wait.
    assert airflow_scheduler.wait_for_dag(POSTGRES_DAG)["next_dagrun_logical_date"] is None
    for taxi in TAXIS:
        assert month_row_counts(pg_conn, scheduler_schema, f"{taxi}_tripdata") == _expected_months(
            local_mirror, taxi
        )
    assert _staging_tables(pg_conn, scheduler_schema) == []
    # Each family's tasks ran in its own group, and its log says what it published.
    run_id = runs[0]["dag_run_id"]
    states = airflow_scheduler.task_states(POSTGRES_DAG, run_id)
    assert {task: state for task, state in states.items() if task.startswith("green.")} == {
        f"green.{step}": "success"
        for step in (
            "wait_for_file",
            "stage",
            "audit",
            "check_anomalies",
            "publish",
            "drop_staging",
        )
    }
    rows = expected.rows(_file(local_mirror, "green", MONTHS[0]))
    log = airflow_scheduler.task_log(POSTGRES_DAG, run_id, "green.publish")
    assert f"Published {rows} rows of green {MONTHS[0]} in {scheduler_schema}.green_tripdata" in log


def test_a_reprocessing_backfill_with_a_manual_run_alongside_changes_nothing(
    airflow_scheduler, local_mirror, pg_conn, scheduler_schema
):
    before = _postgres_digest(pg_conn, scheduler_schema)
    first, last = MONTHS[0].first_day, MONTHS[-1].first_day

    backfill = airflow_scheduler.backfill_cli(POSTGRES_DAG, first, last, reprocess_behavior="completed")
    # Airflow 3.3 runs one backfill per DAG at a time: a second one over the same months is refused...
    with pytest.raises(AirflowApiError, match=r"HTTP 409.*already a running backfill"):
        airflow_scheduler.backfill(POSTGRES_DAG, first, last, reprocess_behavior="completed")
    # ...but nothing stops a manual run of a month the backfill is loading.
    manual_run_id = airflow_scheduler.trigger(POSTGRES_DAG, {"month": str(MONTHS[-1])})
    airflow_scheduler.wait_for_backfill(backfill, timeout=RUN_TIMEOUT)
    manual = airflow_scheduler.wait_for_run(POSTGRES_DAG, manual_run_id, timeout=RUN_TIMEOUT)

    runs = airflow_scheduler.runs(POSTGRES_DAG)
    # The backfill cleared and reran the catch-up's runs (their type becomes backfill).
    assert _run_summary(runs) == [
        *(("backfill", month.first_day.isoformat(), "success") for month in MONTHS),
        ("manual", None, "success"),
    ]
    reprocessed = next(run for run in runs if run["logical_date"].startswith(last.isoformat()))
    stage = next(
        ti
        for ti in airflow_scheduler.task_instances(POSTGRES_DAG, reprocessed["dag_run_id"])
        if ti["task_id"] == "green.stage"
    )
    assert stage["try_number"] == 2, "the backfill ran the month's stage again"
    # Both loads of the last month were under way at once.
    assert manual["start_date"] < reprocessed["end_date"] and reprocessed["start_date"] < manual["end_date"]

    assert _postgres_digest(pg_conn, scheduler_schema) == before
    assert _staging_tables(pg_conn, scheduler_schema) == []
    published = pg_conn.execute(
        sql.SQL("SELECT run_id FROM {} WHERE source_month = %s AND published_at IS NOT NULL").format(
            sql.Identifier(scheduler_schema, "green_tripdata_profile")
        ),
        (last,),
    ).fetchall()
    assert sorted(run_id for (run_id,) in published) == sorted([manual_run_id, reprocessed["dag_run_id"]])


def test_a_rest_api_backfill_writes_the_schedules_months_to_gcs_and_bigquery_loads_them(
    airflow_scheduler, local_mirror, storage, bucket, bigquery, dataset
):
    airflow_scheduler.unpause(BIGQUERY_DAG)
    # A range wider than the schedule: the backfill has a run for the schedule's months only.
    backfill = airflow_scheduler.backfill(GCS_DAG, date(2020, 9, 1), date(2021, 2, 1))
    airflow_scheduler.unpause(GCS_DAG)
    airflow_scheduler.wait_for_backfill(backfill, timeout=RUN_TIMEOUT)

    runs = airflow_scheduler.runs(GCS_DAG)
    assert _run_summary(runs) == [("backfill", month.first_day.isoformat(), "success") for month in MONTHS]
    objects = _objects(storage, bucket)
    assert not [name for name in objects if name.startswith("_staging/")]
    for taxi in TAXIS:
        for month in MONTHS:
            kept = expected.kept(_file(local_mirror, taxi, month))
            name = f"{taxi}_tripdata/{taxi}_tripdata_{month}.parquet"
            assert _parquet_rows(storage, bucket, name) == len(kept)
            days = sorted(kept[expected.PICKUP[taxi]].dt.date.unique())
            assert sorted(
                n.split("/")[1]
                for n in objects
                if n.startswith(f"{taxi}_tripdata_by_day/") and n.endswith(f"_{month}.parquet")
            ) == [f"pickup_date={day.isoformat()}" for day in days]
            assert (
                storage.bucket(bucket).blob(f"{taxi}_tripdata_profiles/{taxi}_tripdata_{month}.json").exists()
            )

    # Every family's month the GCS flow published is loaded by runs its asset events created (a
    # month may be loaded twice, see dags/taxi_gcs_to_bigquery.py: its partition is replaced).
    wanted = Counter(f"{taxi} {month}" for taxi in TAXIS for month in MONTHS)
    loaded = _wait_for_bigquery(airflow_scheduler, wanted)
    assert all(run["run_type"] == "asset_triggered" for run in airflow_scheduler.runs(BIGQUERY_DAG))
    assert max(len(names) for names in loaded) > 1, f"no run loaded several months at once: {loaded}"
    for taxi in TAXIS:
        months = _bigquery_months(bigquery, dataset, taxi)
        assert {month: values[0] for month, values in months.items()} == _expected_months(local_mirror, taxi)


def test_a_reprocessing_backfill_of_the_gcs_flow_changes_nothing_in_gcs_or_bigquery(
    airflow_scheduler, storage, bucket, bigquery, dataset
):
    objects_before = _objects(storage, bucket)
    tables_before = {taxi: _bigquery_months(bigquery, dataset, taxi) for taxi in TAXIS}
    loads_before = Counter(name for names in _loaded_by_bigquery_runs(airflow_scheduler) for name in names)

    month = MONTHS[-1]
    backfill = airflow_scheduler.backfill(
        GCS_DAG, month.first_day, month.first_day, reprocess_behavior="completed"
    )
    airflow_scheduler.wait_for_backfill(backfill, timeout=RUN_TIMEOUT)
    _wait_for_bigquery(airflow_scheduler, loads_before + Counter(f"{taxi} {month}" for taxi in TAXIS))

    assert {run["state"] for run in airflow_scheduler.runs(GCS_DAG)} == {"success"}
    assert {run["state"] for run in airflow_scheduler.runs(BIGQUERY_DAG)} == {"success"}
    assert _objects(storage, bucket) == objects_before
    assert {taxi: _bigquery_months(bigquery, dataset, taxi) for taxi in TAXIS} == tables_before


def test_a_backfill_of_the_daily_export_across_a_month_boundary_exports_each_day_once(
    airflow_scheduler, local_mirror, storage, bucket
):
    # Ten days across the schedule's months' boundary, where a day's trips come from two files.
    # One family keeps the runs short; the schedule is the same for all.
    first, last = MONTHS[0].last_day - timedelta(days=4), MONTHS[1].first_day + timedelta(days=4)
    backfill = airflow_scheduler.backfill(DAILY_DAG, first, last, conf={"taxis": ["green"]})
    airflow_scheduler.unpause(DAILY_DAG)
    airflow_scheduler.wait_for_backfill(backfill, timeout=RUN_TIMEOUT)

    runs = airflow_scheduler.runs(DAILY_DAG)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    assert len(days) == 10
    assert [(run["run_type"], run["state"]) for run in runs] == [("backfill", "success")] * len(days)
    # Logical dates at midnight: each run's interval is one whole day.
    assert [datetime.fromisoformat(run["data_interval_start"]) for run in runs] == [
        datetime(day.year, day.month, day.day, tzinfo=timezone.utc) for day in days
    ]
    # A day's trips are in its month's file, or a neighbour's that is loaded (the schedule's months).
    per_day: Counter = Counter()
    for source_month in MONTHS:
        per_day.update(expected.rows_per_day(_file(local_mirror, "green", source_month)))
    assert per_day[MONTHS[0].last_day] and per_day[MONTHS[1].first_day]
    exports = {blob.name: blob for blob in storage.list_blobs(bucket, prefix="green_tripdata_exports/")}
    assert sorted(exports) == [
        f"green_tripdata_exports/pickup_date={day}/green_tripdata_{day}.parquet"
        for day in days
        if per_day[day]
    ]
    for day in days:
        if per_day[day]:
            name = f"green_tripdata_exports/pickup_date={day}/green_tripdata_{day}.parquet"
            assert _parquet_rows(storage, bucket, name) == per_day[day], day


def test_no_run_of_any_dag_failed(airflow_scheduler):
    for dag_id in (POSTGRES_DAG, GCS_DAG, BIGQUERY_DAG, DAILY_DAG):
        assert {run["state"] for run in airflow_scheduler.runs(dag_id)} == {"success"}, dag_id
