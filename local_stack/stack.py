"""The local stack: every service the DAGs talk to, started on loopback from a state folder.

``up`` is idempotent: services already running are left alone. The environment the DAGs need
(Airflow home, connections, variables) is written to ``{state}/stack.env`` for shells to source,
and the same mapping is what the tests hand to ``airflow dags test``.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local_stack.postgres import PostgresServer
from local_stack.tlc_server import SAMPLES

REPO = Path(__file__).resolve().parent.parent


def wait_for_port(port: int, timeout: float = 30.0, what: str = "service") -> None:
    """Block until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not start listening on 127.0.0.1:{port} within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class BackgroundProcess:
    """A long-running child process tracked by a pid file, so a later ``down`` can stop it."""

    name: str
    folder: Path
    command: tuple[str, ...]
    port: int

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.name}.pid"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def start(self, env: dict[str, str] | None = None) -> None:
        if self.pid() is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            with (self.folder / f"{self.name}.log").open("ab") as log:
                process = subprocess.Popen(
                    self.command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                    env={**os.environ, **(env or {})},
                    start_new_session=True,
                )
            self.pid_file.write_text(str(process.pid))
        wait_for_port(self.port, what=self.name)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)
        self.pid_file.unlink(missing_ok=True)


@dataclass(frozen=True)
class Stack:
    """Where the stack keeps its state and which loopback ports it uses."""

    state: Path
    postgres_port: int = 54320
    tlc_port: int = 8765

    @property
    def postgres(self) -> PostgresServer:
        return PostgresServer(self.state / "postgres", self.postgres_port)

    @property
    def tlc_server(self) -> BackgroundProcess:
        command = (
            sys.executable,
            "-m",
            "local_stack.tlc_server",
            "--root",
            str(SAMPLES),
            "--port",
            str(self.tlc_port),
        )
        return BackgroundProcess("tlc-server", self.state / "services", command, self.tlc_port)

    def up(self) -> None:
        self.postgres.start()
        self.tlc_server.start()
        self.env_file.write_text(
            "".join(f"export {key}={shlex.quote(value)}\n" for key, value in self.env().items())
        )
        self.env_file.chmod(0o600)

    def down(self) -> None:
        self.tlc_server.stop()
        self.postgres.stop()

    @property
    def env_file(self) -> Path:
        return self.state / "stack.env"

    def env(self) -> dict[str, str]:
        """Connections and variables for the DAGs, plus a self-contained Airflow home."""
        return {
            **airflow_env(self.state / "airflow"),
            "AIRFLOW_CONN_POSTGRES_DEFAULT": self.postgres.uri,
            "AIRFLOW_VAR_TLC_BASE_URL": f"http://127.0.0.1:{self.tlc_port}",
        }


def airflow_env(airflow_home: Path) -> dict[str, str]:
    """An Airflow home of our own with this repository's DAGs, SQLite metadata and no examples."""
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO),
    }
