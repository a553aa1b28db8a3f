"""The source watcher under a real api-server, scheduler, dag-processor and triggerer.

The TLC stand-in serves a folder of this module's own, in the mirror's layout: every family's
2020-11 and 2020-12 (the schedules' bounds), except FHV's 2020-12, which the TLC "publishes late".
The watcher (``include/source/watch.py``) asks about those six files every few seconds and
``taxi_source_changes`` reloads what changed. The tests go on from each other:

1. the monthly DAGs catch up on what the source has (2020-12 fails for FHV, its file missing), and
   the watcher, once on, records every file's version and announces nothing;
2. green's 2020-11 replaced by a corrected file reloads that family's month, once, into Postgres
   and GCS, and nothing else;
3. FHV's 2020-12 appearing is loaded once; the triggerer is restarted; yellow's 2020-12, corrected
   while it was down, is reloaded once, and nothing announced before the restart is again.

What landed is compared with what ``local_stack/expected.py`` computes from the files served.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import time
import uuid

import pyarrow.parquet as pq
import pytest
from psycopg import sql

from include.source.months import Month
from include.source.sources import SOURCES
from local_stack import expected
from local_stack.stack import LOCAL_PROJECT
from local_stack.tlc_server import serve_in_thread
from tests.conftest import dag_environment

pytestmark = pytest.mark.scheduler

TAXIS = tuple(SOURCES["mirror"].first_months)  # yellow, green, fhv
MONTHS = (Month(2020, 11), Month(2020, 12))
LATE = ("fhv", Month(2020, 12))  # not published when the module starts
POSTGRES_DAG, GCS_DAG, CHANGES_DAG = "taxi_api_to_postgres", "taxi_api_to_gcs", "taxi_source_changes"
MONTHLY_DAGS = (POSTGRES_DAG, GCS_DAG)
WATCH_SECONDS = 5
RUN_TIMEOUT = 900


@pytest.fixture(scope="module")
def source_folder(local_mirror, tmp_path_factory):
    """The files this module's TLC stand-in serves, changed by the tests as the TLC would."""
    mirror_folder, _ = local_mirror
    folder = tmp_path_factory.mktemp("watched") / "tlc"
    for taxi in TAXIS:
        for month in MONTHS:
            if (taxi, month) != LATE:
                _copy(expected.mirror_file(mirror_folder, taxi, str(month)), _path(folder, taxi, month))
    return folder


@pytest.fixture(scope="module")
def source_url(source_folder):
    server, url = serve_in_thread(source_folder)
    yield url
    server.shutdown()


@pytest.fixture(scope="module")
def storage(cloud_stack):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials())


@pytest.fixture(scope="module")
def bucket(storage) -> str:
    name = f"watcher-{uuid.uuid4().hex[:12]}"
    storage.create_bucket(name)
    return name


@pytest.fixture(scope="module")
def scheduler_env(postgres, source_url, scheduler_schema, bucket, tmp_path_factory) -> dict[str, str]:
    """The module's source, bounded to two months, with the watcher on and asking every few seconds."""
    return {
        **dag_environment(postgres, source_url, scheduler_schema, tmp_path_factory.mktemp("charts")),
        "AIRFLOW_VAR_TAXI_FIRST_MONTH": str(MONTHS[0]),
        "AIRFLOW_VAR_TAXI_LAST_MONTH": str(MONTHS[-1]),
        "AIRFLOW_VAR_GCS_BUCKET": bucket,
        "AIRFLOW_VAR_WATCH_SOURCE": "on",
        "AIRFLOW_VAR_WATCH_SOURCE_SECONDS": str(WATCH_SECONDS),
    }


# --- the source's files ------------------------------------------------------------------------


def _path(folder, taxi: str, month: Month):
    return folder / SOURCES["mirror"].file_path.format(taxi=taxi, month=month)


def _copy(source, destination) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)


def _correct(path, drop_every: int = 7) -> None:
    """Replace a month's file by a corrected one: every ``drop_every``-th trip withdrawn."""
    header, *lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    kept = [line for number, line in enumerate(lines) if number % drop_every]
    corrected = path.with_suffix(".tmp")
    corrected.write_bytes(gzip.compress(header + b"".join(kept)))
    os.replace(corrected, path)  # whole or not at all, as a server swaps a file


# --- what landed ---------------------------------------------------------------------------------


def _postgres_months(pg_conn, schema: str) -> dict[tuple[str, str], tuple]:
    """Per family and source month: rows, and an md5 of every row's text."""
    found = {}
    for taxi in TAXIS:
        query = sql.SQL(
            "SELECT source_month, count(*), md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {} t"
            " GROUP BY 1"
        ).format(sql.Identifier(schema, f"{taxi}_tripdata"))
        found.update({(taxi, str(Month.of(m))): (n, digest) for m, n, digest in pg_conn.execute(query)})
    return found


