"""Benchmark the monthly loads at full-month size: ``python -m bench.run [--size smoke|full]``.

It makes the inputs (``bench.inputs``, cached), starts a private Postgres, TLC stand-ins serving
the month files, the GCS stand-in and an Airflow home of its own, then runs every method in a
fresh process, several times, interleaved round by round so a slow moment of the machine hits
every method alike:

- ``airflow dags test taxi_api_to_postgres`` (one family, one month) on the full month and on the
  sample month (the real file), against the plain pipe ``curl | gunzip | psql \\copy`` of the
  full month;
- ``airflow dags test airflow_floor`` (``bench/dags/``, two tasks that do nothing, in an Airflow
  home of its own): Airflow's own share of any DAG run, to tell it from ours;
- our load function alone (``stage`` + ``publish``) on the same month;
- ``copy_batches`` with our encoder and with ADBC's ``adbc_ingest`` at 1x and 10x the real month;
- the course's pandas ``to_sql`` at 1x;
- the load from the TLC's Parquet at 1x and 10x against plain ``read_table`` + ``psql \\copy``;
- ``taxi_api_to_gcs`` (whole DAG, and ``stage`` alone) against plain pyarrow CSV -> Parquet and
  one upload to the GCS stand-in.

Each run starts on a fresh destination and a checkpointed server, outside the timing, and its
rows are counted in the destination afterwards against rows computed independently from the
file, so a method that loaded the wrong rows fails the benchmark instead of winning it.
Postgres's CPU per run is what its backends used (the postmaster's reaped children). It prints a
Markdown table and a verdict per target, and writes ``latest.json`` and ``ratios.png`` to the
results folder (``bench/results``, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from bench.chart import Bar, write_ratio_chart
from bench.inputs import CSV_MONTH, PARQUET_MONTH, REPO, TAXI, Recipe, csv_month, parquet_month
from bench.report import (
    DAG_BIG,
    DAG_FLOOR,
    DAG_SMALL,
    DBT_BIG,
    DBT_SMALL,
    GCS_DAG,
    GCS_PLAIN,
    GCS_STAGE,
    LOAD,
    PIPE,
    MethodResult,
    Target,
    evaluate,
    markdown_table,
    method_json,
)
from include.destinations.gcs import profile_object, staging_prefix
from include.destinations.postgres import ensure_table
from include.source.families import schema_for
from local_stack.postgres import DATABASE as POSTGRES_DATABASE
from local_stack.postgres import USER as POSTGRES_USER
from local_stack.postgres import PostgresServer, server_bin_dir
from local_stack.stack import LOCAL_PROJECT, Stack, airflow_env, free_port, google_cloud_env
from local_stack.tlc_server import serve_in_thread

AIRFLOW = str(Path(sys.executable).parent / "airflow")
PSQL = str(server_bin_dir() / "psql")
DAG_CONF = {"taxis": [TAXI], "month": str(CSV_MONTH)}


@dataclass(frozen=True)
class Size:
    """The inputs of a run and how often each method runs."""

    big: Recipe  # the full month
    small: Recipe  # the sample month: our overhead beyond the floor, and the memory compared with
    factors: dict[int, Recipe]  # 1x and 10x the real months, for the encoders and Parquet
    repeats: int


SIZES = {
    # Every method and every output on slices of the real months, in a few minutes: what CI runs.
    "smoke": Size(
        Recipe(2, 5_000, blocks=True), Recipe(1, 2_000), {1: Recipe(1, 3_000), 2: Recipe(2, 3_000)}, 1
    ),
    "full": Size(Recipe(75, blocks=True), Recipe(1), {1: Recipe(1), 10: Recipe(10)}, 3),
}


@dataclass(frozen=True)
class Case:
    """One method on one input: how to run it, and what to do before and after each run."""

    key: str
    label: str
    method: str
    params: dict
    reset: Callable[[], None]
    count_rows: Callable[[], int]
    expected_rows: int
    baseline: str | None = None
    repeats: int | None = None


def kept_rows(path: Path) -> int:
    """The rows the cleaning rules keep, counted by plain pyarrow: a pickup, and not 0 passengers."""
    if path.suffix == ".parquet":
        table = pq.read_table(path, columns=["lpep_pickup_datetime", "passenger_count"])
    else:
        options = pacsv.ConvertOptions(include_columns=["lpep_pickup_datetime", "passenger_count"])
        table = pacsv.read_csv(path, convert_options=options)
    kept = pc.and_(
        pc.is_valid(table["lpep_pickup_datetime"]),
        pc.fill_null(pc.not_equal(table["passenger_count"], 0), True),
    )
    return pc.sum(kept).as_py()


def file_rows(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=["VendorID"])).num_rows


def run_child(command: list[str], env: dict[str, str]) -> dict:
    """Run a child to completion and return the JSON it prints last (earlier lines are logging)."""
    child = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, check=False)
    if child.returncode != 0:
        # The whole log is kept: the first error of a chained traceback is often far from the end.
        log = Path(tempfile.mkstemp(prefix="bench-failed-", suffix=".log")[1])
        log.write_text(child.stderr)
        raise RuntimeError(
            f"{command[:4]} exited with {child.returncode} (its whole log: {log}):\n{child.stderr[-3000:]}"
        )
    return json.loads(child.stdout.strip().splitlines()[-1])


class Warehouse:
    """The benchmark's Postgres as the parent sees it: fresh schemas, counts, and its CPU."""

    def __init__(self, server: PostgresServer, conn: psycopg.Connection) -> None:
        self.server, self.conn = server, conn

    def fresh_schema(self, name: str) -> None:
        """Drop ``name`` with its tables and checkpoint, so no run pays for the previous one's WAL."""
        self.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        self.conn.execute("CHECKPOINT")

    def fresh(self, schema_name: str, create: sql.Composable | None = None) -> Callable[[], None]:
        """A case's reset: ``schema_name`` fresh, then ``create`` (a table) run in it."""

        def reset() -> None:
            self.fresh_schema(schema_name)
            if create is not None:
                self.conn.execute(create)

        return reset

    def counted(self, schema_name: str, table: str) -> Callable[[], int]:
        """A case's row count: the rows of ``schema_name.table``."""
        return lambda: self.count(schema_name, table)

    def count(self, schema_name: str, table: str) -> int:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema_name, table))
        return self.conn.execute(query).fetchone()[0]

    def backend_cpu_seconds(self) -> float:
        """CPU the server's exited backends used so far: the postmaster's reaped children."""
        pid = int((self.server.data_dir / "postmaster.pid").read_text().split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def measure(case: Case, env: dict[str, str], warehouse: Warehouse) -> dict:
    """One run of ``case`` on a fresh destination, its rows checked against the destination's count."""
    case.reset()
    server_before = warehouse.backend_cpu_seconds()
    load_before = os.getloadavg()[0]
    reported = run_child([sys.executable, "-m", "bench.methods", case.method, json.dumps(case.params)], env)
    time.sleep(0.5)  # let the postmaster reap the run's backends
    reported["postgres_cpu_seconds"] = warehouse.backend_cpu_seconds() - server_before
    reported["load_average"] = (load_before, os.getloadavg()[0])
    rows = case.count_rows()
    if reported["rows"] is not None and reported["rows"] != rows:
        raise RuntimeError(f"{case.key} reported {reported['rows']} rows but its destination has {rows}")
    if rows != case.expected_rows:
        raise RuntimeError(f"{case.key} loaded {rows} rows, expected {case.expected_rows}")
    reported["rows"] = rows
    return reported


def measure_all(
    cases: list[Case], env: dict[str, str], warehouse: Warehouse, repeats: int
) -> tuple[dict, list]:
    """Run every case its number of times, interleaved round by round; progress goes to stderr."""
    results = {case.key: MethodResult(case.key, case.label, case.baseline) for case in cases}
    load_averages = []
    for round_number in range(1, repeats + 1):
        for case in cases:
            if round_number > (case.repeats or repeats):
                continue
            run = measure(case, env, warehouse)
            result = results[case.key]
            result.rows = run["rows"]
            result.seconds.append(run["seconds"])
            result.cpu_seconds.append(run["cpu_seconds"])
            result.server_cpu_seconds.append(run["postgres_cpu_seconds"])
            result.peak_rss_mb.append(run["peak_rss_mb"])
            load_averages.extend(run["load_average"])
            print(
                f"round {round_number}/{repeats} {case.key}: {run['rows']:,} rows in {run['seconds']:.2f} s, "
                f"CPU {run['cpu_seconds']:.2f} s + Postgres {run['postgres_cpu_seconds']:.2f} s, "
                f"peak RSS {run['peak_rss_mb']:.0f} MB, load average {run['load_average'][0]:.1f}",
                file=sys.stderr,
                flush=True,
            )
    return results, load_averages


def csv_table_columns() -> sql.Composed:
    """The CSV's own columns with their declared types: the pipe's typed table."""
    types = {"int": "bigint", "float": "double precision", "timestamp": "timestamp", "text": "text"}
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column.source_name), sql.SQL(types[column.kind]))
        for column in schema_for(TAXI).columns
        if column.name != "cbd_congestion_fee"  # not in the 2020 file
    )


