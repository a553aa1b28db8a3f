"""What any DAG run costs under ``airflow dags test`` on this machine: two tasks that do nothing.

``bench`` runs it beside ``taxi_api_to_postgres`` to split a DAG run's wall time into Airflow's
share (start-up, parsing, the in-process execution API, a task after another, the run's
bookkeeping, exit) and ours. Two tasks, one after the other, are the floor issue 27 defines: the
least a flow with a step that depends on another costs, so what ours adds beyond it is our own.
"""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(schedule=None, tags=["bench"])
def airflow_floor():
    @task
    def first() -> None:
        """Nothing: the run's cost is Airflow's alone."""

    @task
    def second() -> None:
        """Nothing, once ``first`` is done."""

    first() >> second()


airflow_floor()
