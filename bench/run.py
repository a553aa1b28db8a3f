"""Benchmark the monthly loads (issue 7): ``python -m bench.run [--size smoke|full] [--repeats N]``.

It prepares the inputs from the real green 2020-10 file, starts a private Postgres on a free
port, and runs every method in a fresh process, several times. The runs are interleaved (round
one of every method, then round two, ...) so a slow moment of the machine hits every method alike.
Each run starts on a fresh table and a checkpointed server, outside the timing, and its rows are
counted in the destination afterwards, so a method that loaded the wrong rows fails the benchmark
instead of winning it. It prints a Markdown table and a verdict per target, and writes
``latest.json`` and ``ratios.png`` to the results folder (``bench/results``, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from bench.chart import Bar, write_ratio_chart
from bench.inputs import REPO, SOURCE, cleaned_csv, scaled_month
from bench.methods import TABLE, TAXI
from bench.report import (
    COURSE,
    OURS_PARQUET,
    OURS_POSTGRES,
    PLAIN_PARQUET,
    PSQL_COPY,
    MethodResult,
    Target,
    evaluate,
    markdown_table,
    method_json,
    scaled_key,
)
from include.postgres import SOURCE_MONTH_COLUMN, ensure_table
from include.schema import schema_for
from local_stack.postgres import PostgresServer, server_bin_dir
from local_stack.stack import airflow_env, free_port

# One run of the course's method takes about as long as one round of all the others together.
COURSE_MAX_REPEATS = 3


@dataclass(frozen=True)
class Size:
    """How much data a run uses: the first rows of the real month (None: all) and the multiples."""

    first_rows: int | None
    memory_factors: tuple[int, ...]
    repeats: int


SIZES = {
    # Every method and every output, on a slice, in well under a minute: what CI runs.
    "smoke": Size(first_rows=5_000, memory_factors=(1, 2), repeats=1),
    # Seven runs: on two cores a stray process can slow one or two runs of a method.
    "full": Size(first_rows=None, memory_factors=(1, 5, 10), repeats=7),
}


@dataclass(frozen=True)
class Case:
    """One method on one input: how to run it, and what to do before and after each run."""

    key: str
    label: str
    command: list[str]
    reset: Callable[[], None]
    count_rows: Callable[[], int]
    repeats: int
    expected_rows: int | None = None
    limit_key: str | None = None
    course_key: str | None = None


def run_child(command: list[str], env: dict[str, str]) -> dict:
    """Run a child to completion and return the JSON it prints last (earlier lines are logging)."""
    child = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"{command[:4]} exited with {child.returncode}:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def measure(case: Case, env: dict[str, str]) -> dict:
    """One run of ``case`` on a fresh destination, its rows checked against the destination's count."""
    case.reset()
    reported = run_child(case.command, env)
    rows = case.count_rows()
    if reported["rows"] != rows:
        raise RuntimeError(f"{case.key} reported {reported['rows']} rows but its destination has {rows}")
    if case.expected_rows is not None and rows != case.expected_rows:
        raise RuntimeError(f"{case.key} loaded {rows} rows, expected {case.expected_rows}")
    return reported


def measure_all(cases: list[Case], env: dict[str, str]) -> dict[str, MethodResult]:
    """Run every case its number of times, interleaved round by round; progress goes to stderr."""
    results = {
        case.key: MethodResult(case.key, case.label, 0, [], [], case.limit_key, case.course_key)
        for case in cases
    }
    rounds = max(case.repeats for case in cases)
    for round_number in range(1, rounds + 1):
        for case in cases:
            if round_number > case.repeats:
                continue
            run = measure(case, env)
            result = results[case.key]
            result.rows = run["rows"]
            result.seconds.append(run["seconds"])
            result.peak_rss_mb.append(run["peak_rss_mb"])
            print(
                f"round {round_number}/{rounds} {case.key}: {run['rows']:,} rows in {run['seconds']:.3f} s, "
                f"peak RSS {run['peak_rss_mb']:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
    return results


class Warehouse:
    """The benchmark's Postgres as the parent sees it: fresh schemas before a run, counts after."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def fresh_schema(self, name: str) -> None:
        """Drop ``name`` with its tables and checkpoint, so no run pays for the previous one's WAL."""
        self.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        self.conn.execute("CHECKPOINT")

    def count(self, schema_name: str) -> int:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema_name, TABLE))
        return self.conn.execute(query).fetchone()[0]


