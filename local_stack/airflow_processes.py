"""Airflow's four processes with an Airflow home and a metadata database of their own.

The browser test (``tests/e2e``), the scheduler tests (``tests/scheduler``) and the backfill
benchmark (``bench/backfill.py``) all start Airflow through :func:`running_airflow`: the same
:class:`~local_stack.airflow_ui.AirflowUI` that ``scripts/ui.sh`` runs, on a Postgres of theirs,
so they check and measure what a user runs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from local_stack.airflow_ui import AirflowUI
from local_stack.postgres import PostgresServer
from local_stack.stack import airflow_env, free_port


@contextmanager
def running_airflow(
    folder: Path,
    postgres: PostgresServer,
    env: Mapping[str, str],
    settings: Mapping[str, str] | None = None,
) -> Iterator[AirflowUI]:
    """Start api-server, scheduler, dag-processor and triggerer; stop them and drop their database after.

    ``env`` holds the DAGs' connections and variables; ``settings`` are Airflow settings over the
    UI's own. The Airflow home is ``folder/airflow`` (task logs in ``folder/airflow/logs``), the
    components' logs are in ``folder/airflow-ui``. The login's password is random.
    """
    metadata = f"airflow_test_{secrets.token_hex(5)}"
    postgres.create_database(metadata)
    ui = AirflowUI(
        folder / "airflow-ui", port=free_port(), password=secrets.token_urlsafe(12), settings=settings or {}
    )
    process_env = {
        **os.environ,
        **airflow_env(folder / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.metadata_uri(metadata),
        **env,
    }
    try:
        ui.start(process_env)
        yield ui
    finally:
        ui.stop()
        postgres.drop_database(metadata)