def _published_profile(pg_conn, schema: str, taxi: str, month: Month) -> tuple[str, int]:
    """The run id and rows of the month's published profile, the latest published."""
    query = sql.SQL(
        "SELECT run_id, rows_loaded FROM {} WHERE source_month = %s AND published_at IS NOT NULL"
        " ORDER BY published_at DESC LIMIT 1"
    ).format(sql.Identifier(schema, f"{taxi}_tripdata_profile"))
    return pg_conn.execute(query, (month.first_day,)).fetchone()


def _objects(storage, bucket: str) -> dict[str, str]:
    """``{object: md5}`` of the bucket's data objects (the profiles carry publication times)."""
    return {b.name: b.md5_hash for b in storage.list_blobs(bucket) if "_tripdata_profiles/" not in b.name}


def _parquet_rows(storage, bucket: str, taxi: str, month: Month) -> int:
    blob = storage.bucket(bucket).blob(f"{taxi}_tripdata/{taxi}_tripdata_{month}.parquet")
    return pq.read_table(io.BytesIO(blob.download_as_bytes())).num_rows


# --- what Airflow did ------------------------------------------------------------------------------


def _asset_id(airflow) -> int:
    (asset,) = airflow.api("GET", "/assets", params={"name_pattern": "nyc_taxi_source_files"})["assets"]
    return asset["id"]


def _known_versions(airflow) -> dict[str, dict]:
    """What the watcher keeps in the asset's state store: ``{url: validators or None}``."""
    entries = airflow.api("GET", f"/assets/{_asset_id(airflow)}/state-store")["asset_state_store"]
    return {url: known for entry in entries for url, known in entry["value"].items()}


def _source_events(airflow) -> list[dict]:
    """The watcher's events, oldest first: each one's payload."""
    found = airflow.api("GET", "/assets/events", params={"asset_id": _asset_id(airflow), "limit": 100})
    return [event["extra"]["payload"] for event in found["asset_events"]]


def _reload_runs(airflow, dag_id: str) -> list[tuple[str, list[str], str]]:
    """``(month, taxis, state)`` of each run the watcher's reloads made of a monthly DAG."""
    runs = sorted(airflow.runs(dag_id), key=lambda run: run["run_after"])
    return [
        (run["conf"]["month"], run["conf"]["taxis"], run["state"])
        for run in runs
        if run["dag_run_id"].startswith("source_change__")
    ]


def _wait_for_reloads(airflow, count: int, timeout: float = RUN_TIMEOUT) -> dict[str, list]:
    """Every monthly DAG's reload runs once each has ``count`` and every run of the flows is final."""
    deadline = time.monotonic() + timeout
    while True:
        reloads = {dag_id: _reload_runs(airflow, dag_id) for dag_id in MONTHLY_DAGS}
        changes = airflow.runs(CHANGES_DAG)
        settled = all(
            len(runs) >= count and all(r[2] in ("success", "failed") for r in runs)
            for runs in reloads.values()
        )
        if settled and changes and all(run["state"] in ("success", "failed") for run in changes):
            return reloads
        if time.monotonic() > deadline:
            raise TimeoutError(f"reloads not done within {timeout:.0f} s: {reloads}")
        time.sleep(3)


