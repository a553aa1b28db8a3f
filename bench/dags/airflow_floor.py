"""What any DAG run costs under ``airflow dags test`` on this machine: one task that does nothing.

``bench`` runs it beside ``taxi_api_to_postgres`` to split a DAG run's wall time into Airflow's
share (start-up, parsing, the in-process execution API, the run's bookkeeping, exit) and ours.
"""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(schedule=None, tags=["bench"])
def airflow_floor():
    @task
    def nothing() -> None:
        """Nothing: the run's cost is Airflow's alone."""

    nothing()


airflow_floor()
