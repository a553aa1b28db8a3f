"""A ten-month backfill of taxi_api_to_postgres in docker compose with 1, then 2, Celery workers
(issue 15): ``python -m bench.workers [--months 10] [--workers 1 2]``.

Each worker count gets a fresh stack of docker-compose.yaml (profile local-cloud, the stand-in
images where no registry is reachable: tests/deploy/standin-images). The months are built from
green 2020-10: its rows with the pickup and drop-off dates moved into each month (the day kept,
clamped to the month's length), served by the stack's tlc-mirror from a folder mounted over its
samples. They end with the last complete month, so unpausing the DAG, which a backfill needs,
leaves no later month to catch up on. The wall time runs from unpausing to the backfill's
completion; then every month's rows are counted in taxi-postgres, so a run that loaded the wrong
rows fails the benchmark instead of winning it. Writes bench/results/workers.json (git-ignored).
"""

from __future__ import annotations

import argparse
import calendar
import csv
import gzip
import json
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg

from local_stack.tlc_server import SAMPLES
from tests.deploy.compose_stack import (
    FINISHED,
    Api,
    Backfill,
    Stack,
    build_standins,
    create_backfill,
    loopback_url,
    next_scheduled_month,
    require_docker,
    stack_env,
    wait_until_healthy,
)
from tests.deploy.test_stack import cleaned_row_count

DAG_ID = "taxi_api_to_postgres"
TAXI = "green"
SOURCE = SAMPLES / "green" / "green_tripdata_2020-10.csv.gz"
SOURCE_PREFIX = "2020-10-"
TABLE = "ny_taxi.green_taxi_trips"
RESULTS = Path(__file__).resolve().parent / "results" / "workers.json"


def last_months(count: int, today: date) -> list[str]:
    """The ``count`` complete months before ``today``'s, oldest first, as YYYY-MM."""
    year, month = today.year, today.month
    months = []
    for _ in range(count):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        months.append(f"{year:04d}-{month:02d}")
    return months[::-1]


def moved(value: str, month: str) -> str:
    """A 2020-10 timestamp moved to ``month``, the day clamped to its length; others unchanged."""
    if not value.startswith(SOURCE_PREFIX):
        return value
    year, number = (int(part) for part in month.split("-"))
    day = min(int(value[8:10]), calendar.monthrange(year, number)[1])
    return f"{month}-{day:02d}{value[10:]}"


def write_mirror(folder: Path, months: list[str]) -> Path:
    """A TLC mirror folder: the zone lookup, and green for each month built from 2020-10."""
    mirror = folder / "mirror"
    (mirror / "green").mkdir(parents=True)
    (mirror / "misc").mkdir()
    lookup = SAMPLES / "misc" / "taxi_zone_lookup.csv"
    (mirror / "misc" / lookup.name).write_bytes(lookup.read_bytes())
    with gzip.open(SOURCE, "rt", newline="") as reader:
        rows = list(csv.reader(reader))
    header, body = rows[0], rows[1:]
    times = [i for i, name in enumerate(header) if name.endswith(("pickup_datetime", "dropoff_datetime"))]
    for month in months:
        with gzip.open(mirror / "green" / f"green_tripdata_{month}.csv.gz", "wt", newline="") as sink:
            out = csv.writer(sink, lineterminator="\n")
            out.writerow(header)
            for row in body:
                out.writerow([moved(value, month) if i in times else value for i, value in enumerate(row)])
    # The mirror runs as an unprivileged user: the mounted tree must be readable by all.
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return mirror


def run_once(folder: Path, mirror: Path, months: list[str], workers: int) -> dict:
    override = folder / "mirror.override.yaml"
    override.write_text(f"services:\n  tlc-mirror:\n    volumes:\n      - {mirror}:/app/data/tlc:ro\n")
    env_file = folder / f"{workers}-workers.env"
    stack = Stack(
        f"nyctaxi-bench-{uuid.uuid4().hex[:8]}", env_file, stack_env(env_file), overrides=(override,)
    )
    try:
        stack.compose("build", timeout=3600)
        stack.compose("up", "-d", "--scale", f"airflow-worker={workers}", timeout=1200)
        wait_until_healthy(stack)
        env = stack.env
        api = Api(
            loopback_url(stack.published("airflow-apiserver", 8080)),
            env["AIRFLOW_ADMIN_USERNAME"],
            env["AIRFLOW_ADMIN_PASSWORD"],
        )
        api.wait_for(
            f"{DAG_ID} to be parsed",
            lambda: api("GET", f"/dags/{DAG_ID}", expect=(200, 404)).get("dag_id"),
            300,
            stack,
        )
        backfill = Backfill(DAG_ID, f"{months[0]}-01", f"{months[-1]}-01", {"taxi": TAXI}, {})
        backfill_id = create_backfill(api, backfill, max_active_runs=len(months))
        api.wait_for(
            "the next scheduled month to pass the backfill",
            lambda: next_scheduled_month(api, DAG_ID) > months[-1] or None,
            300,
            stack,
        )
        started = time.monotonic()
        api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        api.wait_for(
            "the backfill", lambda: api("GET", f"/backfills/{backfill_id}").get("completed_at"), 3600, stack
        )
        wall = time.monotonic() - started
        runs = api.runs(DAG_ID, "backfill")
        task_instances = api("GET", f"/dags/{DAG_ID}/dagRuns/~/taskInstances", params={"limit": 100})[
            "task_instances"
        ]
        port = stack.published("taxi-postgres", 5432).rsplit(":", 1)[1]
        uri = f"postgresql://{env['TAXI_POSTGRES_USER']}:{env['TAXI_POSTGRES_PASSWORD']}@127.0.0.1:{port}/{env['TAXI_POSTGRES_DB']}"
        with psycopg.connect(uri) as conn:
            rows = dict(conn.execute(f"SELECT source_month, count(*) FROM {TABLE} GROUP BY 1").fetchall())
    finally:
        stack.down()
    per_worker: dict[str, int] = {}
    for ti in task_instances:
        if ti["state"] in FINISHED:
            per_worker[ti["hostname"]] = per_worker.get(ti["hostname"], 0) + 1
    return {
        "workers": workers,
        "wall_s": round(wall, 1),
        "runs": {run["logical_date"][:7]: run["state"] for run in runs},
        "rows": {month.isoformat()[:7]: count for month, count in sorted(rows.items())},
        "task_instances_per_worker": sorted(per_worker.values(), reverse=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    require_docker()
    build_standins()
    months = last_months(args.months, date.today())
    folder = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    mirror = write_mirror(folder, months)
    results = [run_once(folder, mirror, months, workers) for workers in args.workers]
    expected_runs = dict.fromkeys(months, "success")
    expected_rows = dict.fromkeys(months, cleaned_row_count(TAXI, "2020-10"))  # the dates move, not the rows
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"months": months, "results": results}, indent=2) + "\n")
    print(f"{len(months)}-month backfill of {DAG_ID} ({TAXI}, {months[0]} to {months[-1]}):")
    print("| workers | wall s | runs succeeded | rows per month | task instances per worker |")
    print("| ---: | ---: | ---: | --- | --- |")
    for result in results:
        succeeded = sum(state == "success" for state in result["runs"].values())
        counts = sorted(set(result["rows"].values()))
        per_worker = result["task_instances_per_worker"]
        cells = [result["workers"], result["wall_s"], f"{succeeded}/{len(months)}", counts, per_worker]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    for result in results:
        assert result["runs"] == expected_runs, result["runs"]
        assert result["rows"] == expected_rows, result["rows"]


if __name__ == "__main__":
    main()