def table_columns() -> pa.Schema:
    """The columns of the table ``include.postgres.replace_month`` creates, for the baselines' tables."""
    return schema_for(TAXI).snake_case_arrow_schema.append(pa.field(SOURCE_MONTH_COLUMN, pa.date32(), False))


def python_method(name: str, **params: str) -> list[str]:
    return [sys.executable, "-m", "bench.methods", name, json.dumps(params)]


def build_cases(
    server: PostgresServer,
    warehouse: Warehouse,
    month_files: dict[int, Path],
    cleaned: Path,
    kept_rows: int,
    output_dir: Path,
    repeats: int,
) -> list[Case]:
    """Every method of the benchmark; the first five are compared, the rest scale ours up."""

    def fresh(name: str) -> Callable[[], None]:
        return lambda: warehouse.fresh_schema(name)

    def fresh_copy_table() -> None:
        warehouse.fresh_schema("bench_copy")
        ensure_table(warehouse.conn, "bench_copy", TABLE, table_columns(), SOURCE_MONTH_COLUMN)

    def counted(name: str) -> Callable[[], int]:
        return lambda: warehouse.count(name)

    def parquet_output(name: str) -> tuple[Path, Callable[[], None], Callable[[], int]]:
        path = output_dir / f"{name}.parquet"
        return path, lambda: path.unlink(missing_ok=True), lambda: pq.ParquetFile(path).metadata.num_rows

    quoted_path = str(cleaned).replace("'", "''")
    copy_statement = (
        f"\\copy bench_copy.{TABLE} ({', '.join(table_columns().names)}) "
        f"FROM '{quoted_path}' WITH (FORMAT csv)"
    )
    ours_output, ours_unlink, ours_count = parquet_output("ours")
    plain_output, plain_unlink, plain_count = parquet_output("plain")
    month = str(month_files[1])
    compared = {"limit_key": PSQL_COPY, "course_key": COURSE}
    cases = [
        Case(
            OURS_POSTGRES,
            "ours → Postgres: `load_month_to_postgres`",
            python_method("ours_postgres", input=month, uri=server.uri, schema="bench_ours"),
            fresh("bench_ours"),
            counted("bench_ours"),
            repeats,
            kept_rows,
            **compared,
        ),
        Case(
            PSQL_COPY,
            "limit: `psql \\copy` of the cleaned CSV",
            python_method(
                "psql_copy", psql=str(server_bin_dir() / "psql"), uri=server.uri, statement=copy_statement
            ),
            fresh_copy_table,
            counted("bench_copy"),
            repeats,
            kept_rows,
            **compared,
        ),
        Case(
            COURSE,
            "course: pandas `read_csv` + `to_sql`",
            python_method("course_postgres", input=month, uri=server.uri, schema="bench_course"),
            fresh("bench_course"),
            counted("bench_course"),
            min(repeats, COURSE_MAX_REPEATS),
            kept_rows,
            **compared,
        ),
        Case(
            OURS_PARQUET,
            "ours → Parquet: `iter_batches` + `clean` + `write_parquet`",
            python_method("ours_parquet", input=month, output=str(ours_output)),
            ours_unlink,
            ours_count,
            repeats,
            kept_rows,
            limit_key=PLAIN_PARQUET,
        ),
        Case(
            PLAIN_PARQUET,
            "limit: pyarrow `read_csv` + `write_table`",
            python_method("plain_parquet", input=month, output=str(plain_output)),
            plain_unlink,
            plain_count,
            repeats,
            limit_key=PLAIN_PARQUET,
        ),
    ]
    for factor, path in month_files.items():
        if factor != 1:
            cases.append(
                Case(
                    scaled_key(factor),
                    f"ours → Postgres, month x{factor}",
                    python_method("ours_postgres", input=str(path), uri=server.uri, schema="bench_ours"),
                    fresh("bench_ours"),
                    counted("bench_ours"),
                    repeats,
                    kept_rows * factor,
                )
            )
    return cases


