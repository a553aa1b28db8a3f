"""A ten-month backfill of taxi_api_to_postgres in docker compose with 1, then 2, Celery workers
(issue 15): ``python -m bench.workers [--months 10] [--workers 1 2]``.

Each worker count gets a fresh stack of docker-compose.yaml with .env.example's Block 1 (profile
local-cloud; the stand-in images where no registry is reachable: tests/deploy/standin-images),
its schedules bounded to the ten months that end with the course mirror's last, 2021-07
(``AIRFLOW_VAR_TAXI_FIRST_MONTH`` / ``_LAST_MONTH``). The stack's tlc-mirror builds every family
of those months (``local_stack.mirror``), so each run loads yellow, green and FHV: thirty loads,
at most ``postgres_loads`` of them staging at once. The backfill is created while the DAG is
paused; once the DAG's next scheduled month is none (the backfill holds the last month), it is
unpaused, which starts the backfill and schedules nothing else. The wall time runs from unpausing
to the backfill's completion; then every (family, month) is counted in taxi-postgres and compared
with pandas counts of the same mirror built here, so a run that loaded the wrong rows fails the
benchmark instead of winning it. Writes bench/results/workers.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from include.source.sources import SOURCES
from local_stack import expected, mirror
from local_stack.compose import (
    FINISHED,
    Api,
    Backfill,
    Stack,
    build_standins,
    create_backfill,
    loopback_url,
    next_scheduled_month,
    postgres_rows_per_month,
    require_docker,
    stack_env,
    wait_until_healthy,
)

DAG_ID = "taxi_api_to_postgres"
# Every family the course mirror publishes (the stack's source).
TAXIS = tuple(SOURCES["mirror"].first_months)
PG_SCHEMA = "ny_taxi"
MIRROR_LAST_MONTH = mirror.Month(2021, 7)  # the course mirror's last month: the runs end there
RESULTS = Path(__file__).resolve().parent / "results" / "workers.json"


def bench_months(count: int) -> list[mirror.Month]:
    """The ``count`` months that end with the mirror's last, oldest first."""
    index = MIRROR_LAST_MONTH.year * 12 + MIRROR_LAST_MONTH.month - 1 - (count - 1)
    first = mirror.Month(index // 12, index % 12 + 1)
    return mirror.months(first, MIRROR_LAST_MONTH)


def run_once(folder: Path, months: list[mirror.Month], workers: int) -> dict:
    env_file = folder / f"{workers}-workers.env"
    bounds = {"AIRFLOW_VAR_TAXI_FIRST_MONTH": str(months[0]), "AIRFLOW_VAR_TAXI_LAST_MONTH": str(months[-1])}
    stack = Stack(f"nyctaxi-bench-{uuid.uuid4().hex[:8]}", env_file, stack_env(env_file, bounds))
    try:
        stack.compose("build", timeout=3600)
        started = time.monotonic()
        stack.compose("up", "-d", "--scale", f"airflow-worker={workers}", timeout=1200)
        wait_until_healthy(stack)
        up_s = time.monotonic() - started
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
        backfill = Backfill(DAG_ID, f"{months[0]}-01", f"{months[-1]}-01", {}, {})
        backfill_id = create_backfill(api, backfill, max_active_runs=len(months))
        api.wait_for(
            "no scheduled month left after the backfill's",
            lambda: True if next_scheduled_month(api, DAG_ID) is None else None,
            300,
            stack,
        )
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        api.wait_for(
            "the backfill", lambda: api("GET", f"/backfills/{backfill_id}").get("completed_at"), 3600, stack
        )
        wall = time.monotonic() - started
        load_after = os.getloadavg()[0]
        runs = api.runs(DAG_ID)
        task_instances = api("GET", f"/dags/{DAG_ID}/dagRuns/~/taskInstances", params={"limit": 1000})[
            "task_instances"
        ]
        rows = {
            f"{taxi} {month.isoformat()[:7]}": count
            for taxi, counts in postgres_rows_per_month(stack, PG_SCHEMA, TAXIS).items()
            for month, count in counts.items()
        }
    finally:
        stack.down()
    per_worker: dict[str, int] = {}
    for ti in task_instances:
        if ti["state"] in FINISHED:
            per_worker[ti["hostname"]] = per_worker.get(ti["hostname"], 0) + 1
    return {
        "workers": workers,
        "wall_s": round(wall, 1),
        "up_s": round(up_s, 1),
        # The machine's 1-minute load average when the backfill started and ended (other jobs too).
        "load_average": [round(load_before, 1), round(load_after, 1)],
        "runs": {run["logical_date"][:7]: f"{run['run_type']} {run['state']}" for run in runs},
        "rows": dict(sorted(rows.items())),
        "task_instances_per_worker": sorted(per_worker.values(), reverse=True),
    }


def expected_rows(folder: Path, months: list[mirror.Month]) -> dict[str, int]:
    """Rows per "taxi YYYY-MM", counted with pandas from the mirror built here (local_stack/expected.py)."""
    built = mirror.build(folder / "mirror", months[0], months[-1])
    return {
        f"{taxi} {month}": expected.rows(expected.mirror_file(built, taxi, str(month)))
        for taxi in TAXIS
        for month in months
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    require_docker()
    build_standins()
    months = bench_months(args.months)
    folder = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    wanted = expected_rows(folder, months)
    measured_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results = [run_once(folder, months, workers) for workers in args.workers]
    machine = {"cpus": os.cpu_count(), "platform": platform.platform()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": measured_at,
                "machine": machine,
                "months": [str(m) for m in months],
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"{len(months)}-month backfill of {DAG_ID} ({', '.join(TAXIS)}; {months[0]} to {months[-1]}):")
    print("| workers | wall s | runs succeeded | loads right | task instances per worker | load average |")
    print("| ---: | ---: | ---: | ---: | --- | --- |")
    for result in results:
        succeeded = sum(state == "backfill success" for state in result["runs"].values())
        right = sum(result["rows"].get(key) == count for key, count in wanted.items())
        cells = [
            result["workers"],
            result["wall_s"],
            f"{succeeded}/{len(months)}",
            f"{right}/{len(wanted)}",
            result["task_instances_per_worker"],
            result["load_average"],
        ]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    for result in results:
        assert result["runs"] == dict.fromkeys([str(m) for m in months], "backfill success"), result["runs"]
        assert result["rows"] == wanted, result["rows"]


if __name__ == "__main__":
    main()