def parquet_table_columns(path: Path) -> sql.Composed:
    """The Parquet file's own columns and types: plain pyarrow's table."""

    def postgres_type(kind: pa.DataType) -> str:
        if pa.types.is_integer(kind):
            return "bigint"
        if pa.types.is_floating(kind):
            return "double precision"
        if pa.types.is_timestamp(kind):
            return "timestamp"
        return "text"

    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(field.name), sql.SQL(postgres_type(field.type)))
        for field in pq.read_schema(path)
    )


def emptied_bucket(bucket: str) -> Callable[[], None]:
    """A case's reset: ``bucket`` on the GCS stand-in, created or emptied."""

    def reset() -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials())
        found = client.bucket(bucket)
        if found.exists():
            for blob in client.list_blobs(found):
                blob.delete()
        else:
            client.create_bucket(bucket)

    return reset


def floor_airflow_env(scratch: Path) -> dict[str, str]:
    """An Airflow home of its own under ``scratch`` for ``bench/dags/``: `airflow dags test` parses
    one bundle, and pointing the main home's bundle at another folder would mark our DAGs stale
    between runs."""
    home = scratch / "airflow-floor"
    return {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "bench" / "dags")}


def build_cases(
    warehouse: Warehouse, size: Size, urls: dict[str, str], gcs: dict[str, str], scratch: Path
) -> list[Case]:
    """Every method of the benchmark, in the order of the table."""
    uri = warehouse.server.uri
    big, small = csv_month(size.big), csv_month(size.small)
    big_kept, small_kept = kept_rows(big), kept_rows(small)
    tripdata = f"{TAXI}_tripdata"
    floor_env = floor_airflow_env(scratch)

    fresh = warehouse.fresh

    def counted(schema_name: str, table: str = tripdata) -> Callable[[], int]:
        return warehouse.counted(schema_name, table)

    def request(path: Path, source: str) -> dict:
        month = CSV_MONTH if source == "mirror" else PARQUET_MONTH
        return {
            "taxi": TAXI,
            "month": str(month),
            "source": source,
            "url": f"file://{path}",
            "input": str(path),
        }

    def dag_env(schema_name: str, base_url: str) -> dict:
        return {
            "AIRFLOW_VAR_PG_SCHEMA": schema_name,
            "AIRFLOW_VAR_MIRROR_BASE_URL": base_url,
            "AIRFLOW_VAR_TLC_BASE_URL": base_url,
        }

    def dbt_case(key: str, schema_name: str, loaded_by: str, kept: int) -> Case:
        """dbt build of every model on the month the DAG case ``loaded_by`` left in ``schema_name``
        (it runs right after that case in each round); the models are dropped first, so each build
        is a first build. Its rows: the family's staging model, every loaded row."""

        def reset() -> None:
            if (
                warehouse.conn.execute("SELECT to_regclass(%s)", (f"{schema_name}.{tripdata}",)).fetchone()[0]
                is None
            ):
                raise RuntimeError(f"{key} builds on what {loaded_by} loads: run them together")
            for model in ("dm_monthly_zone_revenue", "fact_trips", "dim_zones", "taxi_zones"):
                warehouse.conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema_name, model))
                )

        return Case(
            key,
            f"`dbt build` of the warehouse models on those {kept:,} rows (every model and test, dbt's parse)",
            "dbt_build",
            {"months": "", "env": dbt_env(schema_name)},
            reset,
            counted(schema_name, f"stg_{TAXI}_tripdata"),
            kept,
        )

    def dbt_env(schema_name: str) -> dict:
        return {
            "NYC_TAXI_PG_HOST": "127.0.0.1",
            "NYC_TAXI_PG_PORT": str(warehouse.server.port),
            "NYC_TAXI_PG_USER": POSTGRES_USER,
            "NYC_TAXI_PG_PASSWORD": warehouse.server.password,
            "NYC_TAXI_PG_DATABASE": POSTGRES_DATABASE,
            "NYC_TAXI_SCHEMA": schema_name,
        }

    pipe_table = sql.SQL("CREATE TABLE bench_pipe.trips ({})").format(csv_table_columns())
    cases = [
        Case(
            DAG_BIG,
            f"`airflow dags test taxi_api_to_postgres`, {big_kept:,} of {file_rows(big):,} rows",
            "dag",
            {"dag_id": "taxi_api_to_postgres", "conf": DAG_CONF, "env": dag_env("bench_dag", urls["big"])},
            fresh("bench_dag"),
            counted("bench_dag"),
            big_kept,
            baseline=PIPE,
        ),
        dbt_case(DBT_BIG, "bench_dag", DAG_BIG, big_kept),
        Case(
            PIPE,
            "plain pipe: `curl \\| gunzip \\| psql \\copy` (CSV, every row)",
            "pipe",
            {"url": urls["big_file"], "psql": PSQL, "uri": uri, "table": "bench_pipe.trips"},
            fresh("bench_pipe", pipe_table),
            counted("bench_pipe", "trips"),
            file_rows(big),
            baseline=PIPE,
        ),
        Case(
            LOAD,
            "our load function alone: `stage` + `publish`",
            "load",
            {**request(big, "mirror"), "uri": uri, "schema": "bench_load"},
            fresh("bench_load"),
            counted("bench_load"),
            big_kept,
            baseline=PIPE,
        ),
        Case(
            DAG_SMALL,
            f"`airflow dags test taxi_api_to_postgres`, {small_kept:,} rows",
            "dag",
            {
                "dag_id": "taxi_api_to_postgres",
                "conf": DAG_CONF,
                "env": dag_env("bench_dag_small", urls["small"]),
            },
            fresh("bench_dag_small"),
            counted("bench_dag_small"),
            small_kept,
        ),
        dbt_case(DBT_SMALL, "bench_dag_small", DAG_SMALL, small_kept),
        Case(
            DAG_FLOOR,
            "`airflow dags test airflow_floor` (`bench/dags/`: two tasks that do nothing)",
            "dag",
            {"dag_id": "airflow_floor", "conf": {}, "env": floor_env},
            lambda: None,
            lambda: 0,  # it loads nothing; a failed run fails the benchmark (`airflow dags test` exits 1)
            0,
        ),
    ]

    def fresh_copy_table() -> None:
        warehouse.fresh_schema("bench_copy")
        ensure_table(warehouse.conn, "bench_copy", tripdata, schema_for(TAXI).table_schema)

    for factor, recipe in size.factors.items():
        path = csv_month(recipe)
        kept = kept_rows(path)
        for writer, label in (("numpy", "ours (numpy)"), ("adbc", "ADBC `adbc_ingest`")):
            cases.append(
                Case(
                    f"copy_{writer}_x{factor}",
                    f"`copy_batches` with {label}, month x{factor}",
                    "copy",
                    {
                        **request(path, "mirror"),
                        "uri": uri,
                        "schema": "bench_copy",
                        "table": tripdata,
                        "writer": writer,
                    },
                    fresh_copy_table,
                    counted("bench_copy"),
                    kept,
                    baseline=f"copy_numpy_x{factor}",
                )
            )
    real = csv_month(size.factors[1])
    cases.append(
        Case(
            "course",
            "course: pandas `read_csv` + `to_sql`, month x1",
            "course",
            {**request(real, "mirror"), "uri": uri, "schema": "bench_course", "table": tripdata},
            fresh("bench_course"),
            counted("bench_course"),
            kept_rows(real),
            baseline="copy_numpy_x1",
            repeats=1,
        )
    )
    for factor, recipe in size.factors.items():
        path = parquet_month(recipe)
        plain_table = sql.SQL("CREATE TABLE bench_pplain.trips ({})").format(parquet_table_columns(path))
        cases += [
            Case(
                f"load_parquet_x{factor}",
                f"our load function, TLC Parquet x{factor}",
                "load",
                {**request(path, "tlc"), "uri": uri, "schema": "bench_parquet"},
                fresh("bench_parquet"),
                counted("bench_parquet"),
                kept_rows(path),
                baseline=f"parquet_plain_x{factor}",
            ),
            Case(
                f"parquet_plain_x{factor}",
                f"plain `pq.read_table` + `psql \\copy`, Parquet x{factor}",
                "parquet_plain",
                {"input": str(path), "psql": PSQL, "uri": uri, "table": "bench_pplain.trips"},
                fresh("bench_pplain", plain_table),
                counted("bench_pplain", "trips"),
                file_rows(path),
                baseline=f"parquet_plain_x{factor}",
            ),
        ]

    fresh_bucket = emptied_bucket(gcs["bucket"])

    def gcs_rows(profile_object: str) -> Callable[[], int]:
        def count() -> int:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            client = storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials())
            return json.loads(client.bucket(gcs["bucket"]).blob(profile_object).download_as_bytes())[
                "rows_loaded"
            ]

        return count

    def uploaded_rows(object_name: str, local: Path) -> Callable[[], int]:
        def count() -> int:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            client = storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials())
            client.bucket(gcs["bucket"]).blob(object_name).download_to_filename(local)
            return pq.ParquetFile(local).metadata.num_rows

        return count

    published_profile = profile_object(TAXI, CSV_MONTH)
    staged_profile = f"{staging_prefix(TAXI, CSV_MONTH, 'bench')}/{published_profile}"
    plain_object, plain_file = f"plain/{TAXI}_tripdata_{CSV_MONTH}.parquet", scratch / "plain.parquet"
    cases += [
        Case(
            GCS_DAG,
            "`airflow dags test taxi_api_to_gcs`",
            "dag",
            {"dag_id": "taxi_api_to_gcs", "conf": DAG_CONF, "env": dag_env("bench_dag", urls["big"])},
            fresh_bucket,
            gcs_rows(published_profile),
            big_kept,
            baseline=GCS_PLAIN,
        ),
        Case(
            GCS_STAGE,
            "our GCS load alone: `stage` (month, days, profile, uploads)",
            "gcs_stage",
            {**request(big, "mirror"), "bucket": gcs["bucket"]},
            fresh_bucket,
            gcs_rows(staged_profile),
            big_kept,
            baseline=GCS_PLAIN,
        ),
        Case(
            GCS_PLAIN,
            "plain pyarrow: `read_csv` + `write_table` + one upload",
            "gcs_plain",
            {
                "input": str(big),
                "output": str(scratch / "plain-output.parquet"),
                "bucket": gcs["bucket"],
                "object": plain_object,
                "project": LOCAL_PROJECT,
            },
            fresh_bucket,
            uploaded_rows(plain_object, plain_file),
            file_rows(big),
            baseline=GCS_PLAIN,
        ),
    ]
    return cases


