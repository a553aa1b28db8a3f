"""docker-compose.yaml: it parses, every service the stack needs is there and healthy-checked, the
workers scale, and every setting comes from .env without a secret committed."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from local_stack.compose import COMPOSE_FILE, ENV_EXAMPLE, REPO, compose_binary, compose_environment

LOCAL_CLOUD = {"gcs-emulator", "bigquery-emulator", "bigquery-init", "tlc-mirror"}
# Run to completion; the services that need them wait for service_completed_successfully.
ONE_SHOT = {"airflow-init", "bigquery-init"}
STACK = {
    "postgres",
    "redis",
    "taxi-postgres",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    *LOCAL_CLOUD,
}
# The file with .env.example as its .env, stand-ins included, as `docker compose` reads them.
COMPOSE_ARGS = ("-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "--profile", "local-cloud")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

# ${VAR}, ${VAR:-default}, ${VAR:?message}...; `$$` is compose's escape for a literal `$`.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
# A reference with no default: a secret must come from .env, never from this file.
BARE_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")
# The password of a URL's user:password@ part, a ${...} reference (which may hold spaces) or literal.
URL_PASSWORD = re.compile(r"://(?:\$\{[^}]*\}|[^:/@\s$]*):(\$\{[^}]*\}|[^@\s]*)@")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN")


def test_compose_file_parses(compose: dict[str, Any]) -> None:
    # Docker Compose itself (the pinned v2) reads it with .env.example, as `docker compose` would.
    assert set(compose["services"]) >= STACK
    result = subprocess.run(
        [str(compose_binary()), *COMPOSE_ARGS, "config", "--quiet"],
        cwd=REPO,
        env=compose_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict]) -> None:
    for name in STACK - ONE_SHOT:
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"


def test_stand_ins_run_only_with_profile_local_cloud(services: dict[str, dict]) -> None:
    for name, service in services.items():
        assert service.get("profiles", []) == (["local-cloud"] if name in LOCAL_CLOUD else []), name
    # The BigQuery emulator reads gs:// objects from the GCS emulator's folder: one shared volume.
    gcs, bigquery = services["gcs-emulator"]["volumes"], services["bigquery-emulator"]["volumes"]
    assert set(gcs) & set(bigquery), "the GCS and BigQuery emulators share no volume"


def test_workers_scale(services: dict[str, dict]) -> None:
    worker = services["airflow-worker"]
    for fixed in ("container_name", "ports", "hostname"):
        assert fixed not in worker, f"airflow-worker sets {fixed}: --scale airflow-worker=N would clash"
    assert worker["command"] == "celery worker"


def test_depends_on_waits_for_conditions(services: dict[str, dict]) -> None:
    checked = 0
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions, not a list"
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec.get("condition") in CONDITIONS, f"{name} -> {dependency}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} -> {dependency}"
            checked += 1
    assert checked >= 20
    assert services["airflow-scheduler"]["depends_on"]["airflow-init"]["condition"] == (
        "service_completed_successfully"
    )


def test_airflow_components_share_settings(airflow_services: dict[str, dict]) -> None:
    assert set(airflow_services) >= {name for name in STACK if name.startswith("airflow-")}
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY"):
        values = {service["environment"][key] for service in airflow_services.values()}
        assert len(values) == 1, f"{key} differs between the Airflow components"
    for name, service in airflow_services.items():
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert "taxi-postgres:5432" in env["AIRFLOW_CONN_POSTGRES_DEFAULT"], name
        assert "@postgres/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name


def test_files_the_stack_builds_and_mounts_exist(compose: dict[str, Any], services: dict[str, dict]) -> None:
    builds = [service["build"] for service in services.values() if "build" in service]
    dockerfiles = {build if isinstance(build, str) else build["dockerfile"] for build in builds}
    assert dockerfiles == {".", "local_stack/emulators.Dockerfile"}
    for path in ("Dockerfile", "local_stack/emulators.Dockerfile", "requirements-emulators.txt"):
        assert (REPO / path).is_file(), path
    assert (REPO / services["bigquery-emulator"]["command"][1]).is_file()
    mounts = [volume.split(":")[0] for volume in compose["x-airflow-common"]["volumes"]]
    for source in (mount for mount in mounts if mount.startswith("./")):
        assert (REPO / source).exists(), source


def test_env_example_covers_every_compose_variable(
    compose_text: str, env_example: dict[str, str | None]
) -> None:
    # Every substitution is braced, so the scan below sees them all.
    assert not re.search(r"(?<!\$)\$(?![{$])", compose_text), "use ${VAR}, not $VAR"
    used = {match.group(1): match.group(2) for match in INTERPOLATION.finditer(compose_text)}
    assert len(used) >= 20
    assert sorted(set(used) - set(env_example)) == []
    required = {name for name, rest in used.items() if rest.startswith((":?", "?"))}
    assert required >= {"AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "TAXI_POSTGRES_PASSWORD"}
    # `cp .env.example .env` gives a file compose accepts: the required values are active there.
    assert sorted(name for name in required if not env_example.get(name)) == []


def test_no_secret_is_committed(services: dict[str, dict], compose_text: str) -> None:
    secrets = {}
    for service in services.values():
        environment = service.get("environment", {})
        secrets.update({key: value for key, value in environment.items() if SECRET_NAME.search(key)})
    assert set(secrets) >= {
        "POSTGRES_PASSWORD",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "_AIRFLOW_WWW_USER_PASSWORD",
    }
    assert {key: value for key, value in secrets.items() if not BARE_REFERENCE.match(value)} == {}
    passwords = [password for password in URL_PASSWORD.findall(compose_text) if password]
    assert len(passwords) >= 3  # the metadata DB twice (SQLAlchemy, Celery results), the warehouse
    assert [password for password in passwords if not BARE_REFERENCE.match(password)] == []


def test_env_example_holds_placeholders_only(env_example: dict[str, str | None]) -> None:
    secrets = {key: value for key, value in env_example.items() if re.search(r"PASSWORD|SECRET|_KEY$", key)}
    assert len(secrets) >= 6
    assert {key: value for key, value in secrets.items() if value not in (None, "change-me")} == {}
    passwords = URL_PASSWORD.findall(ENV_EXAMPLE.read_text())
    assert passwords and set(passwords) == {"change-me"}


def test_ports_are_published_on_loopback_only(services: dict[str, dict]) -> None:
    published = [(name, port) for name, service in services.items() for port in service.get("ports", [])]
    assert len(published) >= 5
    # The API's address is a setting (AIRFLOW_API_BIND) whose default is loopback too.
    off_loopback = [
        (name, port)
        for name, port in published
        if not port.startswith(("127.0.0.1:", "${AIRFLOW_API_BIND:-127.0.0.1}:"))
    ]
    assert off_loopback == []


def test_airflow_init_imports_the_committed_pools(compose: dict[str, Any], services: dict[str, dict]) -> None:
    pools = json.loads((REPO / "config" / "pools.json").read_text())
    assert {"postgres_loads", "bigquery_jobs"} <= set(pools)
    assert all(isinstance(spec["slots"], int) and spec["slots"] > 0 for spec in pools.values())
    assert "./config:/opt/airflow/config:ro" in compose["x-airflow-common"]["volumes"]
    assert "airflow pools import /opt/airflow/config/pools.json" in services["airflow-init"]["command"][1]


def test_local_cloud_creates_the_bigquery_dataset_before_the_workers_start(services: dict[str, dict]) -> None:
    init = services["bigquery-init"]
    assert init["command"][:3] == ["python", "-m", "local_stack.bigquery_dataset"]
    assert "${AIRFLOW_VAR_BQ_DATASET:-ny_taxi}" in init["command"]
    assert (REPO / "local_stack" / "bigquery_dataset.py").is_file()
    waits = services["airflow-worker"]["depends_on"]["bigquery-init"]
    assert waits == {"condition": "service_completed_successfully", "required": False}


def test_the_local_mirror_serves_the_months_the_schedules_cover(
    services: dict[str, dict], env_example: dict[str, str | None]
) -> None:
    from local_stack.mirror import LOCAL_MONTHS

    command = services["tlc-mirror"]["command"]
    assert command[:4] == ["python", "-m", "local_stack.mirror", "/mirror"]
    # Built from the same Variables that bound the schedules, with .env.example's months by default.
    bounds = [str(month) for month in LOCAL_MONTHS]
    assert command[command.index("--first") + 1] == f"${{AIRFLOW_VAR_TAXI_FIRST_MONTH:-{bounds[0]}}}"
    assert command[command.index("--last") + 1] == f"${{AIRFLOW_VAR_TAXI_LAST_MONTH:-{bounds[1]}}}"
    assert command[command.index("--serve") + 1] == "0.0.0.0:8765"
    assert "tlc-mirror-data:/mirror" in services["tlc-mirror"]["volumes"]
    # Block 1 of .env.example, active as copied: both sources on the stand-in, and those months.
    assert env_example["AIRFLOW_VAR_MIRROR_BASE_URL"] == "http://tlc-mirror:8765"
    assert env_example["AIRFLOW_VAR_TLC_BASE_URL"] == "http://tlc-mirror:8765"
    assert [env_example["AIRFLOW_VAR_TAXI_FIRST_MONTH"], env_example["AIRFLOW_VAR_TAXI_LAST_MONTH"]] == bounds