def _wait_for(condition, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(1)
    return found


# --- the tests -----------------------------------------------------------------------------------


def test_the_catch_up_loads_what_the_source_has_and_the_watcher_records_it_announcing_nothing(
    airflow_scheduler, source_url
):
    for dag_id in MONTHLY_DAGS:
        airflow_scheduler.unpause(dag_id)
    for dag_id in MONTHLY_DAGS:
        runs = airflow_scheduler.wait_for_runs(dag_id, count=len(MONTHS), timeout=RUN_TIMEOUT)
        assert [run["state"] for run in runs] == ["success", "failed"], dag_id
        # The late file fails its family's wait at once (a fixed archive), and nothing else.
        failed = {
            t: s
            for t, s in airflow_scheduler.task_states(dag_id, runs[1]["dag_run_id"]).items()
            if s == "failed"
        }
        assert failed == {f"{LATE[0]}.wait_for_file": "failed"}

    airflow_scheduler.unpause(CHANGES_DAG)
    urls = {
        SOURCES["mirror"].url(source_url, taxi, month): (taxi, month) for taxi in TAXIS for month in MONTHS
    }
    known = _wait_for(
        lambda: (k := _known_versions(airflow_scheduler)) and set(k) == set(urls) and k, "no baseline"
    )
    assert [url for url, version in known.items() if version is None] == [
        SOURCES["mirror"].url(source_url, *LATE)
    ]
    time.sleep(3 * WATCH_SECONDS)  # three more polls, each a 304 or 404 per file
    assert _source_events(airflow_scheduler) == []
    assert airflow_scheduler.runs(CHANGES_DAG) == []
    assert _known_versions(airflow_scheduler) == known


def test_a_corrected_file_reloads_its_month_once_into_every_destination_and_nothing_else(
    airflow_scheduler, source_folder, source_url, pg_conn, scheduler_schema, storage, bucket
):
    taxi, month = "green", MONTHS[0]
    months_before = _postgres_months(pg_conn, scheduler_schema)
    objects_before = _objects(storage, bucket)
    profile_before = _published_profile(pg_conn, scheduler_schema, taxi, month)

    path = _path(source_folder, taxi, month)
    _correct(path)
    reloads = _wait_for_reloads(airflow_scheduler, count=1)

    assert reloads == {dag_id: [(str(month), [taxi], "success")] for dag_id in MONTHLY_DAGS}
    (event,) = _source_events(airflow_scheduler)
    assert (event["change"], event["taxi"], event["month"], event["size"]) == (
        "changed",
        taxi,
        str(month),
        path.stat().st_size,
    )
    # Postgres: the corrected month replaced the old one; every other month is as it was.
    months_after = _postgres_months(pg_conn, scheduler_schema)
    rows = expected.rows(path)
    assert months_after[(taxi, str(month))][0] == rows < months_before[(taxi, str(month))][0]
    assert {k: v for k, v in months_after.items() if k != (taxi, str(month))} == {
        k: v for k, v in months_before.items() if k != (taxi, str(month))
    }
    run_id, profiled = _published_profile(pg_conn, scheduler_schema, taxi, month)
    assert run_id.startswith("source_change__") and run_id != profile_before[0]
    assert profiled == rows
    # GCS: the month's objects were rewritten, no other object changed.
    assert _parquet_rows(storage, bucket, taxi, month) == len(expected.kept(path))
    objects_after = _objects(storage, bucket)
    changed = {
        name
        for name in objects_after.keys() | objects_before.keys()
        if objects_after.get(name) != objects_before.get(name)
    }
    assert changed and all(name.endswith(f"{taxi}_tripdata_{month}.parquet") for name in changed)
    assert all(name.startswith(f"{taxi}_tripdata") for name in changed)


def test_a_new_month_and_a_change_across_a_triggerer_restart_each_load_once(
    airflow_scheduler, local_mirror, source_folder, pg_conn, scheduler_schema, storage, bucket
):
    mirror_folder, _ = local_mirror
    late_taxi, late_month = LATE
    late = _path(source_folder, late_taxi, late_month)
    _copy(expected.mirror_file(mirror_folder, late_taxi, str(late_month)), late)
    _wait_for_reloads(airflow_scheduler, count=2)

    # The triggerer goes down; yellow's 2020-12 is corrected meanwhile; it comes back.
    airflow_scheduler.airflow.stop_component("triggerer")
    corrected = _path(source_folder, "yellow", MONTHS[1])
    _correct(corrected)
    airflow_scheduler.airflow.start_component("triggerer")
    reloads = _wait_for_reloads(airflow_scheduler, count=3)

    assert reloads == {
        dag_id: [
            (str(MONTHS[0]), ["green"], "success"),
            (str(late_month), [late_taxi], "success"),
            (str(MONTHS[1]), ["yellow"], "success"),
        ]
        for dag_id in MONTHLY_DAGS
    }
    assert [(e["change"], e["taxi"], e["month"]) for e in _source_events(airflow_scheduler)] == [
        ("changed", "green", str(MONTHS[0])),
        ("new", late_taxi, str(late_month)),
        ("changed", "yellow", str(MONTHS[1])),
    ]
    time.sleep(3 * WATCH_SECONDS)  # nothing more to announce after the restart
    assert len(_source_events(airflow_scheduler)) == 3
    months = _postgres_months(pg_conn, scheduler_schema)
    assert months[(late_taxi, str(late_month))][0] == expected.rows(late)
    assert months[("yellow", str(MONTHS[1]))][0] == expected.rows(corrected)
    assert _parquet_rows(storage, bucket, late_taxi, late_month) == len(expected.kept(late))
    assert _parquet_rows(storage, bucket, "yellow", MONTHS[1]) == len(expected.kept(corrected))
    assert {run["state"] for run in airflow_scheduler.runs(CHANGES_DAG)} == {"success"}
