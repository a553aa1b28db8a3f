"""A private PostgreSQL server on loopback, with its data directory in a folder of ours.

It uses the machine's PostgreSQL server binaries (Debian's ``postgresql`` package; ``scripts/
bootstrap.sh`` installs it when missing) and never touches a system cluster: ``initdb`` and
``pg_ctl`` run on our own data directory, port and socket directory. PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

USER = "taxi"
DATABASE = "ny_taxi"
# Airflow's own metadata, next to the warehouse: the UI's four processes write to it at once,
# which SQLite cannot take (its writers wait on one lock and give up with "database is locked").
METADATA_DATABASE = "airflow"


def server_bin_dir() -> Path:
    """The newest installed PostgreSQL server's ``bin`` folder."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise FileNotFoundError(
        "no PostgreSQL server found (initdb); install it with: apt-get install -y postgresql"
    )


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _grant_traverse(path: Path) -> None:
    """Let the ``postgres`` user reach ``path`` when running as root (a private clone may be 0700)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


@dataclass(frozen=True)
class PostgresServer:
    """A cluster in ``folder`` listening on ``127.0.0.1:port``."""

    folder: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    @property
    def password_file(self) -> Path:
        return self.folder / "password"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def uri(self) -> str:
        """The connection URI, the form ``AIRFLOW_CONN_POSTGRES_DEFAULT`` takes."""
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def metadata_uri(self, database: str = METADATA_DATABASE) -> str:
        """Airflow's ``sql_alchemy_conn`` for ``database``, with the driver Airflow documents."""
        return f"postgresql+psycopg2://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        subprocess.run(
            _as_server_user([str(server_bin_dir() / command[0]), *command[1:]]),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def _initialise(self) -> None:
        """Create the cluster with a random password: nothing secret is ever committed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.password_file.write_text(secrets.token_urlsafe(18))
        self.password_file.chmod(0o600)
        pwfile = self.folder / "initdb-password"
        pwfile.write_text(self.password)
        self.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            _grant_traverse(self.folder)
            shutil.chown(self.folder, "postgres")
            shutil.chown(self.socket_dir, "postgres")
            shutil.chown(pwfile, "postgres")
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            pwfile.unlink()

    def is_running(self) -> bool:
        status = subprocess.run(
            _as_server_user([str(server_bin_dir() / "pg_ctl"), "status", "-D", str(self.data_dir)]),
            capture_output=True,
        )
        return status.returncode == 0

    def start(self) -> None:
        """Initialise the cluster on first use, start it, and create the ``ny_taxi`` database."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._initialise()
        if not self.is_running():
            options = (
                f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            self._run(
                "pg_ctl",
                "start",
                "-w",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.folder / "server.log"),
                "-o",
                options,
            )
        self.create_database(DATABASE)

    def _psql(self, sql: str) -> str:
        """Run ``sql`` as the cluster's owner over the socket and return what it prints."""
        psql = [
            str(server_bin_dir() / "psql"),
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            USER,
            "-d",
            "postgres",
            "-tAc",
            sql,
        ]
        result = subprocess.run(_as_server_user(psql), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"psql on port {self.port} failed on {sql!r}: {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str) -> None:
        """Create database ``name`` (one of our own fixed or generated names) unless it exists."""
        if self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip() != "1":
            self._psql(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, ending any session still connected to it."""
        self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.data_dir.exists() and self.is_running():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))
