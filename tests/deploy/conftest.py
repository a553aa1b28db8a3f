"""The deployment files, parsed once for the tests of this folder: nothing here needs Docker."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from local_stack.compose import COMPOSE_FILE, ENV_EXAMPLE

# `KEY=value` lines of .env.example, active or commented out (`# KEY=value` documents it too).
_ENV_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)


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
