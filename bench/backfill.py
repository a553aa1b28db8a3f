"""A year's backfill under the scheduler against the plain pipe: ``python -m bench.backfill``.

``--size smoke`` is what CI runs; ``full`` (the default) is the measurement.

Twelve green months (``bench.inputs.moved_month``: the real October 2020 file moved into each
month of 2020, each block of 2,000 rows repeated 12 times, over a million trips a month) are
served by a TLC stand-in. A private Postgres holds the warehouse and Airflow's metadata; Airflow
runs as a deployment does, api-server, scheduler, dag-processor and triggerer
(``local_stack.airflow_processes``: LocalExecutor, the pools of ``config/pools.json``), driven
through its REST API (``local_stack.scheduler_api``). Each round, interleaved so a slow moment of
the machine hits every method alike:

- **backfill**: ``taxi_api_to_postgres`` paused, a fresh warehouse schema, a backfill of the
  twelve months with ``{"taxis": ["green"]}`` (reprocessing the previous round's runs), then the
  DAG unpaused: the wall time runs from unpausing to the last run's end (the metadata DB's);
- **pipe x1** and **pipe x2**: ``curl | gunzip | psql \\copy`` (``bench.methods.pipe``'s script)
  over the same twelve files one at a time, then two at a time, into a fresh table.

Each backfill's rows per month are counted in the warehouse against pandas counts of the files
(``local_stack.expected``), each pipe's against the files' rows, so a wrong load fails the
benchmark. CPU is every process of the four Airflow components (tasks included) and, apart,
Postgres's (warehouse and metadata); peak memory is the largest task process's high-water mark
(sampled every 0.1 s). Where the backfill's wall time goes comes from its task instances in the
metadata DB: per task id, the scheduling gap (upstream done -> scheduled), the queue wait
(scheduled -> queued), the start-up (queued -> running: the executor, the fork, parsing the DAG,
the execution API) and the run itself. Writes ``bench/results/backfill.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg import sql

from bench.inputs import REPO, Recipe, moved_month
from bench.run import Warehouse, csv_table_columns, file_rows
from include.source.months import Month
from local_stack import expected
from local_stack.airflow_processes import running_airflow
from local_stack.mirror import months
from local_stack.postgres import PostgresServer, server_bin_dir
from local_stack.scheduler_api import SchedulerHarness
from local_stack.stack import free_port
from local_stack.tlc_server import serve_in_thread

DAG_ID = "taxi_api_to_postgres"
TAXI = "green"
SCHEMA = "bench_backfill"
PSQL = str(server_bin_dir() / "psql")
RESULTS = REPO / "bench" / "results" / "backfill.json"
# bench.methods.pipe's script, one file per call: xargs runs it one or two at a time.
PIPE_SCRIPT = (
    'set -euo pipefail; curl -sSf "$1" | gunzip | "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$URI" '
    '-c "\\copy $TABLE FROM STDIN (FORMAT csv, HEADER)"'
)


@dataclass(frozen=True)
class Size:
    months: tuple[Month, ...]
    recipe: Recipe
    rounds: int


YEAR = tuple(months(Month(2020, 1), Month(2020, 12)))
SIZES = {
    # Three months of 3,000 rows: the scheduler's path end to end, for CI (start-up dominates).
    "smoke": Size(YEAR[:3], Recipe(1, 3_000), 1),
    # Twelve months of 1.07 to 1.14 million trips.
    "full": Size(YEAR, Recipe(12, blocks=True), 3),
}


def counted(path: Path) -> dict[str, int]:
    """The file's rows and the rows the cleaning rules keep (pandas), cached beside the file."""
    cache = path.with_suffix(".counts.json")
    stamp = path.with_suffix(path.suffix + ".stamp").read_text()
    if cache.exists() and json.loads(cache.read_text()).get("stamp") == stamp:
        return json.loads(cache.read_text())
    counts = {"stamp": stamp, "file_rows": file_rows(path), "kept_rows": expected.rows(path)}
    cache.write_text(json.dumps(counts))
    return counts


# --- the processes' CPU and memory, from /proc ------------------------------------------------


def _stat(pid: str) -> list[str] | None:
    """``/proc/pid/stat`` fields after the command name (state is [0], ppid [1], session [3])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _cpu(fields: list[str]) -> float:
    """utime + stime + the reaped children's, in seconds."""
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, list[str]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(entry)) is not None:
            found[int(entry)] = fields
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def airflow_cpu_seconds(sessions: set[int]) -> dict[int, float]:
    """Per session, the CPU of every process in it so far, exited children included: a process
    that ends moves its time into its parent's children's time, so differences add up. The
    scheduler's session holds the LocalExecutor's workers and the task processes."""
    found = dict.fromkeys(sessions, 0.0)
    for fields in _processes().values():
        if int(fields[3]) in sessions:
            found[int(fields[3])] += _cpu(fields)
    return found


