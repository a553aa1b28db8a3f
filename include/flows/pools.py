"""The pools the DAGs' tasks run in, and a check that fails a run at once when one is missing.

A task whose pool does not exist stays ``scheduled`` for ever; the scheduler only logs a warning
nobody reads. Tasks cannot see pools (the Task SDK's execution API has none, and Airflow 3 bars
them from the metadata database), so the check runs in the scheduler: a listener registered by
``plugins/nyc_taxi_pools.py`` looks at a run as it starts and, when a pool of this repository that
its tasks use is missing, fails the run with a note that names the command to run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow.listeners import hookimpl

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

log = logging.getLogger(__name__)

# The pools of config/pools.json (a unit test holds them equal); other DAGs' pools are not ours to check.
POOLS = frozenset({"postgres_loads", "bigquery_jobs"})
POOLS_COMMAND = "airflow pools import config/pools.json"


def missing_pools_message(missing: set[str]) -> str:
    """What the run's note says: which pools, and the command that creates them."""
    names = ", ".join(sorted(missing))
    verb = "does" if len(missing) == 1 else "do"
    return (
        f"pool {names} {verb} not exist, so its tasks would wait for ever: run `{POOLS_COMMAND}` "
        "(see docs/own-airflow.md), then clear this run"
    )


@hookimpl
def on_dag_run_running(dag_run: DagRun, msg: str) -> None:
    """Fail a run that starts while a pool its tasks need is missing, with the reason as its note."""
    from airflow.models.pool import Pool
    from airflow.utils.state import DagRunState
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    dag = getattr(dag_run, "dag", None)  # the scheduler sets it before notifying
    session = object_session(dag_run)
    if dag is None or session is None:
        return
    needed = {task.pool for task in dag.tasks} & POOLS
    if not needed:
        return
    missing = needed - set(session.scalars(select(Pool.pool).where(Pool.pool.in_(needed))))
    if not missing:
        return
    message = missing_pools_message(missing)
    log.error("%s run %s: %s", dag_run.dag_id, dag_run.run_id, message)
    dag_run.note = message
    dag_run.set_state(DagRunState.FAILED)
