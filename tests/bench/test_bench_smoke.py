"""The benchmark still runs end to end: every method on a slice of the real month, JSON and chart.

Numbers are not checked here: on a 5,000-row slice they measure start-up, not throughput, and
CI machines vary. ``python -m bench.run`` (full size) is where the targets are judged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
METHODS = {
    "ours_postgres_x1",
    "psql_copy",
    "course_to_sql",
    "ours_parquet",
    "plain_parquet",
    "ours_postgres_x2",
}
TARGETS = {"postgres_vs_copy", "postgres_vs_course", "parquet_vs_plain", "load_memory_flat", "dag_parse"}


@pytest.mark.integration
def test_smoke_size_runs_every_method_and_writes_json_and_chart(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--size", "smoke", "--results", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    report = json.loads((tmp_path / "latest.json").read_text())
    methods = {method["key"]: method for method in report["methods"]}
    assert set(methods) == METHODS
    for key, method in methods.items():
        assert method["rows"] > 0, key
        assert method["median_seconds"] > 0, key
        assert method["peak_rss_mb"] > 0, key
    assert {target["name"] for target in report["targets"]} == TARGETS
    assert report["dag_parse"]["import_errors"] == {}
    assert "| ours → Postgres" in result.stdout
    assert (tmp_path / "ratios.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
