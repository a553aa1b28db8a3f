"""The measured methods, each run in a fresh interpreter: ``python -m bench.methods NAME PARAMS``.

A fresh process per run keeps one method's imports and allocations out of another's memory. A
method's setup (imports, connecting) runs before the clock starts, except where the setup is part
of what is compared: ``airflow dags test`` is timed from its launch, start-up and all, like the
shell pipe it is compared with. The child prints one JSON line: its rows (if it knows them), wall
seconds, CPU seconds, and peak RSS.

CPU is this process's (every thread) plus its children's (``airflow``, ``psql``, ``curl``...);
Postgres's own work is measured by the parent (``bench.run``). Peak RSS is the largest process's
high-water mark: this interpreter's ``VmHWM`` for work done here, or the largest child's
``ru_maxrss`` for a command; the runner's own few MB are not counted against a command.

PARAMS is a JSON object; each method documents what it reads.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Work:
    """What a method times: ``run`` returns its rows (or None); ``in_process`` says whether the
    work's memory is this interpreter's (else a child's)."""

    run: Callable[[], int | None]
    in_process: bool


def _command(command: list[str], env: dict[str, str] | None = None) -> Work:
    def run() -> None:
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            # Airflow logs to stdout: both go to stderr, where bench.run keeps a failed run's log.
            sys.stderr.write(done.stdout + done.stderr)
            raise RuntimeError(f"{command[:4]} exited with {done.returncode}:\n{done.stderr[-3000:]}")

    return Work(run, in_process=False)


def dag(params: dict) -> Work:
    """``airflow dags test {dag_id} -c {conf}`` with ``env`` added: the whole DAG run, as a user runs it."""
    airflow = str(Path(sys.executable).parent / "airflow")
    env = {**os.environ, **params["env"]}
    # The DAG's own file only (-f), as the README's edit loop runs it: without it, Airflow parses
    # and stores every DAG of the folder first.
    dag_file = Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{params['dag_id']}.py"
    command = [airflow, "dags", "test", params["dag_id"], "-f", str(dag_file)]
    command += ["-c", json.dumps(params["conf"])]
    return _command(command, env)


def dbt_build(params: dict) -> Work:
    """``dbt build`` of the warehouse models (include/dbt) on Postgres for the var ``months`` (empty:
    every month), with ``env`` added (the profile's NYC_TAXI_PG_* and NYC_TAXI_SCHEMA, docs/dbt.md);
    dbt's start-up and parse included, as Cosmos pays them in every task."""
    import tempfile

    project = Path(__file__).resolve().parent.parent / "include" / "dbt"
    scratch = tempfile.mkdtemp(prefix="bench-dbt-")  # the project's own target/ is the DAG's manifest
    command = [
        str(project.parents[1] / ".venv-dbt" / "bin" / "dbt"),
        "build",
        *("--project-dir", str(project), "--profiles-dir", str(project), "--target", "postgres"),
        *("--target-path", scratch, "--log-path", scratch),
        *("--vars", json.dumps({"months": params.get("months", "")})),
    ]
    return _command(command, {**os.environ, **params["env"]})


def pipe(params: dict) -> Work:
    """The plain pipe: ``curl {url} | gunzip | psql -c "\\copy {table} FROM STDIN (FORMAT csv, HEADER)"``."""
    script = (
        'set -euo pipefail; curl -sSf "$URL" | gunzip | "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$URI" '
        '-c "\\copy $TABLE FROM STDIN (FORMAT csv, HEADER)"'
    )
    env = {
        **os.environ,
        "URL": params["url"],
        "PSQL": params["psql"],
        "URI": params["uri"],
        "TABLE": params["table"],
    }
    return _command(["bash", "-c", script], env)


def _request(params: dict):
    from include.source.months import Month
    from include.source.sources import MonthRequest

    return MonthRequest(params["taxi"], Month.parse(params["month"]), params["source"], params["url"])


def load(params: dict) -> Work:
    """Our load function alone: ``stage`` then ``publish`` of ``taxi_api_to_postgres`` on the local
    ``input`` into schema ``schema`` (no download, no Airflow)."""
    import psycopg

    from include.destinations.postgres import Postgres
    from include.flows.load_month import publish, stage

    request = _request(params)

    def run() -> int:
        with Postgres(psycopg.connect(params["uri"]), params["schema"]) as destination:
            staged = stage(destination, Path(params["input"]), request, "bench")
            return publish(destination, staged)["rows"]

    return Work(run, in_process=True)


def copy(params: dict) -> Work:
    """The month's stream (read, clean, profile) copied into the existing ``schema.table`` with
    ``include.destinations.postgres.copy_batches``, by ``writer``: ``numpy`` (our encoder) or ``adbc``."""
    import psycopg
    from psycopg import sql

    from include.destinations.postgres import copy_batches
    from include.source.month_file import MonthFile

    request = _request(params)
    target = sql.Identifier(params["schema"], params["table"])

    def run() -> int:
        month_file = MonthFile(Path(params["input"]), request)
        batches = month_file.batches()
        with psycopg.connect(params["uri"]) as conn, conn.cursor() as cursor:
            columns = request.schema.table_schema.names
            return copy_batches(cursor, target, columns, batches, writer=params["writer"])

    return Work(run, in_process=True)


def course(params: dict) -> Work:
    """The course's ingestion: the whole CSV into a DataFrame, then ``to_sql`` in chunks of 100,000.

    It applies the same two cleaning rules and adds ``source_month``, so it loads the rows ours
    loads and the throughputs compare like for like.
    """
    import pandas as pd
    import sqlalchemy

    from include.source.families import SOURCE_MONTH_COLUMN, schema_for

    request = _request(params)
    schema = schema_for(params["taxi"])
    names = {column.source_name: column.name for column in schema.columns}
    timestamps = [column.source_name for column in schema.columns if column.kind == "timestamp"]
    engine = sqlalchemy.create_engine(params["uri"].replace("postgresql://", "postgresql+psycopg://", 1))

    def run() -> int:
        frame = pd.read_csv(params["input"], parse_dates=timestamps).rename(columns=names)
        frame = frame[frame[schema.pickup_column].notna() & (frame["passenger_count"] != 0)]
        frame = frame.assign(**{SOURCE_MONTH_COLUMN: request.month.first_day})
        frame.to_sql(
            params["table"],
            engine,
            schema=params["schema"],
            if_exists="replace",
            index=False,
            chunksize=100_000,
        )
        return len(frame)

    return Work(run, in_process=True)


def parquet_plain(params: dict) -> Work:
    """Plain pyarrow: ``pyarrow.parquet.read_table`` of the whole file, then its rows as CSV into
    ``psql \\copy`` of the file's columns (the table the parent made from the file's schema)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    command = [params["psql"], "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", params["uri"], "-c"]
    command.append(f"\\copy {params['table']} FROM STDIN (FORMAT csv)")

    def run() -> int:
        table = pq.read_table(params["input"])
        psql = subprocess.Popen(command, stdin=subprocess.PIPE)
        pacsv.write_csv(table, psql.stdin, write_options=pacsv.WriteOptions(include_header=False))
        psql.stdin.close()
        if psql.wait() != 0:
            raise RuntimeError(f"psql exited with {psql.returncode}")
        return table.num_rows

    return Work(run, in_process=True)


def gcs_plain(params: dict) -> Work:
    """Plain pyarrow to the GCS stand-in: ``read_csv`` (inferred types), ``write_table``, one upload."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket = storage.Client(project=params["project"], credentials=AnonymousCredentials()).bucket(
        params["bucket"]
    )

    def run() -> int:
        table = pacsv.read_csv(params["input"])
        pq.write_table(table, params["output"])
        bucket.blob(params["object"]).upload_from_filename(params["output"])
        return table.num_rows

    return Work(run, in_process=True)


