"""Every connection and variable the DAGs read reaches Airflow in docker compose and is documented in
.env.example. The names come from the code, so a DAG that reads a new one fails here until both
files know it."""

from __future__ import annotations

import re

import pytest

from local_stack.compose import REPO

CODE = sorted([*REPO.glob("dags/**/*.py"), *REPO.glob("include/**/*.py")])

# Variable.get("name"...), and the Jinja forms {{ var.value.name }}, {{ var.json.name }} and
# {{ var.value.get('name', ...) }}.
VARIABLE = re.compile(
    r"""Variable\.get\(\s*(?:key\s*=\s*)?["']([\w.-]+)["']"""
    r"""|\bvar\.(?:value|json)\.get\(\s*["']([\w.-]+)["']|\bvar\.(?:value|json)\.(?!get\b)(\w+)"""
)
# POSTGRES_CONN_ID = "name", gcp_conn_id="name", postgres_conn_id: str = "name"...
CONNECTION = re.compile(r"""\b\w*(?:CONN_ID|conn_id)\b\s*(?::[^=\n]+)?=\s*["']([\w.-]+)["']""")

# The contract of the DAGs (issue 6): what the scan must find, and what must be there regardless.
KNOWN_CONNECTIONS = {"postgres_default", "google_cloud_default", "smtp_default"}
KNOWN_VARIABLES = {"pg_schema", "gcs_bucket", "alert_email", "anomaly_actions", "source_wait_seconds"}
# Read under names the scan cannot see: the source's settings (include/source/sources.py, some at parse
# time from the environment), the deadline (include/flows/defaults.py) and the source watcher
# (include/flows/assets.py), both at parse time.
CONTRACT_VARIABLES = KNOWN_VARIABLES | {
    "bq_dataset",
    "bq_location",
    "taxi_source",
    "taxi_first_month",
    "taxi_last_month",
    "mirror_base_url",
    "tlc_base_url",
    "monthly_run_deadline_seconds",
    "watch_source",
    "watch_source_seconds",
}


def _scan() -> tuple[set[str], set[str]]:
    connections: set[str] = set()
    variables: set[str] = set()
    for path in CODE:
        text = path.read_text()
        connections.update(CONNECTION.findall(text))
        variables.update(name for groups in VARIABLE.findall(text) for name in groups if name)
    return connections, variables


CONNECTIONS, VARIABLES = _scan()
ENV_NAMES = sorted(
    {f"AIRFLOW_CONN_{name.upper()}" for name in CONNECTIONS | KNOWN_CONNECTIONS}
    | {f"AIRFLOW_VAR_{name.upper()}" for name in VARIABLES | CONTRACT_VARIABLES}
)


def test_scan_finds_the_known_connections_and_variables() -> None:
    assert len(CODE) >= 5
    assert CONNECTIONS >= KNOWN_CONNECTIONS
    assert VARIABLES >= KNOWN_VARIABLES
    assert CONNECTION.findall('gcp_conn_id="a", postgres_conn_id: str = "b", X_CONN_ID = "c"') == [
        "a",
        "b",
        "c",
    ]


@pytest.mark.parametrize("name", ENV_NAMES)
def test_compose_passes_it_to_every_airflow_component(name: str, airflow_services: dict[str, dict]) -> None:
    missing = [service for service, spec in airflow_services.items() if name not in spec["environment"]]
    assert missing == [], f"{name} is not set for {missing} in docker-compose.yaml"


@pytest.mark.parametrize("name", ENV_NAMES)
def test_env_example_documents_it(name: str, env_example: dict[str, str | None]) -> None:
    assert name in env_example, f"{name} is not documented in .env.example"


def test_compose_always_gives_the_deadline_variable_a_value_in_the_environment(
    airflow_services: dict[str, dict],
) -> None:
    # Airflow 3.3.2 creates no run of a DAG whose VariableInterval is missing, and a Variable read from
    # the metadata DB while a run is created breaks the scheduler's transaction: the env must hold it.
    for spec in airflow_services.values():
        value = spec["environment"]["AIRFLOW_VAR_MONTHLY_RUN_DEADLINE_SECONDS"]
        assert re.fullmatch(r"\$\{AIRFLOW_VAR_MONTHLY_RUN_DEADLINE_SECONDS:-[1-9][0-9]*\}", value), value