def postgres_cpu_seconds(server: PostgresServer) -> float:
    """CPU of the postmaster, its exited backends and its live ones (Airflow keeps connections open)."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    return sum(
        _cpu(fields)
        for pid, fields in _processes().items()
        if pid == postmaster or int(fields[1]) == postmaster
    )


class TaskMemory(threading.Thread):
    """Samples the high-water mark (VmHWM) of every task process in the scheduler's session: the
    LocalExecutor's workers (titled ``airflow worker``, forked from the scheduler or its forkserver)
    supervise each task in a process forked for it."""

    def __init__(self, scheduler_pid: int) -> None:
        super().__init__(daemon=True)
        self.scheduler_pid, self.peak_mb, self.tasks_seen = scheduler_pid, 0.0, set()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            found = {
                pid: fields for pid, fields in _processes().items() if int(fields[3]) == self.scheduler_pid
            }
            workers = {pid for pid in found if _cmdline(pid).startswith(b"airflow worker")}
            for pid, fields in found.items():
                if int(fields[1]) in workers:
                    try:
                        status = Path(f"/proc/{pid}/status").read_text()
                    except (FileNotFoundError, ProcessLookupError):
                        continue
                    hwm = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
                    if hwm:
                        self.tasks_seen.add(pid)
                        self.peak_mb = max(self.peak_mb, int(hwm.split()[1]) / 1024)

    def stop(self) -> None:
        self._done.set()
        self.join()


# --- one backfill, and where its time went -------------------------------------------------------


def task_instances(metadata: psycopg.Connection, backfill_id: int) -> tuple[list[dict], list[dict]]:
    """The backfill's runs and their task instances, as the metadata DB has them."""
    runs = metadata.execute(
        "SELECT run_id, start_date, end_date, state FROM dag_run WHERE dag_id = %s AND backfill_id = %s",
        (DAG_ID, backfill_id),
    ).fetchall()
    tis = metadata.execute(
        "SELECT ti.run_id, ti.task_id, ti.state, ti.scheduled_dttm, ti.queued_dttm, ti.start_date, "
        "ti.end_date FROM task_instance ti "
        "JOIN dag_run dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id "
        "WHERE dr.dag_id = %s AND dr.backfill_id = %s",
        (DAG_ID, backfill_id),
    ).fetchall()
    run_keys = ("run_id", "start_date", "end_date", "state")
    ti_keys = ("run_id", "task_id", "state", "scheduled", "queued", "start", "end")
    return [dict(zip(run_keys, run, strict=True)) for run in runs], [
        dict(zip(ti_keys, ti, strict=True)) for ti in tis
    ]


def parse_seconds(scheduler_log: str) -> dict[str, list[float]]:
    """Per task id, the seconds each task process took to parse its DAG file (part of its run), as
    the task runner logs them through the LocalExecutor into the scheduler's log."""
    found = defaultdict(list)
    for line in scheduler_log.splitlines():
        if "Worker startup parse complete" in line:
            fields = dict(PARSE_FIELD.findall(line))
            found[fields["task_id"]].append(int(fields["dag_file_parse_ms"]) / 1000)
    return found


PARSE_FIELD = re.compile(r"(dag_file_parse_ms|task_id)=(\S+)")


