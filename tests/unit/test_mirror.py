"""local_stack.mirror as docker compose's tlc-mirror runs it: in an image without include/, from
its command line, the same bytes as a build here, then served until stopped."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from local_stack import mirror
from tests import expected

REPO = Path(__file__).resolve().parents[2]
# The stand-ins' image has local_stack/ and data/tlc/ but not include/: make importing it fail.
WITHOUT_INCLUDE = "import runpy, sys; sys.modules['include'] = None; sys.argv[0] = 'mirror'; "
RUN_CLI = WITHOUT_INCLUDE + "runpy.run_module('local_stack.mirror', run_name='__main__')"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", RUN_CLI, *args]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()
    }


def test_the_command_line_builds_without_include_what_build_writes(tmp_path: Path) -> None:
    built = subprocess.run(
        cli(str(tmp_path / "cli"), "--first", "2020-12", "--last", "2021-01"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    here = mirror.build(tmp_path / "here", mirror.Month(2020, 12), mirror.Month(2021, 1))
    assert files(tmp_path / "cli") == files(here)
    for taxi in mirror.TAXIS:
        for month in ("2020-12", "2021-01"):
            assert expected.rows(expected.mirror_file(here, taxi, month)) > 1000, (taxi, month)
    constructed = (here / "CONSTRUCTED.md").read_text()
    assert "- green/green_tripdata_2021-01.csv.gz" in constructed
    assert "yellow_tripdata_2021-01" not in constructed  # a real sample, copied as it is


def test_a_range_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    refused = subprocess.run(
        cli(str(tmp_path), "--first", "2021-01", "--last", "2020-12"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "--last 2020-12 is before --first 2021-01" in refused.stderr


def test_serve_answers_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        cli(str(tmp_path), "--first", "2021-01", "--last", "2021-01", "--serve", f"127.0.0.1:{port}"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/green/green_tripdata_2021-01.csv.gz"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = response.read()
                break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "the mirror never answered"
                time.sleep(0.5)
        assert body == (tmp_path / "green" / "green_tripdata_2021-01.csv.gz").read_bytes()
    finally:
        server.send_signal(signal.SIGTERM)
        # A container's first process ignores SIGTERM unless it handles it: stopping must be quick.
        assert server.wait(timeout=10) == 0
        server.communicate()
