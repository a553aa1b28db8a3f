"""Fails a run of this repository's DAGs at its start when a pool it needs is missing (the scheduler
would leave its tasks waiting silently); see include/flows/pools.py."""

from airflow.plugins_manager import AirflowPlugin

from include.flows import pools


class NycTaxiPoolsPlugin(AirflowPlugin):
    name = "nyc_taxi_pools"
    listeners = [pools]  # noqa: RUF012 - the attribute AirflowPlugin reads