def breakdown(
    runs: list[dict],
    tis: list[dict],
    upstream: dict[str, list[str]],
    parsed: dict[str, list[float]],
    unpaused_at: datetime,
) -> dict[str, dict]:
    """Per task id: instances, and the mean and total seconds of each phase of the ones that ran.

    gap: from the moment its upstream tasks were all done (the run's start for the first task)
    to being scheduled; queue: scheduled -> queued (slots, pools); start-up: queued -> running;
    run: running -> done, of which parse: the task process parsing the DAG file.
    """
    run_start = {run["run_id"]: run["start_date"] for run in runs}
    ended = {(ti["run_id"], ti["task_id"]): ti["end"] for ti in tis}
    phases: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    states: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for ti in tis:
        states[ti["task_id"]][ti["state"]] += 1
        if ti["start"] is None or ti["queued"] is None:  # skipped by the scheduler: no process
            continue
        done = [ended.get((ti["run_id"], up)) for up in upstream.get(ti["task_id"], [])]
        # A reprocessed run's start date is when the backfill cleared it, while the DAG was paused.
        first = max(run_start[ti["run_id"]], unpaused_at)
        ready = max((moment for moment in done if moment is not None), default=first)
        scheduled = ti["scheduled"] or ti["queued"]
        for phase, start, end in (
            ("gap", ready, scheduled),
            ("queue", scheduled, ti["queued"]),
            ("startup", ti["queued"], ti["start"]),
            ("run", ti["start"], ti["end"]),
        ):
            phases[ti["task_id"]][phase].append(max((end - start).total_seconds(), 0.0))
    for task_id, seconds in parsed.items():
        phases[task_id]["parse"] = seconds
    return {
        task_id: {
            "states": dict(states[task_id]),
            **{
                phase: {"mean": statistics.mean(values), "total": sum(values)}
                for phase, values in phases[task_id].items()
            },
        }
        for task_id in sorted(states)
    }


def backfill_round(
    api: SchedulerHarness,
    warehouse: Warehouse,
    metadata: psycopg.Connection,
    month_list: tuple[Month, ...],
    wanted: dict[str, int],
    max_active_runs: int,
    upstream: dict[str, list[str]],
) -> dict:
    api.pause(DAG_ID)
    warehouse.fresh_schema(SCHEMA)
    backfill = api.backfill(
        DAG_ID,
        month_list[0].first_day,
        month_list[-1].first_day,
        reprocess_behavior="completed",
        max_active_runs=max_active_runs,
        conf={"taxis": [TAXI]},
    )
    components = {name: process.pid for name, process in api.airflow.processes.items()}
    sessions = set(components.values())
    scheduler_log = api.airflow.log_file("scheduler")
    log_offset = scheduler_log.stat().st_size
    memory = TaskMemory(api.airflow.processes["scheduler"].pid)
    memory.start()
    load_before, cpu_before_by_session = os.getloadavg()[0], airflow_cpu_seconds(sessions)
    postgres_before = postgres_cpu_seconds(warehouse.server)
    unpaused_at = datetime.now(timezone.utc)
    api.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    api.wait_for_backfill(backfill, timeout=3600)
    cpu_by_session = airflow_cpu_seconds(sessions)
    cpu = sum(cpu_by_session.values()) - sum(cpu_before_by_session.values())
    postgres_cpu = postgres_cpu_seconds(warehouse.server) - postgres_before
    memory.stop()
    runs, tis = task_instances(metadata, backfill["id"])
    failed = [run["run_id"] for run in runs if run["state"] != "success"]
    if failed or len(runs) != len(month_list):
        raise RuntimeError(f"backfill {backfill['id']}: {len(runs)} runs, not successful: {failed}")
    wall = (max(run["end_date"] for run in runs) - unpaused_at).total_seconds()
    query = sql.SQL("SELECT source_month, count(*) FROM {} GROUP BY 1").format(
        sql.Identifier(SCHEMA, f"{TAXI}_tripdata")
    )
    loaded = {str(month)[:7]: count for month, count in warehouse.conn.execute(query).fetchall()}
    if loaded != wanted:
        raise RuntimeError(f"the backfill loaded {loaded}, pandas counts {wanted}")
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "postgres_cpu_seconds": postgres_cpu,
        "peak_task_rss_mb": memory.peak_mb,
        "task_processes": len(memory.tasks_seen),
        "rows": sum(loaded.values()),
        "load_average": [load_before, os.getloadavg()[0]],
        "cpu_seconds_by_component": {
            name: cpu_by_session[pid] - cpu_before_by_session[pid] for name, pid in components.items()
        },
        "tasks": breakdown(
            runs, tis, upstream, parse_seconds(_read_from(scheduler_log, log_offset)), unpaused_at
        ),
    }


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def pipe_round(warehouse: Warehouse, urls: list[str], at_once: int, rows: int) -> dict:
    """The plain pipe over every file, ``at_once`` at a time, into a fresh typed table."""
    warehouse.fresh_schema("bench_pipe")
    warehouse.conn.execute(sql.SQL("CREATE TABLE bench_pipe.trips ({})").format(csv_table_columns()))
    env = {**os.environ, "PSQL": PSQL, "URI": warehouse.server.uri, "TABLE": "bench_pipe.trips"}
    command = ["xargs", "-P", str(at_once), "-n", "1", "bash", "-c", PIPE_SCRIPT, "pipe"]
    load_before, postgres_before = os.getloadavg()[0], postgres_cpu_seconds(warehouse.server)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, input="\n".join(urls), text=True, env=env, check=True)
    seconds = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.5)  # let the postmaster reap the backends
    loaded = warehouse.count("bench_pipe", "trips")
    if loaded != rows:
        raise RuntimeError(f"the pipe loaded {loaded} rows, the files have {rows}")
    return {
        "seconds": seconds,
        "cpu_seconds": (children.ru_utime - children_before.ru_utime)
        + (children.ru_stime - children_before.ru_stime),
        "postgres_cpu_seconds": postgres_cpu_seconds(warehouse.server) - postgres_before,
        "peak_rss_mb": children.ru_maxrss / 1024,
        "rows": loaded,
        "load_average": [load_before, os.getloadavg()[0]],
    }


