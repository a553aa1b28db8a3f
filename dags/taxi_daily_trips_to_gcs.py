"""
### NYC taxi trips: one day from Postgres → Parquet in GCS

Each run exports the trips of one taxi colour picked up on one day, read from the table
`taxi_api_to_postgres` loads, to `gs://{bucket}/{taxi}/{YYYY}/{MM}/{DD}/daily_trips.parquet`.

The day is the run's data interval (`[day, next day)`), or the `day` param for a manual run;
rerunning a day overwrites its one object, and a day without trips writes nothing and says so in
the log. Backfill a month of days with `airflow backfill create --dag-id taxi_daily_trips_to_gcs
--from-date 2021-01-01 --to-date 2021-01-31`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from include.dag_defaults import DEFAULT_ARGS, FIRST_MIRROR_MONTH

GCP_CONN_ID = "google_cloud_default"
POSTGRES_CONN_ID = "postgres_default"


@dag(
    # Data-interval timetable: the run for Jan 5 covers [Jan 5, Jan 6) and starts on Jan 6.
    schedule=CronDataIntervalTimetable("0 6 * * *", timezone="UTC"),
    start_date=FIRST_MIRROR_MONTH,
    catchup=False,  # the monthly load must come first; backfill the days you need
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    params={
        "taxi": Param("yellow", enum=["yellow", "green"], description="Taxi colour to export."),
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
    def export_day(params: dict, data_interval_start: datetime | None = None) -> int:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        from include.flows.taxi_daily_trips_to_gcs import export_day_to_gcs
        from include.months import resolve_day
        from include.postgres import DEFAULT_SCHEMA
        from include.schema import schema_for

        taxi = schema_for(params["taxi"]).colour
        day = resolve_day(params.get("day"), data_interval_start)
        with PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
            schema_name = Variable.get("pg_schema", default=DEFAULT_SCHEMA)
            return export_day_to_gcs(
                conn, GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"), schema_name, taxi, day
            )

    export_day()


taxi_daily_trips_to_gcs()