def gcs_stage(params: dict) -> Work:
    """Our GCS load alone: ``stage`` of ``taxi_api_to_gcs`` (month file, daily partitions, rejects,
    profile, uploads) on the local ``input``, through ``GCSHook`` and the connection in the env."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from include.destinations.gcs import GCS
    from include.flows.load_month import stage

    request = _request(params)
    destination = GCS(GCSHook("google_cloud_default"), params["bucket"])

    def run() -> int:
        return stage(destination, Path(params["input"]), request, "bench").rows_loaded

    return Work(run, in_process=True)


METHODS: dict[str, Callable[[dict], Work]] = {
    "dag": dag,
    "pipe": pipe,
    "load": load,
    "copy": copy,
    "course": course,
    "parquet_plain": parquet_plain,
    "gcs_plain": gcs_plain,
    "gcs_stage": gcs_stage,
    "dbt_build": dbt_build,
}


def own_peak_rss_mb() -> float:
    """This process's peak RSS since ``exec`` (not inherited from the parent, unlike ru_maxrss)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\s*(\d+) kB", status, re.MULTILINE)[1]) / 1024


def main(argv: list[str]) -> None:
    name, params = argv[1], json.loads(argv[2])
    work = METHODS[name](params)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = time.process_time()
    started = time.perf_counter()
    rows = work.run()
    seconds = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_cpu = (children.ru_utime - children_before.ru_utime) + (
        children.ru_stime - children_before.ru_stime
    )
    own_cpu = time.process_time() - cpu_before
    peak = own_peak_rss_mb() if work.in_process else children.ru_maxrss / 1024
    if work.in_process and children.ru_maxrss:  # e.g. psql under plain pyarrow: the larger process
        peak = max(peak, children.ru_maxrss / 1024)
    print(
        json.dumps(
            {"rows": rows, "seconds": seconds, "cpu_seconds": own_cpu + children_cpu, "peak_rss_mb": peak}
        )
    )


if __name__ == "__main__":
    main(sys.argv)
