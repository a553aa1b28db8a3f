"""The Airflow web UI on loopback, against the local stack, with a login set by configuration.

``scripts/ui.sh`` and the browser test (``tests/e2e``) both start it through :class:`AirflowUI`, so
the test checks what a user runs. Airflow runs as four processes (api-server, scheduler,
dag-processor, triggerer) rather than ``airflow standalone``: each gets its own log file, its own
process group to stop, and a readiness check through the api-server's health endpoint, while
standalone merges their output and only stops on Ctrl-C.

The login is the SimpleAuthManager's: the users come from ``simple_auth_manager_users`` and the
passwords from a file this module writes, so nothing is generated or printed at start. It is a
local, loopback-only login (default ``admin``/``admin``), not a way to secure a shared server.

The scheduler runs the DAGs' schedules as a deployment does: a DAG starts paused, and unpaused it
catches up on every month of its schedule, which the Variables ``taxi_first_month`` and
``taxi_last_month`` bound to the months the local mirror serves (``local_stack.mirror``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.stack import POOLS_FILE, REPO

USERNAME = "admin"
DEFAULT_PASSWORD = "admin"
# The scheduler parses nothing itself in Airflow 3: the dag-processor does, the triggerer runs
# deferred tasks. The api-server starts first: the others' tasks and health report through it.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
AIRFLOW = str(Path(sys.executable).parent / "airflow")


@dataclass
class AirflowUI:
    """The UI's processes, their logs and pid files in ``folder``, the API server on ``port``."""

    folder: Path
    port: int = 8080
    password: str = DEFAULT_PASSWORD
    # Airflow settings over this class's own (say, a test's scheduler that creates no scheduled runs).
    settings: Mapping[str, str] = field(default_factory=dict)
    # The components this process started, to reap when they stop (else their zombies linger).
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, init=False, repr=False)
    # The components' environment once started: what `airflow` CLI commands against them need.
    environment: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def passwords_file(self) -> Path:
        return self.folder / "passwords.json"

    def write_passwords_file(self) -> None:
        """Give the configured user our password, readable by this user only."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.passwords_file.touch(mode=0o600)
        self.passwords_file.chmod(0o600)
        self.passwords_file.write_text(json.dumps({USERNAME: self.password}))

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` (Airflow home, connections, variables) plus the settings of the UI processes."""
        return {
            **base,
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # Enough for these DAGs on a laptop; the LocalExecutor forks this many workers up front.
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            # Links to the UI, such as the log link in an alert, point here (only its path is served).
            "AIRFLOW__API__BASE_URL": self.url,
            # Tasks report to the execution API of our api-server, not the default localhost:8080.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            **self.settings,
        }

    def _pid_file(self, name: str) -> Path:
        return self.folder / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def _pid(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text())
            os.killpg(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def is_running(self) -> bool:
        return any(self._pid(name) is not None for name in COMPONENTS)

    def start(self, base_env: Mapping[str, str], timeout: float = 180.0) -> None:
        """Migrate the metadata DB, create the pools of ``pools.json``, start every component and
        wait until the UI reports them healthy."""
        if self.is_running():
            raise RuntimeError(f"the Airflow UI is already running at {self.url}; stop it first")
        with socket.socket() as probe:
            # Another server there (say, the compose stack's Airflow) would answer our health checks.
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise RuntimeError(f"port {self.port} is taken; choose another with LOCAL_AIRFLOW_PORT")
        env = self.env(base_env)
        self.write_passwords_file()
        self.environment = env
        for command in (["db", "migrate"], ["pools", "import", str(POOLS_FILE)]):
            self.cli(*command)
        try:
            for name in COMPONENTS:
                self.processes[name] = self._spawn(name, env)
            self.wait_until_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def cli(self, *arguments: str, timeout: float = 300.0) -> str:
        """Run ``airflow <arguments>`` against this Airflow (its home, metadata DB and settings);
        return its output, or raise with the output's end if it fails."""
        result = subprocess.run(
            [AIRFLOW, *arguments], env=self.environment, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            output = result.stdout[-3000:] + result.stderr[-3000:]
            raise RuntimeError(f"airflow {' '.join(arguments)} failed:\n{output}")
        return result.stdout

    def _spawn(self, name: str, env: Mapping[str, str]) -> subprocess.Popen:
        # The api-server reads task logs from files in AIRFLOW_HOME on this machine: no log servers.
        extra = ["--skip-serve-logs"] if name in ("scheduler", "triggerer") else []
        with self.log_file(name).open("ab") as log:
            process = subprocess.Popen(
                [AIRFLOW, name, *extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=dict(env),
                start_new_session=True,  # its own process group: stop() can end what it leaves behind
            )
        self._pid_file(name).write_text(str(process.pid))
        return process

    def health(self) -> dict[str, str]:
        """Each component's status as the api-server reports it (empty while it does not answer)."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as response:
                body = json.load(response)
        except (OSError, ValueError):  # not listening yet, or an error page
            return {}
        return {component: str((body.get(component) or {}).get("status")) for component in body}

    def wait_until_healthy(self, timeout: float) -> None:
        """Block until the metadata DB and every component are healthy; fail early if one exits."""
        deadline = time.monotonic() + timeout
        expected = ("metadatabase", "scheduler", "dag_processor", "triggerer")
        status: dict[str, str] = {}
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    log = self.log_file(name)
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                    raise RuntimeError(
                        f"airflow {name} exited with code {process.returncode} ({log}):\n{tail}"
                    )
            status = self.health()
            if all(status.get(component) == "healthy" for component in expected):
                return
            time.sleep(1)
        raise TimeoutError(f"Airflow was not healthy within {timeout:.0f} s: {status}; logs in {self.folder}")

    def stop(self, grace: float = 20.0) -> None:
        """Stop every component and wait for its process group to end, so nothing outlives the UI.

        The api-server goes last: running tasks report to it, and a task that cannot retries for
        minutes. Works from another process too (``python -m local_stack ui-stop``): the pid files
        say what to stop.
        """
        self._stop(("triggerer", "dag-processor", "scheduler"), grace)
        self._stop(("api-server",), grace)

    def stop_component(self, name: str, grace: float = 20.0) -> None:
        """Stop one component (``triggerer``...) as ``stop`` does, leaving the others running."""
        self._stop((name,), grace)

    def start_component(self, name: str, timeout: float = 120.0) -> None:
        """Start a component ``stop_component`` stopped, with the same environment; wait until healthy."""
        self.processes[name] = self._spawn(name, self.environment)
        self.wait_until_healthy(timeout)

    def _stop(self, names: tuple[str, ...], grace: float) -> None:
        """SIGTERM, then SIGKILL to what is left of ``names`` after ``grace`` seconds.

        The SIGTERM goes to each main process only: it stops its own workers, and a scheduler whose
        executor workers were killed under it waits for them forever. The SIGKILL ends what still
        runs after ``grace``, such as a long task.
        """
        for name in names:
            pid = self._pid(name)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(self._pid(name) is not None for name in names) and time.monotonic() < deadline:
            for name in names:
                if name in self.processes:
                    self.processes[name].poll()  # reap our child, else its zombie keeps the group alive
            time.sleep(0.2)
        for name in names:
            pid = self._pid(name)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            process = self.processes.pop(name, None)
            if process is not None:
                process.wait(timeout=10)
            self._pid_file(name).unlink(missing_ok=True)