def machine() -> dict[str, object]:
    """What the numbers were measured on, as bench/README.md quotes it."""
    cpu_models = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    mem_total_kb = int(
        re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)[1]
    )
    postgres = subprocess.run(
        [str(server_bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True
    )
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_models[0] if cpu_models else platform.processor(),
        "ram_gb": round(mem_total_kb / 1024**2, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgres": postgres.stdout.strip(),
        "packages": {
            name: metadata.version(name)
            for name in ("apache-airflow", "pyarrow", "psycopg", "adbc-driver-postgresql", "pandas")
        },
    }


def chart_bars(targets: list[Target]) -> list[Bar]:
    """The speed targets as bars of speed against the target speed (memory stays in the table)."""
    bars = []
    for target in targets:
        if target.name == "dag_vs_pipe":  # a wall-time ceiling: drawn as the speed floor it means
            bars.append(
                Bar(
                    f"DAG run vs plain pipe: {1 / target.value:.2f}x speed (target 0.8x)",
                    1 / target.value,
                    0.8,
                )
            )
        elif target.name == "load_vs_pipe":
            bars.append(
                Bar(f"load alone vs plain pipe: {target.value:.2f}x (target 1.5x)", target.value, 1.5)
            )
        elif target.name == "gcs_vs_plain":
            bars.append(
                Bar(f"GCS stage vs plain pyarrow: {target.value:.2f}x (target 0.7x)", target.value, 0.7)
            )
    return bars


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--repeats", type=int, help="runs per method (default: 1 smoke, 3 full)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="output folder")
    parser.add_argument(
        "--only",
        type=lambda value: set(value.split(",")),
        help="comma-separated method keys to run (e.g. load,pipe); targets needing others are not judged",
    )
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    repeats = args.repeats or size.repeats
    args.results.mkdir(parents=True, exist_ok=True)

    print("Preparing inputs in bench/cache ...", file=sys.stderr, flush=True)
    big, small = csv_month(size.big), csv_month(size.small)
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        scratch = Path(folder)
        big_server, big_url = serve_in_thread(big.parent.parent)
        small_server, small_url = serve_in_thread(small.parent.parent)
        stack = Stack(scratch / "cloud", gcs_port=free_port(), bigquery_port=free_port())
        server = PostgresServer(scratch / "postgres", free_port())
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            **airflow_env(scratch / "airflow"),
            **google_cloud_env(stack.gcs_port, stack.bigquery_port),
            "AIRFLOW_VAR_GCS_BUCKET": bucket,
        }
        try:
            stack.gcs_emulator.start()
            server.start()
            env["AIRFLOW_CONN_POSTGRES_DEFAULT"] = server.uri
            for home in ({}, floor_airflow_env(scratch)):
                migrate = [AIRFLOW, "db", "migrate"]
                subprocess.run(migrate, env={**env, **home}, check=True, capture_output=True)
            os.environ.update(google_cloud_env(stack.gcs_port, stack.bigquery_port))  # for fresh_bucket
            with psycopg.connect(server.uri, autocommit=True) as conn:
                # On two cores an autovacuum of the previous run's table would slow whichever run
                # it overlaps; the benchmark's cluster is thrown away, so nothing needs vacuuming.
                conn.execute("ALTER SYSTEM SET autovacuum = off")
                conn.execute("SELECT pg_reload_conf()")
                warehouse = Warehouse(server, conn)
                urls = {
                    "big": big_url,
                    "small": small_url,
                    "big_file": f"{big_url}/{TAXI}/{big.name}",
                }
                cases = build_cases(warehouse, size, urls, {"bucket": bucket}, scratch)
                if args.only:
                    unknown = args.only - {case.key for case in cases}
                    if unknown:
                        parser.error(f"--only: no method(s) {sorted(unknown)}")
                    cases = [case for case in cases if case.key in args.only]
                results, load_averages = measure_all(cases, env, warehouse, repeats)
            dag_parse = run_child([sys.executable, "-m", "bench.dag_parse"], env)
        finally:
            server.stop()
            stack.gcs_emulator.stop()
            big_server.shutdown()
            small_server.shutdown()

    targets = evaluate(results, dag_parse)
    measured_at = datetime.now(timezone.utc).replace(microsecond=0)
    host = machine()
    noise = {
        "load_average_min": min(load_averages),
        "load_average_median": statistics.median(load_averages),
        "load_average_max": max(load_averages),
    }
    print(
        f"Measured {measured_at:%Y-%m-%d} on {host['cpus']} CPUs ({host['cpu_model']}), "
        f"{host['ram_gb']} GB RAM, "
        f"{host['postgres']}; median of {repeats} runs; 1-minute load average during the runs "
        f"{noise['load_average_min']:.1f} to {noise['load_average_max']:.1f} "
        f"(median {noise['load_average_median']:.1f}).\n"
    )
    print(markdown_table(results))
    print()
    for target in targets:
        print(f"{'PASS' if target.passed else 'FAIL'}  {target.name}: {target.detail}")
    for factor in size.factors:
        if not {f"copy_numpy_x{factor}", f"copy_adbc_x{factor}"} <= results.keys():
            continue
        ours, adbc = results[f"copy_numpy_x{factor}"], results[f"copy_adbc_x{factor}"]
        print(
            f"encoders x{factor}: ours {ours.rows_per_second:,.0f} rows/s, {ours.peak:.0f} MB; "
            f"ADBC {adbc.rows_per_second:,.0f} rows/s, {adbc.peak:.0f} MB; "
            f"ours at {adbc.wall / ours.wall:.2f}x ADBC's speed"
        )

    report = {
        "measured_at": measured_at.isoformat(),
        "size": args.size,
        "repeats": repeats,
        "inputs": {"big": asdict(size.big), "small": asdict(size.small)},
        "machine": host,
        "noise": noise,
        "methods": [method_json(results, result) for result in results.values()],
        "dag_parse": dag_parse,
        "targets": [asdict(target) for target in targets],
    }
    (args.results / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    write_ratio_chart(
        args.results / "ratios.png",
        f"NYC taxi benchmark {measured_at:%Y-%m-%d}: speed against each target",
        chart_bars(targets),
    )
    print(f"\nWrote {args.results / 'latest.json'} and {args.results / 'ratios.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
