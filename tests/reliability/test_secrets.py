"""No credential in the repository, and none in what a run logs, as ``detect-secrets`` sees them.

The repository is scanned with Yelp's maintained scanner, ``detect-secrets``, with the plugins and
filters recorded in ``.secrets.baseline``. The baseline lists the findings a person audited as not
secret (``is_secret: false``: the ``change-me`` placeholder in ``.env.example``, the local UI's
documented ``admin`` login, a test viewer's password for the stand-in); any other finding fails.
To audit a new one: ``detect-secrets scan --baseline .secrets.baseline`` then
``detect-secrets audit .secrets.baseline``. A planted key in a copy of the tree proves the scan
catches one; a real run's task logs and output are scanned with no baseline at all.
"""

import os
import secrets
import shutil
import string
import subprocess
from contextlib import chdir
from pathlib import Path

import pytest

from local_stack.stack import REPO
from tests.reliability.conftest import assert_run_succeeded, task_tries

pytestmark = pytest.mark.integration

BASELINE = REPO / ".secrets.baseline"


def _tracked_files(root: Path) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name and (root / name).is_file()]


def _scan(root: Path, files: list[str]):
    """``detect-secrets`` over ``files`` (relative to ``root``) with the baseline's plugins and filters."""
    from detect_secrets import SecretsCollection
    from detect_secrets.core import baseline
    from detect_secrets.settings import transient_settings

    # Run from ``root`` as the CLI does, so findings carry the relative names the baseline has.
    with chdir(root), transient_settings(baseline.load_from_file(str(BASELINE))):
        found = SecretsCollection()
        for name in files:
            found.scan_file(name)
    return found


def _audited():
    from detect_secrets import SecretsCollection
    from detect_secrets.core import baseline

    return SecretsCollection.load_from_baseline(baseline.load_from_file(str(BASELINE)))


def _describe(found) -> list[str]:
    return sorted(f"{name}:{secret.line_number}: {secret.type}" for name, secret in found)


def _unaudited_findings(root: Path) -> list[str]:
    """Every finding in the tracked files of ``root`` that the baseline does not list as audited."""
    return _describe(_scan(root, _tracked_files(root)) - _audited())


def test_every_finding_in_the_baseline_was_audited_as_not_secret():
    audited = list(_audited())
    assert audited, "the baseline lists the audited findings"
    assert [f"{name}: {secret.type}" for name, secret in audited if secret.is_secret is not False] == []


def test_the_tracked_files_hold_no_secret_beyond_the_audited_baseline():
    assert len(_tracked_files(REPO)) > 50, "git ls-files found the repository's files"
    assert _unaudited_findings(REPO) == []


def _fake_aws_key_id() -> str:
    # Well-formed (AKIA and 16 capitals or digits) and random: it names no real account.
    return "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def test_a_planted_key_in_a_copy_of_the_tree_is_caught(tmp_path: Path):
    copy = tmp_path / "repo"
    for name in _tracked_files(REPO):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, copy / name)
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    planted = {
        "include/deploy_settings.py": (
            f'AWS_ACCESS_KEY_ID = "{_fake_aws_key_id()}"\n'
            f'WAREHOUSE_URI = "postgresql://taxi:{secrets.token_urlsafe(16)}@warehouse.internal:5432/ny_taxi"\n'
        ),
        "docs/service-account.pem": "\n".join(
            [
                "-----BEGIN " + "RSA PRIVATE KEY-----",
                secrets.token_urlsafe(48),
                "-----END RSA PRIVATE KEY-----",
            ]
        ),
    }
    for name, text in planted.items():
        (copy / name).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=copy, check=True)

    assert _unaudited_findings(copy) == [
        "docs/service-account.pem:1: Private Key",
        "include/deploy_settings.py:1: AWS Access Key",
        "include/deploy_settings.py:2: Basic Auth Credentials",
    ]


@pytest.fixture
def cloud_env(cloud_stack, gcs_bucket) -> dict[str, str]:
    return {"AIRFLOW_VAR_GCS_BUCKET": gcs_bucket}


def test_a_good_run_logs_no_secret(run_dag, postgres, pg_conn, pg_schema, cloud_env, tmp_path: Path):
    """A normal load of a month, then a daily export that reads it through ADBC with the connection's URI."""
    outputs = [
        assert_run_succeeded(run_dag("taxi_api_to_postgres", {"taxis": ["green"], "month": "2020-10"})),
        assert_run_succeeded(
            run_dag("taxi_daily_trips_to_gcs", {"taxis": ["green"], "day": "2020-10-15"}, **cloud_env)
        ),
    ]
    assert pg_conn.execute(f"SELECT count(*) FROM {pg_schema}.green_tripdata").fetchone()[0] > 0

    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    files = []
    for dag_id in ("taxi_api_to_postgres", "taxi_daily_trips_to_gcs"):
        run_id, _ = task_tries(dag_id)
        files += [
            path for path in (logs / f"dag_id={dag_id}" / f"run_id={run_id}").rglob("*") if path.is_file()
        ]
    for index, text in enumerate(outputs):
        (tmp_path / f"airflow-dags-test-{index}.log").write_text(text)
        files.append(tmp_path / f"airflow-dags-test-{index}.log")
    task_logs = "".join(path.read_text(errors="replace") for path in files)
    assert "Published 94861 rows of green 2020-10" in task_logs, "the task logs are among the scanned files"
    assert "export_day" in task_logs

    assert _describe(_scan(Path("/"), [str(path) for path in files])) == []
    # The same scan does catch the connection's URI in a log line (libpq prints it in some errors).
    control = tmp_path / "control.log"
    control.write_text(f'Failed to connect: missing "=" after "{postgres.uri}" in connection info string\n')
    assert _describe(_scan(Path("/"), [str(control)])) == [f"{control}:1: Basic Auth Credentials"]
    # The scanner looks for the shapes of secrets; the configured password is also looked for as it is.
    assert [str(path) for path in files if postgres.password in path.read_text(errors="replace")] == []
