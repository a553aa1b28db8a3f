"""What the reliability tests share: a misbehaving TLC source, the monthly flows' steps, and digests
of every destination.

Each test publishes a month, provokes a fault, and compares digests of the destination: a failure
must leave it exactly as it was (rows, partitions, rejects, published profiles, objects), a
recovered fault exactly as one good run. The faults run either through the flows' own step
functions, chained as the DAG chains its tasks (``load_through`` a destination: quick, for the
many cases), or through the real DAG with ``airflow dags test`` (``run_dag``), where the
retry policy, the check operators and the teardowns are under test.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.checks.quality import Action
from include.destinations import postgres
from include.destinations.base import Destination, Staged
from include.destinations.gcs import GCS
from include.flows import load_month
from include.source.months import Month
from include.source.sources import SOURCES, MonthRequest, downloaded
from local_stack.tlc_server import SAMPLES
from tests.reliability.fault_server import FaultyMirror, faulty_mirror
from tests.samples import GREEN_2020_10, GREEN_2024_01_PARQUET

OCTOBER = Month(2020, 10)
DECEMBER = Month(2020, 12)
JANUARY_2024 = Month(2024, 1)


def source_path(taxi: str, month: Month, source: str = "mirror") -> str:
    """The path of a month's file under a source's base URL, e.g. ``/green/green_tripdata_2020-10.csv.gz``."""
    return "/" + SOURCES[source].file_path.format(taxi=taxi, month=month)


OCTOBER_PATH = source_path("green", OCTOBER)
DECEMBER_PATH = source_path("green", DECEMBER)
PARQUET_PATH = source_path("green", JANUARY_2024, "tlc")


def month_request(base_url: str, taxi: str, month: Month, source: str = "mirror") -> MonthRequest:
    return MonthRequest.of(SOURCES[source], base_url, taxi, month)


def new_run_id() -> str:
    return f"manual__reliability_{uuid.uuid4().hex[:12]}"


# --- The flows' steps, chained as the DAGs chain their tasks ------------------------------------


def load_through(
    destination: Destination,
    base_url: str,
    taxi: str = "green",
    month: Month = OCTOBER,
    *,
    source: str = "mirror",
    run_id: str | None = None,
    actions: Mapping[str, Action] | None = None,
    **download_options: float,
) -> Staged:
    """A month through the monthly DAGs' steps (``include.flows.load_month``) into ``destination``:
    stage, audit, check_anomalies, publish, and the teardown drop_staging whatever happened."""
    request = month_request(base_url, taxi, month, source)
    run_id = run_id or new_run_id()
    try:
        with downloaded(request.url, **download_options) as path:
            staged = load_month.stage(destination, path, request, run_id)
        load_month.audit(destination, staged)
        load_month.check_anomalies(destination, staged, actions or {})
        load_month.publish(destination, staged)
        return staged
    finally:
        destination.drop_staging(taxi, month, run_id)


def load_to_postgres(base_url: str, conn: psycopg.Connection, schema_name: str, *args, **options) -> Staged:
    """``load_through`` into Postgres, as ``taxi_api_to_postgres`` runs it."""
    return load_through(postgres.Postgres(conn, schema_name), base_url, *args, **options)


def export_to_gcs(base_url: str, hook, bucket: str, *args, **options) -> Staged:
    """``load_through`` into a bucket, as ``taxi_api_to_gcs`` runs it."""
    return load_through(GCS(hook, bucket), base_url, *args, **options)


# --- Digests of the destinations ------------------------------------------------------------------

# Columns of the profile table that identify a run rather than describe the month's data.
_RUN_COLUMNS = ("run_id", "staged_at", "published_at")


def _exists(conn: psycopg.Connection, schema_name: str, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (f'"{schema_name}"."{table}"',)).fetchone()[0] is not None


def _rows_digest(conn: psycopg.Connection, query: str) -> tuple[int, str]:
    """Row count and an MD5 of every row of ``query``, in a stable order."""
    return conn.execute(
        f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM ({query}) t"
    ).fetchone()


def postgres_state(
    conn: psycopg.Connection, schema_name: str, taxi: str = "green", *, with_runs: bool = True
) -> dict[str, object]:
    """What a reader of a family's tables sees: every row, the partitions, the rejects, and the
    published profiles (with ``with_runs=False``: the latest published profile of each month,
    without the columns that name the run, so one good run and a recovered one compare equal)."""
    table = postgres.tripdata_table(taxi)
    state: dict[str, object] = {}
    for name in (table, postgres.rejects_table(table)):
        state[name] = (
            _rows_digest(conn, f'SELECT * FROM "{schema_name}"."{name}"')
            if _exists(conn, schema_name, name)
            else None
        )
    state["partitions"] = conn.execute(
        "SELECT child.relname, pg_get_expr(child.relpartbound, child.oid) FROM pg_inherits"
        " JOIN pg_class child ON child.oid = inhrelid JOIN pg_class parent ON parent.oid = inhparent"
        " JOIN pg_namespace n ON n.oid = parent.relnamespace WHERE n.nspname = %s AND parent.relname = %s"
        " ORDER BY 1",
        (schema_name, table),
    ).fetchall()
    profiles = postgres.profile_table(table)
    if not _exists(conn, schema_name, profiles):
        state[profiles] = None
    elif with_runs:
        state[profiles] = _rows_digest(
            conn, f'SELECT * FROM "{schema_name}"."{profiles}" WHERE published_at IS NOT NULL'
        )
    else:
        # The latest published profile of each month, without the columns that name its run.
        columns = [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                " AND table_name = %s ORDER BY ordinal_position",
                (schema_name, profiles),
            ).fetchall()
            if name not in _RUN_COLUMNS
        ]
        listed = ", ".join(f'"{name}"' for name in columns)
        state[profiles] = _rows_digest(
            conn,
            f'SELECT DISTINCT ON (source_month) {listed} FROM "{schema_name}"."{profiles}"'
            " WHERE published_at IS NOT NULL ORDER BY source_month, published_at DESC",
        )
    return state


def staging_tables(conn: psycopg.Connection, schema_name: str) -> list[str]:
    """Tables a run staged and nobody dropped."""
    return [
        name
        for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
            (schema_name, "%\\_stage\\_%"),
        ).fetchall()
    ]


def profile_of_run(conn: psycopg.Connection, schema_name: str, taxi: str, run_id: str) -> dict | None:
    """The profile row a run staged, as a dict (None if it staged nothing)."""
    table = postgres.profile_table(postgres.tripdata_table(taxi))
    if not _exists(conn, schema_name, table):
        return None
    cursor = conn.execute(f'SELECT * FROM "{schema_name}"."{table}" WHERE run_id = %s', (run_id,))
    row = cursor.fetchone()
    return dict(zip([c.name for c in cursor.description], row, strict=True)) if row else None


def bucket_state(storage_client, bucket: str, *, with_runs: bool = True) -> dict[str, str]:
    """Every object of a bucket with the MD5 of its content: what a reader of the bucket sees.

    With ``with_runs=False`` a profile's fields that name the run are left out of its digest, so
    one good run and a recovered one compare equal.
    """
    state = {}
    for blob in storage_client.list_blobs(bucket):
        if blob.name.endswith(".json") and not with_runs:
            values = json.loads(blob.download_as_bytes())
            content = {key: value for key, value in values.items() if key not in _RUN_COLUMNS}
            state[blob.name] = hashlib.md5(json.dumps(content, sort_keys=True).encode()).hexdigest()
        else:
            state[blob.name] = blob.md5_hash
    return state


def staging_objects(storage_client, bucket: str) -> list[str]:
    return [blob.name for blob in storage_client.list_blobs(bucket, prefix="_staging/")]


# --- Files that are wrong in a chosen way ---------------------------------------------------------


def edited_sample(edit: Callable[[list[list[str]]], list[list[str]]], sample: Path = GREEN_2020_10) -> bytes:
    """A CSV sample as gzip CSV after ``edit`` changed its rows (the header is row 0)."""
    with gzip.open(sample, "rt", newline="") as source:
        rows = edit(list(csv.reader(source)))
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return gzip.compress(text.getvalue().encode())


def as_december(rows: list[list[str]]) -> list[list[str]]:
    """October's trips moved to December (both have 31 days): a second real-shaped green month."""
    for row in rows[1:]:
        row[1], row[2] = (value.replace("2020-10-", "2020-12-") for value in row[1:3])
    return rows


