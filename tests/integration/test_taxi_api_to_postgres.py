"""The whole ``taxi_api_to_postgres`` DAG, run with ``airflow dags test`` against the local services."""

import functools
import shutil
import threading
from datetime import date
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from local_stack import expected
from local_stack.report import month_row_counts
from local_stack.tlc_server import TlcHandler, serve_in_thread
from tests.samples import (
    FHVHV_2024_01_PARQUET,
    GREEN_2020_10,
    GREEN_2024_01_PARQUET,
    YELLOW_2021_01,
    mirror_with_a_gap,
)

pytestmark = pytest.mark.integration


def assert_succeeded(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def output(result) -> str:
    return result.stdout + result.stderr


def test_every_family_of_a_month_lands_once_however_often_it_runs(run_dag, local_mirror, pg_conn, pg_schema):
    folder, url = local_mirror
    mirror = {"AIRFLOW_VAR_MIRROR_BASE_URL": url}
    for _ in range(2):
        assert_succeeded(run_dag("taxi_api_to_postgres", {"month": "2020-11"}, **mirror))
        for taxi in ("yellow", "green", "fhv"):
            rows = expected.rows(expected.mirror_file(folder, taxi, "2020-11"))
            assert month_row_counts(pg_conn, pg_schema, f"{taxi}_tripdata") == {date(2020, 11, 1): rows}
    profiles = pg_conn.execute(
        f"SELECT count(*), count(published_at), count(anomalies) FROM {pg_schema}.green_tripdata_profile"
    ).fetchone()
    assert profiles == (2, 2, 2)  # one profile per run, each checked and published, kept for auditing
    # The yellow sample's trips are spread over the month: a month built from it has no gap to flag.
    yellow_flags = pg_conn.execute(f"SELECT anomalies FROM {pg_schema}.yellow_tripdata_profile").fetchall()
    assert yellow_flags == [([],), ([],)]
    staging = pg_conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s", (pg_schema, "%stage%")
    ).fetchone()
    assert staging == (0,), "the publish attaches the staging table; the teardown drops what is left"


def test_a_manual_run_can_pick_one_family(run_dag, pg_conn, pg_schema):
    result = run_dag("taxi_api_to_postgres", {"taxis": ["green"], "month": "2020-10"})
    assert_succeeded(result)
    assert month_row_counts(pg_conn, pg_schema, "green_tripdata") == {
        date(2020, 10, 1): expected.rows(GREEN_2020_10)
    }
    tables = {
        t for (t,) in pg_conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (pg_schema,))
    }
    assert not any(t.startswith(("yellow", "fhv")) for t in tables)
    # The others are skipped by plan_month's branch, which says why.
    assert "this run loads ['green'] of mirror for 2020-10; skipped: ['yellow', 'fhv', 'fhvhv']" in output(
        result
    )


def test_the_audit_and_the_anomaly_test_read_the_staged_profile(run_dag, pg_conn, pg_schema, tmp_path):
    # The sample with five days of January taken out: a feed that stopped, which must be flagged.
    folder = mirror_with_a_gap(tmp_path, range(11, 16))
    gapped = folder / "yellow" / YELLOW_2021_01.name
    server, url = serve_in_thread(folder)
    try:
        result = run_dag(
            "taxi_api_to_postgres", {"taxis": ["yellow"], "month": "2021-01"}, AIRFLOW_VAR_MIRROR_BASE_URL=url
        )
    finally:
        server.shutdown()
    assert_succeeded(result)
    [(anomalies, rows)] = pg_conn.execute(
        f"SELECT anomalies, rows_loaded FROM {pg_schema}.yellow_tripdata_profile"
    ).fetchall()
    assert rows == expected.rows(gapped)
    low_days = expected.low_trip_days(gapped, "2021-01")
    [flag] = anomalies
    assert (flag["feature"], flag["action"], flag["value"]) == ("low_trip_days", "warn", len(low_days))
    assert flag["days"] == [day.isoformat() for day in low_days]
    assert f"anomaly in yellow 2021-01: low_trip_days is {len(low_days)}, expected 0 to 2 (warn)" in output(
        result
    )
    assert "has_rows" in output(result) and "pickups_in_month" in output(
        result
    )  # SQLTableCheckOperator's log


