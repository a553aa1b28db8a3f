"""
### NYC taxi trips: one day from Postgres → Parquet in GCS, every taxi family

Each run exports the trips of each taxi family picked up on one day, read (as Arrow, through
ADBC) from the tables `taxi_api_to_postgres` loads, to
`gs://{bucket}/{taxi}_tripdata_exports/pickup_date=YYYY-MM-DD/{taxi}_tripdata_{YYYY-MM-DD}.parquet`.

The day is the run's data interval (`[day 00:00, next day 00:00)`, UTC), or the `day` param for a
manual run; the families are the `taxis` param (all by default). A rerun overwrites the day's
object; a day without trips deletes it; a day of a month never loaded fails naming the monthly
flow to run first. Backfill the days of a month with `airflow backfill create --dag-id
taxi_daily_trips_to_gcs --from-date 2021-01-01 --to-date 2021-01-31`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from include.flows.defaults import DEFAULT_ARGS, daily_schedule, taxis_param
from include.source.sources import SourceSettings

GCP_CONN_ID = "google_cloud_default"
POSTGRES_CONN_ID = "postgres_default"
SOURCE = SourceSettings.from_environment()  # the schedule's bounds; see include/source/sources.py


@dag(
    schedule=daily_schedule(SOURCE),
    start_date=SOURCE.start_date,
    catchup=False,  # the monthly load must come first; backfill the days you need
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    params={
        "taxis": taxis_param("export"),
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Day to export as YYYY-MM-DD; empty means the run's data interval.",
        ),
    },
    tags=["nyc-taxi", "postgres", "gcs", "daily"],
    doc_md=__doc__,
)
def taxi_daily_trips_to_gcs():
    @task
    def plan_day(params: dict, data_interval_start=None, dag_run=None) -> list[dict]:
        from include.flows.taxi_daily_trips_to_gcs import plan_day
        from include.source.sources import runtime_settings

        return plan_day(params, data_interval_start, runtime_settings().source, dag_run.run_after.date())

    @task(map_index_template="{{ task.op_kwargs['taxi'] }} {{ task.op_kwargs['day'] }}")
    def export_day(taxi: str, day: str) -> int:
        from datetime import date

        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        from include.destinations.postgres import pg_schema
        from include.flows.taxi_daily_trips_to_gcs import export_day

        hook = PostgresHook(POSTGRES_CONN_ID)
        with hook.get_conn() as conn:
            return export_day(
                conn,
                hook.get_uri(),
                GCSHook(GCP_CONN_ID),
                Variable.get("gcs_bucket"),
                pg_schema(),
                taxi,
                date.fromisoformat(day),
            )

    export_day.expand_kwargs(plan_day())


taxi_daily_trips_to_gcs()