def machine() -> dict[str, object]:
    """What the numbers were measured on, as the README quotes it."""
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
        "packages": {name: metadata.version(name) for name in ("pyarrow", "pandas", "psycopg", "SQLAlchemy")},
    }


def parse_dags(env: dict[str, str]) -> dict:
    """Time the DAG folder's parse in a fresh interpreter (see ``bench.dag_parse``)."""
    return run_child([sys.executable, "-m", "bench.dag_parse"], env)


def chart_bars(targets: list[Target]) -> list[Bar]:
    """The speed targets as bars; memory and parse time are limits, not ratios, and stay in the table."""
    captions = {
        "postgres_vs_copy": "API -> Postgres vs psql \\copy",
        "postgres_vs_course": "API -> Postgres vs pandas to_sql",
        "parquet_vs_plain": "API -> Parquet vs plain pyarrow",
    }
    return [
        Bar(f"{captions[t.name]}: {t.value:.2f}x (target {t.target:g}x)", t.value, t.target)
        for t in targets
        if t.name in captions
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--repeats", type=int, help="runs per method (default: 1 smoke, 7 full)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="output folder")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    repeats = args.repeats or size.repeats
    input_dir, output_dir = args.results / "input", args.results / "output"
    output_dir.mkdir(parents=True, exist_ok=True)

    print(f"Preparing inputs in {input_dir} ...", file=sys.stderr, flush=True)
    month_files = {factor: scaled_month(input_dir, factor, size.first_rows) for factor in size.memory_factors}
    cleaned = input_dir / "cleaned.csv"
    kept_rows = cleaned_csv(month_files[1], cleaned)

    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        # Every child gets a throwaway Airflow home: importing the GCS hook imports Airflow.
        env = {**os.environ, **airflow_env(Path(scratch) / "airflow")}
        server = PostgresServer(Path(scratch) / "postgres", free_port())
        server.start()
        try:
            with psycopg.connect(server.uri, autocommit=True) as conn:
                # On two cores an autovacuum of the previous run's table would slow whichever run
                # it overlaps; the benchmark's cluster is thrown away, so nothing needs vacuuming.
                conn.execute("ALTER SYSTEM SET autovacuum = off")
                conn.execute("SELECT pg_reload_conf()")
                warehouse = Warehouse(conn)
                cases = build_cases(server, warehouse, month_files, cleaned, kept_rows, output_dir, repeats)
                results = measure_all(cases, env)
        finally:
            server.stop()
        dag_parse = parse_dags(env)

    targets = evaluate(results, size.memory_factors, dag_parse)
    measured_at = datetime.now(timezone.utc).replace(microsecond=0)
    host = machine()
    course_runs = len(results[COURSE].seconds)

    first_rows = f" (first {size.first_rows:,} rows)" if size.first_rows else ""
    print(
        f"Measured {measured_at:%Y-%m-%d} on {host['cpus']} CPUs ({host['cpu_model']}), "
        f"{host['ram_gb']} GB RAM, {host['postgres']}; input {SOURCE.name}{first_rows}; "
        f"median of {repeats} runs ({course_runs} for the course's method).\n"
    )
    print(markdown_table(results))
    print()
    for target in targets:
        print(f"{'PASS' if target.passed else 'FAIL'}  {target.name}: {target.detail}")

    report = {
        "measured_at": measured_at.isoformat(),
        "size": args.size,
        "repeats": repeats,
        "course_repeats": course_runs,
        "input": {"source": str(SOURCE.relative_to(REPO)), "first_rows": size.first_rows},
        "machine": host,
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