def test_a_month_of_the_tlc_parquet_and_one_of_the_csv_mirror_share_one_table(run_dag, pg_conn, pg_schema):
    assert_succeeded(run_dag("taxi_api_to_postgres", {"taxis": ["green"], "month": "2020-10"}))
    tlc = {
        "AIRFLOW_VAR_TAXI_SOURCE": "tlc",
        "AIRFLOW_VAR_TAXI_FIRST_MONTH": "2024-01",
        "AIRFLOW_VAR_TAXI_LAST_MONTH": "2024-01",
    }
    assert_succeeded(run_dag("taxi_api_to_postgres", {"taxis": ["green"], "month": "2024-01"}, **tlc))
    assert month_row_counts(pg_conn, pg_schema, "green_tripdata") == {
        date(2020, 10, 1): expected.rows(GREEN_2020_10),
        date(2024, 1, 1): expected.rows(GREEN_2024_01_PARQUET),
    }
    sources = dict(
        pg_conn.execute(f"SELECT source_month, source_url FROM {pg_schema}.green_tripdata_profile")
    )
    assert sources[date(2024, 1, 1)].endswith("/trip-data/green_tripdata_2024-01.parquet")
    assert sources[date(2020, 10, 1)].endswith("/green/green_tripdata_2020-10.csv.gz")


def test_the_high_volume_fhv_family_loads_from_the_tlc_parquet_alone(run_dag, pg_conn, pg_schema):
    tlc = {
        "AIRFLOW_VAR_TAXI_SOURCE": "tlc",
        "AIRFLOW_VAR_TAXI_FIRST_MONTH": "2024-01",
        "AIRFLOW_VAR_TAXI_LAST_MONTH": "2024-01",
    }
    assert_succeeded(run_dag("taxi_api_to_postgres", {"taxis": ["fhvhv"], "month": "2024-01"}, **tlc))
    assert month_row_counts(pg_conn, pg_schema, "fhvhv_tripdata") == {
        date(2024, 1, 1): expected.rows(FHVHV_2024_01_PARQUET)
    }
    # The course's mirror has no High-Volume FHV: asking it for one fails, naming what it has.
    result = run_dag("taxi_api_to_postgres", {"taxis": ["fhvhv"], "month": "2020-10"})
    assert result.returncode != 0
    assert "mirror publishes none of them for 2020-10 (yellow from 2019-01" in output(result)


def test_a_missing_month_of_the_mirror_fails_at_once_naming_the_url(
    run_dag, pg_conn, pg_schema, tlc_base_url
):
    assert_succeeded(run_dag("taxi_api_to_postgres", {"taxis": ["yellow"], "month": "2021-01"}))
    before = month_row_counts(pg_conn, pg_schema, "yellow_tripdata")

    result = run_dag("taxi_api_to_postgres", {"taxis": ["yellow"], "month": "2021-02"})

    assert result.returncode != 0
    url = f"{tlc_base_url}/yellow/yellow_tripdata_2021-02.csv.gz"
    assert f"{url} is not published (HTTP 404)" in output(result)
    assert output(result).count(f"{url} is not published") == 1, "a 404 of a fixed archive is not retried"
    assert month_row_counts(pg_conn, pg_schema, "yellow_tripdata") == before


def test_a_month_the_source_cannot_have_is_refused_before_any_download(run_dag):
    result = run_dag("taxi_api_to_postgres", {"taxis": ["green"], "month": "2024-01"})
    assert result.returncode != 0
    assert (
        "month 2024-01 is outside the months loaded from mirror, the course's CSV mirror "
        "(DataTalksClub/nyc-tlc-data): choose a month from 2019-01 to 2021-07" in output(result)
    )
    assert "Downloading" not in output(result)