def median_of(rounds: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in rounds)


def summary(results: dict[str, list[dict]]) -> str:
    """The side-by-side table and the backfill's wall time against the faster pipe."""
    lines = [
        "| method | rounds | rows | wall s | CPU s | Postgres CPU s | peak RSS MB | load average |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for key, label, peak in (
        ("backfill", "backfill under the scheduler (largest task process)", "peak_task_rss_mb"),
        ("pipe_x1", "plain pipe, one file at a time", "peak_rss_mb"),
        ("pipe_x2", "plain pipe, two files at a time", "peak_rss_mb"),
    ):
        rounds = results[key]
        loads = [value for run in rounds for value in run["load_average"]]
        lines.append(
            f"| {label} | {len(rounds)} | {rounds[0]['rows']:,} | {median_of(rounds, 'seconds'):.1f} "
            f"| {median_of(rounds, 'cpu_seconds'):.1f} | {median_of(rounds, 'postgres_cpu_seconds'):.1f} "
            f"| {max(run[peak] for run in rounds):.0f} | {min(loads):.1f}-{max(loads):.1f} |"
        )
    by_component = [run.get("cpu_seconds_by_component") for run in results["backfill"]]
    if all(by_component):
        lines.append(
            "\nBackfill CPU s by component (medians): "
            + ", ".join(f"{name} {median_of(by_component, name):.1f}" for name in by_component[0])
            + " (the scheduler's includes its executor's workers and every task process)"
        )
    pipe = min(median_of(results["pipe_x1"], "seconds"), median_of(results["pipe_x2"], "seconds"))
    ratio = median_of(results["backfill"], "seconds") / pipe
    verdict = "PASS" if ratio <= MAX_BACKFILL_RATIO else "FAIL"
    lines.append(
        f"\n{verdict}  backfill_vs_pipe: the backfill takes {ratio:.2f}x the faster pipe's wall time "
        f"(target <= {MAX_BACKFILL_RATIO}x)"
    )
    lines.append(
        "\nMean seconds per task instance (the median round's), and the run's total; parse is part of run:\n"
    )
    lines.append("| task | states | gap s | queue s | start-up s | run s | parse s | run total s |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    middle = sorted(results["backfill"], key=lambda run: run["seconds"])[len(results["backfill"]) // 2]
    totals: dict[str, float] = defaultdict(float)
    skipped = 0
    for task_id, task in middle["tasks"].items():
        if set(task["states"]) == {"skipped"}:  # another family's: skipped by the scheduler, no process
            skipped += task["states"]["skipped"]
            continue
        states = ", ".join(f"{state} {count}" for state, count in task["states"].items())
        cells = [f"{task[phase]['mean']:.2f}" if phase in task else "-" for phase in PHASES]
        for phase in PHASES:
            totals[phase] += task[phase]["total"] if phase in task else 0.0
        total = f"{task['run']['total']:.1f}" if "run" in task else "-"
        lines.append(f"| {task_id} | {states} | {' | '.join(cells)} | {total} |")
    lines.append(
        f"\n{skipped} task instances of the other families skipped without a process; task-seconds in "
        "all: " + ", ".join(f"{phase} {totals[phase]:.1f}" for phase in PHASES)
    )
    return "\n".join(lines)


PHASES = ("gap", "queue", "startup", "run", "parse")
MAX_BACKFILL_RATIO = 1.5


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--rounds", type=int, help="side-by-side rounds (default: 1 smoke, 3 full)")
    parser.add_argument("--max-active-runs", type=int, default=12, help="the backfill's (default: 12)")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="AIRFLOW__SECTION__KEY=VALUE",
        help="an Airflow setting over local_stack.airflow_ui's, to measure a change (repeatable)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON written")
    parser.add_argument("--logs", type=Path, help="keep the components' and tasks' logs in this folder")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    rounds = args.rounds or size.rounds
    settings = dict(setting.split("=", 1) for setting in args.setting)

    print("Preparing the months in bench/cache ...", file=sys.stderr, flush=True)
    files = [moved_month(month, size.recipe) for month in size.months]
    counts = [counted(path) for path in files]
    wanted = {str(month): count["kept_rows"] for month, count in zip(size.months, counts, strict=True)}
    file_total = sum(count["file_rows"] for count in counts)
    results: dict[str, list[dict]] = {"backfill": [], "pipe_x1": [], "pipe_x2": []}
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as folder:
        scratch = Path(folder)
        tlc, base_url = serve_in_thread(files[0].parent.parent)
        server = PostgresServer(scratch / "postgres", free_port())
        env = {
            "AIRFLOW_CONN_POSTGRES_DEFAULT": "",  # set once the server has its password
            "AIRFLOW_VAR_TAXI_SOURCE": "mirror",
            "AIRFLOW_VAR_MIRROR_BASE_URL": base_url,
            "AIRFLOW_VAR_TLC_BASE_URL": base_url,
            # The schedule holds the backfill's months only: unpaused, the DAG schedules nothing else.
            "AIRFLOW_VAR_TAXI_FIRST_MONTH": str(size.months[0]),
            "AIRFLOW_VAR_TAXI_LAST_MONTH": str(size.months[-1]),
            "AIRFLOW_VAR_PG_SCHEMA": SCHEMA,
            "AIRFLOW_VAR_CHART_DIR": str(scratch / "charts"),
            "AIRFLOW_VAR_MONTHLY_RUN_DEADLINE_SECONDS": "7200",
        }
        try:
            server.start()
            env["AIRFLOW_CONN_POSTGRES_DEFAULT"] = server.uri
            with psycopg.connect(server.uri, autocommit=True) as conn:
                conn.execute("ALTER SYSTEM SET autovacuum = off")  # as bench.run: no vacuum mid-run
                conn.execute("SELECT pg_reload_conf()")
                warehouse = Warehouse(server, conn)
                print("Starting Airflow ...", file=sys.stderr, flush=True)
                with running_airflow(scratch, server, env, settings) as airflow:
                    api = SchedulerHarness(airflow)
                    api.log_in()
                    api.wait_for_dag(DAG_ID)
                    upstream: dict[str, list[str]] = defaultdict(list)
                    for task in api.api("GET", f"/dags/{DAG_ID}/tasks")["tasks"]:
                        for downstream in task["downstream_task_ids"]:
                            upstream[downstream].append(task["task_id"])
                    metadata_uri = airflow.environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
                    metadata_uri = metadata_uri.replace("postgresql+psycopg2://", "postgresql://", 1)
                    urls = [f"{base_url}/{TAXI}/{path.name}" for path in files]
                    with psycopg.connect(metadata_uri, autocommit=True) as metadata:
                        for number in range(1, rounds + 1):
                            run = backfill_round(
                                api, warehouse, metadata, size.months, wanted, args.max_active_runs, upstream
                            )
                            results["backfill"].append(run)
                            for at_once in (1, 2):
                                results[f"pipe_x{at_once}"].append(
                                    pipe_round(warehouse, urls, at_once, file_total)
                                )
                            print(
                                f"round {number}/{rounds}: backfill {run['seconds']:.1f} s, "
                                f"pipe x1 {results['pipe_x1'][-1]['seconds']:.1f} s, "
                                f"x2 {results['pipe_x2'][-1]['seconds']:.1f} s, "
                                f"load average {run['load_average'][0]:.1f}",
                                file=sys.stderr,
                                flush=True,
                            )
        finally:
            if args.logs:
                shutil.copytree(scratch / "airflow" / "logs", args.logs / "tasks", dirs_exist_ok=True)
                for log in (scratch / "airflow-ui").glob("*.log"):
                    shutil.copy(log, args.logs)
            server.stop()
            tlc.shutdown()

    report = {
        "measured_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "size": args.size,
        "months": [str(month) for month in size.months],
        "recipe": size.recipe.tag,
        "max_active_runs": args.max_active_runs,
        "settings": settings,
        "cpus": len(os.sched_getaffinity(0)),
        "results": results,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(summary(results))
    print(f"\nWrote {args.results}", file=sys.stderr)


if __name__ == "__main__":
    main()
