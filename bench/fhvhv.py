"""High-Volume FHV at size (issue 27 item 3): a 20-million-row month into Postgres and into GCS.

    .venv/bin/python -m bench.fhvhv                  # 20,000,000 rows, 3 rounds: ~25 min
    .venv/bin/python -m bench.fhvhv --rows 200000 --repeats 1   # what CI's smoke test runs

The month is constructed (``local_stack.fhvhv_samples.write_full_month``: each day's real green
trips of January 2024 drawn with replacement, shaped as the TLC's 2024 High-Volume FHV files) into
``bench/cache/`` once. Each round runs, interleaved, on fresh tables and a fresh bucket:

- our Postgres load (``stage`` + ``publish``) of the month, and of the 25,000-trip sample;
- plain pyarrow into Postgres: ``pq.read_table`` of the whole file, then ``psql \\copy`` of it as CSV;
- our GCS load (``stage``: the month file, its day partitions, the profile, the uploads), of the
  month and of the sample.

Targets: our Postgres load at least 1.2x plain pyarrow's speed; each load's largest process peaks
within 20 MB of the same load on the sample. Every destination's rows are checked against the
file's rows with a pickup time (the one cleaning rule a High-Volume FHV file meets).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from bench.inputs import CACHE, REPO
from bench.report import MethodResult, markdown_table, method_json
from bench.run import PSQL, Case, Warehouse, emptied_bucket, machine, measure_all, parquet_table_columns
from include.destinations.gcs import profile_object, staging_prefix
from local_stack import fhvhv_samples
from local_stack.postgres import PostgresServer
from local_stack.stack import LOCAL_PROJECT, Stack, airflow_env, free_port, google_cloud_env

TAXI = "fhvhv"
MONTH = "2024-01"
FULL_ROWS = 20_000_000
MIN_LOAD_SPEED_RATIO = 1.2
MAX_RSS_GROWTH_MB = 20.0


def full_month(rows: int) -> Path:
    """The constructed month of ``rows`` trips, made once into ``bench/cache``."""
    path = CACHE / f"fhvhv_{rows}" / "trip-data" / f"fhvhv_tripdata_{MONTH}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"Constructing {rows:,} High-Volume FHV trips into {path} ...", file=sys.stderr, flush=True)
        fhvhv_samples.write_full_month(path, rows)
    return path


def kept_rows(path: Path) -> int:
    """Rows with a pickup time, counted by plain pyarrow."""
    return pc.sum(pc.is_valid(pq.read_table(path, columns=["pickup_datetime"])["pickup_datetime"])).as_py()


def build_cases(warehouse: Warehouse, big: Path, small: Path, bucket: str) -> list[Case]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    uri = warehouse.server.uri
    client = storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials())

    fresh, fresh_bucket = warehouse.fresh, emptied_bucket(bucket)

    def staged_rows() -> int:
        staged = f"{staging_prefix(TAXI, MONTH, 'bench')}/{profile_object(TAXI, MONTH)}"
        return json.loads(client.bucket(bucket).blob(staged).download_as_bytes())["rows_loaded"]

    def request(path: Path) -> dict:
        return {"taxi": TAXI, "month": MONTH, "source": "tlc", "url": f"file://{path}", "input": str(path)}

    count = warehouse.counted
    # Read once each: counting the month's pickups reads a 20-million-row column.
    big_kept, small_kept = kept_rows(big), kept_rows(small)

    plain_table = sql.SQL("CREATE TABLE bench_fhvhv_plain.trips ({})").format(parquet_table_columns(big))
    tripdata = f"{TAXI}_tripdata"
    return [
        Case(
            "fhvhv_load",
            f"our Postgres load (`stage` + `publish`), High-Volume FHV, {big_kept:,} rows",
            "load",
            {**request(big), "uri": uri, "schema": "bench_fhvhv"},
            fresh("bench_fhvhv"),
            count("bench_fhvhv", tripdata),
            big_kept,
            baseline="fhvhv_plain",
        ),
        Case(
            "fhvhv_plain",
            "plain `pq.read_table` + `psql \\copy`, the same file",
            "parquet_plain",
            {"input": str(big), "psql": PSQL, "uri": uri, "table": "bench_fhvhv_plain.trips"},
            fresh("bench_fhvhv_plain", plain_table),
            count("bench_fhvhv_plain", "trips"),
            pq.ParquetFile(big).metadata.num_rows,
            baseline="fhvhv_plain",
        ),
        Case(
            "fhvhv_load_sample",
            f"our Postgres load, the sample ({small_kept:,} rows)",
            "load",
            {**request(small), "uri": uri, "schema": "bench_fhvhv_sample"},
            fresh("bench_fhvhv_sample"),
            count("bench_fhvhv_sample", tripdata),
            small_kept,
        ),
        Case(
            "fhvhv_gcs",
            "our GCS load (`stage`: month, day partitions, profile, uploads), the same file",
            "gcs_stage",
            {**request(big), "bucket": bucket},
            fresh_bucket,
            staged_rows,
            big_kept,
        ),
        Case(
            "fhvhv_gcs_sample",
            "our GCS load, the sample",
            "gcs_stage",
            {**request(small), "bucket": bucket},
            fresh_bucket,
            staged_rows,
            small_kept,
        ),
    ]


def judge(results: dict[str, MethodResult]) -> list[tuple[bool, str]]:
    """The verdict on each target whose methods ran."""
    verdicts = []
    if {"fhvhv_load", "fhvhv_plain"} <= results.keys():
        load, plain = results["fhvhv_load"], results["fhvhv_plain"]
        speed = plain.wall / load.wall
        verdicts.append(
            (
                speed >= MIN_LOAD_SPEED_RATIO,
                f"Postgres load at {speed:.2f}x plain pyarrow + psql's speed ({load.wall:.1f} s against "
                f"{plain.wall:.1f} s on {load.rows:,} rows; target >= {MIN_LOAD_SPEED_RATIO}x)",
            )
        )
    for big, small, what in (
        ("fhvhv_load", "fhvhv_load_sample", "Postgres"),
        ("fhvhv_gcs", "fhvhv_gcs_sample", "GCS"),
    ):
        if not {big, small} <= results.keys():
            continue
        growth = results[big].peak - results[small].peak
        verdicts.append(
            (
                growth <= MAX_RSS_GROWTH_MB,
                f"{what} load peaks at {results[big].peak:.0f} MB on {results[big].rows:,} rows, "
                f"{growth:+.0f} MB from the sample's {results[small].peak:.0f} MB "
                f"(target within {MAX_RSS_GROWTH_MB:g} MB)",
            )
        )
    return verdicts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fhvhv", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help="trips in the constructed month")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="output folder")
    parser.add_argument("--only", type=lambda value: set(value.split(",")), help="method keys to run")
    args = parser.parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    big, small = full_month(args.rows), fhvhv_samples.DESTINATION

    with tempfile.TemporaryDirectory(prefix="bench-fhvhv-") as folder:
        scratch = Path(folder)
        stack = Stack(scratch / "cloud", gcs_port=free_port(), bigquery_port=free_port())
        server = PostgresServer(scratch / "postgres", free_port())
        cloud = google_cloud_env(stack.gcs_port, stack.bigquery_port)
        env = {**os.environ, **airflow_env(scratch / "airflow"), **cloud}
        try:
            stack.gcs_emulator.start()
            server.start()
            os.environ.update(cloud)  # the parent's bucket resets
            with psycopg.connect(server.uri, autocommit=True) as conn:
                conn.execute("ALTER SYSTEM SET autovacuum = off")  # as bench.run: a thrown-away cluster
                conn.execute("SELECT pg_reload_conf()")
                warehouse = Warehouse(server, conn)
                cases = build_cases(warehouse, big, small, f"bench-{uuid.uuid4().hex[:8]}")
                if args.only:
                    cases = [case for case in cases if case.key in args.only]
                results, load_averages = measure_all(cases, env, warehouse, args.repeats)
        finally:
            server.stop()
            stack.gcs_emulator.stop()

    verdicts = judge(results)
    low, middle, high = min(load_averages), statistics.median(load_averages), max(load_averages)
    print(
        f"{machine()}; median of {args.repeats} runs; "
        f"1-minute load average {low:.1f} to {high:.1f} (median {middle:.1f})\n"
    )
    print(markdown_table(results))
    print()
    for passed, detail in verdicts:
        print(f"{'PASS' if passed else 'FAIL'}  {detail}")
    report = {
        "rows": args.rows,
        "repeats": args.repeats,
        "machine": machine(),
        "methods": [method_json(results, result) for result in results.values()],
        "verdicts": [{"passed": passed, "detail": detail} for passed, detail in verdicts],
    }
    (args.results / "fhvhv.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