def latest_tlc_month() -> str:
    """The month a live TLC run created today covers, which the TLC has not published yet."""
    latest = date.today().replace(day=1)
    return f"{latest.year - (latest.month == 1):04d}-{(latest.month - 2) % 12 + 1:02d}"


class PublishedOnTheThirdAsk(TlcHandler):
    """Answers 404 for the file until it has been asked for twice (the operator, then the trigger)."""

    asked = 0
    late_file: Path | None = None
    waiting: Path | None = None

    def send_head(self):
        if self.late_file and self.path.endswith(self.late_file.name):
            type(self).asked += 1
            if type(self).asked == 3:
                shutil.move(self.waiting, self.late_file)
        return super().send_head()


def test_a_late_file_of_a_live_source_is_waited_for_deferred_then_loaded(
    run_dag, pg_conn, pg_schema, tmp_path
):
    """The run of the latest month starts before the TLC publishes it: it waits, then loads."""
    month = latest_tlc_month()
    (tmp_path / "trip-data").mkdir()
    PublishedOnTheThirdAsk.late_file = tmp_path / "trip-data" / f"green_tripdata_{month}.parquet"
    PublishedOnTheThirdAsk.waiting = expected_parquet_moved_to(month, tmp_path / "not-yet.parquet")
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(PublishedOnTheThirdAsk, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    tlc = {
        "AIRFLOW_VAR_TAXI_SOURCE": "tlc",
        "AIRFLOW_VAR_TLC_BASE_URL": url,
        "AIRFLOW_VAR_TAXI_FIRST_MONTH": month,
        "AIRFLOW_VAR_SOURCE_POKE_SECONDS": "1",
    }
    try:
        result = run_dag("taxi_api_to_postgres", {"taxis": ["green"], "month": month}, **tlc)
    finally:
        server.shutdown()
    assert_succeeded(result)
    late = PublishedOnTheThirdAsk.late_file
    assert f"{url}/trip-data/{late.name} is not published yet: waiting until" in output(result)
    assert "new_state=deferred" in output(result)  # the wait held no worker: the task was deferred
    assert f"{url}/trip-data/{late.name} was published after a wait of" in output(result)
    assert PublishedOnTheThirdAsk.asked >= 3  # asked by the operator, then by the trigger until it came
    [(rows,)] = pg_conn.execute(f"SELECT count(*) FROM {pg_schema}.green_tripdata").fetchall()
    assert rows == expected.rows(late)


def test_a_late_file_that_never_comes_fails_naming_the_url(run_dag, tmp_path):
    month = latest_tlc_month()
    server, url = serve_in_thread(tmp_path)
    tlc = {
        "AIRFLOW_VAR_TAXI_SOURCE": "tlc",
        "AIRFLOW_VAR_TLC_BASE_URL": url,
        "AIRFLOW_VAR_TAXI_FIRST_MONTH": month,
        "AIRFLOW_VAR_SOURCE_WAIT_SECONDS": "3",
        "AIRFLOW_VAR_SOURCE_POKE_SECONDS": "1",
    }
    try:
        result = run_dag("taxi_api_to_postgres", {"taxis": ["fhv"], "month": month}, **tlc)
    finally:
        server.shutdown()
    assert result.returncode != 0
    assert (
        f"{url}/trip-data/fhv_tripdata_{month}.parquet was not published within 0:00:03 (HTTP 404)"
        in output(result)
    )


def expected_parquet_moved_to(month: str, destination):
    """The real TLC green file of 2024-01 with its trip times moved into ``month`` (a late file)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from include.source.months import Month

    table = pq.read_table(GREEN_2024_01_PARQUET)
    shift = pa.scalar(Month.parse(month).start - Month(2024, 1).start, pa.duration("us"))
    for name in ("lpep_pickup_datetime", "lpep_dropoff_datetime"):
        table = table.set_column(table.schema.get_field_index(name), name, pc.add(table.column(name), shift))
    in_month = pc.equal(pc.strftime(table.column("lpep_pickup_datetime"), "%Y-%m"), month)
    pq.write_table(table.filter(in_month), destination)
    return destination
