"""The images: the Airflow image is the version requirements.txt pins, and no secret gets in."""

from __future__ import annotations

import re
from typing import Any

from local_stack.compose import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
EMULATORS_DOCKERFILE = (REPO / "local_stack" / "emulators.Dockerfile").read_text()


def _pinned_airflow() -> str:
    pins = re.findall(r"^apache-airflow==(\S+)\s*$", (REPO / "requirements.txt").read_text(), re.MULTILINE)
    assert len(pins) == 1, pins
    return pins[0]


def test_image_is_the_pinned_airflow_version() -> None:
    version = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert version is not None and version.group(1) == _pinned_airflow()
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert froms == ["apache/airflow:${AIRFLOW_VERSION}"]
    # pip may not move Airflow off the image's version while installing the requirements.
    assert re.search(r'pip install --no-cache-dir "apache-airflow==\$\{AIRFLOW_VERSION\}" -r ', DOCKERFILE)


def test_compose_tags_the_image_with_that_version(
    compose: dict[str, Any], env_example: dict[str, str | None]
) -> None:
    default = re.fullmatch(r"\$\{AIRFLOW_IMAGE_NAME:-(\S+)\}", compose["x-airflow-common"]["image"])
    assert default is not None
    for tag in (default.group(1), env_example["AIRFLOW_IMAGE_NAME"]):
        assert tag is not None and tag.endswith(f":{_pinned_airflow()}"), tag


def test_image_bakes_in_the_code_and_nothing_else() -> None:
    copied = re.findall(r"^COPY (?:--\S+ )*(\S+) (\S+)$", DOCKERFILE, re.MULTILINE)
    assert copied == [
        ("requirements.txt", "/requirements.txt"),
        ("requirements-dbt.txt", "/requirements-dbt.txt"),  # dbt's own environment
        ("dags/", "/opt/airflow/dags/"),
        ("include/", "/opt/airflow/include/"),
        ("plugins/", "/opt/airflow/plugins/"),
        ("scripts/dbt-parse.sh", "/opt/airflow/scripts/dbt-parse.sh"),  # the manifest, at build time
    ]
    assert "ENV PYTHONPATH=/opt/airflow" in DOCKERFILE
    assert not re.search(r"^ADD ", DOCKERFILE, re.MULTILINE)


def test_build_context_excludes_secrets_and_state() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert ignored >= {".env", ".env.*", "keys/", ".git/", ".state/", ".venv/", ".venv-emulators/"}
    assert "!.env.example" in ignored


def test_emulators_image_installs_the_pinned_stand_ins() -> None:
    assert re.findall(r"^FROM (\S+)", EMULATORS_DOCKERFILE, re.MULTILINE) == ["python:3.11-slim"]
    assert "pip install --no-cache-dir -r requirements-emulators.txt" in EMULATORS_DOCKERFILE
    pins = (REPO / "requirements-emulators.txt").read_text()
    assert re.search(r"^gcp-storage-emulator==", pins, re.MULTILINE)
    assert re.search(r"^bqemulator==", pins, re.MULTILINE)
    assert re.search(r"^USER emulator$", EMULATORS_DOCKERFILE, re.MULTILINE)