def parquet_sample(edit: Callable[[pa.Table], pa.Table] = lambda table: table) -> bytes:
    """The TLC's real green 2024-01 Parquet after ``edit`` changed its table."""
    sink = io.BytesIO()
    pq.write_table(edit(pq.read_table(GREEN_2024_01_PARQUET)), sink)
    return sink.getvalue()


# --- Fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def mirror() -> Iterator[FaultyMirror]:
    """Both sources' layouts of the real sample files, from a server that misbehaves when told to."""
    with faulty_mirror(SAMPLES) as server:
        yield server


@pytest.fixture
def gcs_hook(cloud_stack):
    """The hook the DAGs use, on the GCS stand-in (``cloud_stack`` sets the connection)."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook("google_cloud_default")


@pytest.fixture
def mirror_env(mirror: FaultyMirror) -> dict[str, str]:
    """Variables that point a DAG run at the faulty server, for both sources."""
    return {"AIRFLOW_VAR_MIRROR_BASE_URL": mirror.url, "AIRFLOW_VAR_TLC_BASE_URL": mirror.url}


TLC_SOURCE = {"AIRFLOW_VAR_TAXI_SOURCE": "tlc"}


def task_tries(dag_id: str) -> tuple[str, dict[str, tuple[str, int]]]:
    """The latest run of ``dag_id`` in the tests' metadata database: its run id, and each task's
    final state and number of tries."""
    with sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db") as db:
        [run_id] = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
        rows = db.execute(
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?",
            (dag_id, run_id),
        ).fetchall()
    return run_id, {task_id: (state, tries) for task_id, state, tries in rows}


def output(result) -> str:
    return result.stdout + result.stderr


def assert_run_failed(result) -> str:
    """``airflow dags test`` exits with an error when the run failed, or could not be created."""
    assert result.returncode != 0, output(result)[-4000:]
    return output(result)


def assert_run_succeeded(result) -> str:
    text = output(result)
    assert result.returncode == 0 and "state=success, run_type=manual" in text, text[-4000:]
    return text


# --- Faults inside Postgres ---------------------------------------------------------------------

FAULT_ROW = 20_000


@pytest.fixture
def staging_fault(postgres, pg_schema) -> Iterator[Callable[[str], None]]:
    """Install a fault on the ``FAULT_ROW``-th row copied into any staging table of the test's schema.

    Each run stages into a table of its own, created inside the stage's transaction, so the fault
    cannot sit on a table made beforehand: an event trigger adds a row trigger to every staging
    table as it is created. The rows are counted by a sequence, which a rollback does not reset,
    so the fault hits once, in the middle of the first COPY, and the retry passes.
    """
    event_trigger = f"{pg_schema}_staging_fault"

    def install(action: str) -> None:
        with psycopg.connect(postgres.uri, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {pg_schema}")
            conn.execute(
                f"CREATE SEQUENCE {pg_schema}.rows_staged;"
                f" CREATE FUNCTION {pg_schema}.fault() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN IF nextval('{pg_schema}.rows_staged') = {FAULT_ROW} THEN {action}; END IF;"
                " RETURN NEW; END $$;"
                f" CREATE FUNCTION {pg_schema}.add_fault() RETURNS event_trigger LANGUAGE plpgsql AS $$"
                " DECLARE created record; BEGIN"
                "  FOR created IN SELECT * FROM pg_event_trigger_ddl_commands()"
                f"   WHERE command_tag = 'CREATE TABLE' AND schema_name = '{pg_schema}'"
                "    AND object_identity ~ '_stage_[0-9a-f]{10}$' LOOP"
                "   EXECUTE format('CREATE TRIGGER fault BEFORE INSERT ON %s FOR EACH ROW"
                f"    EXECUTE FUNCTION {pg_schema}.fault()', created.object_identity);"
                "  END LOOP; END $$;"
                f" CREATE EVENT TRIGGER {event_trigger} ON ddl_command_end WHEN TAG IN ('CREATE TABLE')"
                f"  EXECUTE FUNCTION {pg_schema}.add_fault()"
            )

    yield install
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(f"DROP EVENT TRIGGER IF EXISTS {event_trigger}")


def wait_for_backend(conn: psycopg.Connection, condition: str, timeout: float = 60.0) -> None:
    """Wait until a backend in ``pg_stat_activity`` matches ``condition``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {condition}").fetchone()[0]:
            return
        time.sleep(0.05)
    pytest.fail(f"no backend with {condition} within {timeout:.0f} s")


def in_thread(work: Callable[[], object]):
    """Run ``work`` in a thread; return the thread and the list its exception (if any) lands in."""
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # surfaced by the caller's assertions
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors
