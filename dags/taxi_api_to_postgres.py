"""
### NYC taxi trips: TLC download → Postgres, one month per run

Each run loads one month of one taxi colour into `ny_taxi.{taxi}_taxi_trips`:

1. **extract_load** downloads `{taxi}_tripdata_{YYYY-MM}.csv.gz` from the Variable `tlc_base_url`,
   reads it in blocks with the colour's explicit schema, applies the cleaning rules
   (`include/transform.py`) and COPYs the rows into Postgres, replacing that month in one
   transaction: a rerun never duplicates, a failed load keeps the previous rows. Rows that
   cannot be read go to `{taxi}_taxi_trips_rejects` with their line and reason.
2. **check_month** charts the month's trips per pickup day (a PNG in the Variable `chart_dir`),
   then fails the run if the month has no rows or rows without a pickup time, and counts the
   pickups outside the month.

The month is the run's data interval (scheduled runs and backfills) or the `month` param.
Backfill Q4 2020: `airflow backfill create --dag-id taxi_api_to_postgres
--from-date 2020-10-01 --to-date 2020-12-31`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from include.dag_defaults import DEFAULT_ARGS, FIRST_MIRROR_MONTH, MONTHLY, MONTHLY_DEADLINE, monthly_params

POSTGRES_CONN_ID = "postgres_default"


@dag(
    schedule=MONTHLY,
    start_date=FIRST_MIRROR_MONTH,
    catchup=True,  # unpaused, the scheduler loads every month from 2019-01 on
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    deadline=MONTHLY_DEADLINE,  # alerts: a run still going long after being queued
    params=monthly_params(),
    tags=["nyc-taxi", "postgres", "monthly"],
    doc_md=__doc__,
)
def taxi_api_to_postgres():
    @task
    def extract_load(params: dict, dag_run=None, data_interval_start: datetime | None = None) -> dict:
        from dataclasses import asdict

        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        from include.flows.taxi_api_to_postgres import load_month_to_postgres
        from include.postgres import DEFAULT_SCHEMA, checked_identifier
        from include.sources import DEFAULT_TLC_BASE_URL, MonthRequest, downloaded_month

        # "Today" is when the run was due, not the clock, so a retry validates exactly as before.
        request = MonthRequest.from_run(params, data_interval_start, dag_run.run_after.date())
        schema_name = checked_identifier(
            Variable.get("pg_schema", default=DEFAULT_SCHEMA), "Variable pg_schema"
        )
        base_url = Variable.get("tlc_base_url", default=DEFAULT_TLC_BASE_URL)
        with downloaded_month(base_url, request) as path, PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
            return asdict(load_month_to_postgres(conn, path, request, schema_name))

    @task
    def check_month(loaded: dict) -> None:
        from pathlib import Path

        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        from include.chart import DEFAULT_CHART_DIR
        from include.flows.taxi_api_to_postgres import LoadResult, verify_loaded_month, write_month_chart

        result = LoadResult(**loaded)
        with PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
            # The chart first: when the check fails, it shows what was loaded.
            write_month_chart(conn, result, Path(Variable.get("chart_dir", default=DEFAULT_CHART_DIR)))
            verify_loaded_month(conn, result)

    check_month(extract_load())


taxi_api_to_postgres()
