"""No credential in the repository, and none in what a run logs.

The local Postgres gets a random password at its first start (kept in its state folder, never in
the tree); the tests look for that exact value in every tracked file and in a run's task logs,
and for key material of the kinds a GCP or compose deployment would use.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from local_stack.stack import REPO

pytestmark = pytest.mark.integration

KEY_MATERIAL = {
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a service account key file": re.compile(r'"type"\s*:\s*"service_account"|"private_key"\s*:\s*"'),
    "an AWS access key id": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "a Fernet key": re.compile(r"FERNET_KEY\s*[=:]\s*['\"]?[A-Za-z0-9_-]{43}="),
}
# user:password@ in a URL with a literal password (${VAR}, {expression} and <NAME> do not match).
LITERAL_URL_PASSWORD = re.compile(r"://[\w.%-]+:(?!change-me@)[\w.%~+!*-]+@")


def _tracked_text_files() -> dict[str, str]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = {}
    for name in filter(None, names.decode().split("\0")):
        data = (REPO / name).read_bytes() if (REPO / name).is_file() else b""
        if b"\0" not in data:
            files[name] = data.decode("utf-8", errors="replace")
    return files


def _configured_passwords(postgres) -> list[str]:
    """The test Postgres password, and the demo stack's if it was ever started here."""
    passwords = [postgres.password]
    demo = REPO / ".state" / "postgres" / "password"
    if demo.is_file():
        passwords.append(demo.read_text().strip())
    return passwords


def test_the_repository_holds_no_credential(postgres):
    files = _tracked_text_files()
    assert len(files) > 50, "git ls-files found the repository's files"
    found = []
    for name, text in files.items():
        found += [
            f"{name}: the configured password" for secret in _configured_passwords(postgres) if secret in text
        ]
        found += [f"{name}: {what}" for what, pattern in KEY_MATERIAL.items() if pattern.search(text)]
        found += [f"{name}: a password in a URL ({m.group(0)})" for m in LITERAL_URL_PASSWORD.finditer(text)]
    assert found == []


def test_env_example_holds_placeholders_only():
    secrets = {
        key: value
        for key, _, value in (
            line.partition("=") for line in (REPO / ".env.example").read_text().splitlines() if "=" in line
        )
        if re.search(r"PASSWORD|SECRET|FERNET|TOKEN|KEY", key) and not key.startswith("#")
    }
    assert secrets, ".env.example documents the secrets compose needs"
    assert {key: value for key, value in secrets.items() if value not in ("", "change-me")} == {}


def test_a_run_logs_no_password(run_dag, postgres, pg_conn, pg_schema):
    result = run_dag("taxi_api_to_postgres", {"taxi": "green", "month": "2020-10"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert pg_conn.execute(f"SELECT count(*) FROM {pg_schema}.green_taxi_trips").fetchone()[0] > 0

    logs = [result.stdout, result.stderr]
    log_folder = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    logs += [path.read_text(errors="replace") for path in log_folder.rglob("*") if path.is_file()]
    assert "Loaded" in "".join(logs), "the task's log lines are among the scanned text"
    assert [postgres.password in text for text in logs] == [False] * len(logs)
