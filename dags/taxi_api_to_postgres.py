"""
### NYC taxi trips: TLC download → Postgres, every taxi family, one month per run

Each run loads one month of each taxi family the source publishes for it (yellow, green, FHV)
into `{pg_schema}.{taxi}_tripdata`, one task group per family, each independent of the others:

1. **wait_for_file** skips the family if the run does not load it, then waits — deferred, holding
   no worker slot — until the source has the month's file (a fixed archive fails at once on 404);
2. **stage** downloads the file, reads it with the family's declared schema, applies the cleaning
   rules (`include/transform.py`) and COPYs the rows into a staging table of this run's own,
   profiling them on the way (rows per day, nulls, quantiles) into `{taxi}_tripdata_profile`;
   unreadable rows go to the staging rejects with their line and reason;
3. **audit** (`SQLTableCheckOperator`) checks the staged profile: rows loaded, most rows kept,
   pickups inside the month;
4. **check_anomalies** compares the profile with the family's trailing published months and
   flags features out of range (warn, or fail per the Variable `anomaly_actions`);
5. **publish** swaps the staged month in for the old one in one transaction; until then readers
   see the old month, and a failed check leaves it in place;
6. **drop_staging** (a teardown) removes whatever this run staged and did not publish.

The month is the run's data interval (scheduled runs and backfills) or the `month` param; the
families are the `taxis` param (all by default). The schedule spans the months the configured
source has (`taxi_source`: `mirror` 2019-01 to 2021-07, `tlc` 2009-01 on), narrowed by
`taxi_first_month` / `taxi_last_month`. Backfill Q4 2020:
`airflow backfill create --dag-id taxi_api_to_postgres --from-date 2020-10-01 --to-date 2020-12-31`.
"""

from __future__ import annotations

from airflow.providers.common.sql.operators.sql import SQLTableCheckOperator
from airflow.sdk import TaskGroup, dag, task

from include.assets import TAXI_POSTGRES_MONTH
from include.dag_defaults import (
    DEFAULT_ARGS,
    LOAD_TIMEOUT,
    MONTHLY_DEADLINE,
    monthly_params,
    monthly_schedule,
)
from include.quality import MONTH_CHECKS
from include.schema import TAXIS
from include.sensors import WaitForMonthFile
from include.sources import SourceSettings

POSTGRES_CONN_ID = "postgres_default"
SOURCE = SourceSettings.from_environment()  # the schedule's bounds; see include/sources.py


@dag(
    schedule=monthly_schedule(SOURCE),
    start_date=SOURCE.start_date,
    catchup=True,  # unpaused, the scheduler loads every month of the source, each once
    max_active_runs=3,
    default_args=DEFAULT_ARGS,
    deadline=MONTHLY_DEADLINE,  # alerts: a run still going long after being queued
    params=monthly_params(),
    tags=["nyc-taxi", "postgres", "monthly"],
    doc_md=__doc__,
)
def taxi_api_to_postgres():
    @task
    def plan_month(params: dict, dag_run=None, data_interval_start=None) -> dict:
        from dataclasses import asdict

        from include.sources import plan_run, runtime_settings

        # "Today" is when the run was due, not the clock, so a retry validates exactly as before.
        return asdict(plan_run(params, data_interval_start, dag_run.run_after.date(), runtime_settings()))

    @task(pool="postgres_loads", execution_timeout=LOAD_TIMEOUT)
    def stage(request: dict, run_id: str | None = None) -> dict:
        from dataclasses import asdict

        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from include.flows.taxi_api_to_postgres import stage
        from include.postgres import pg_schema
        from include.sources import MonthRequest, downloaded

        month_request, schema_name = (
            MonthRequest.from_dict(request),
            pg_schema(),
        )  # checked before the download
        with downloaded(month_request.url) as path, PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
            return asdict(stage(conn, path, month_request, schema_name, run_id))

    @task
    def check_anomalies(staged: dict, **context) -> list[dict]:
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        from include.alerts import notify_anomalies
        from include.flows.taxi_api_to_postgres import check_anomalies
        from include.postgres import StagedMonth
        from include.quality import parse_actions

        actions = parse_actions(Variable.get("anomaly_actions", default={}, deserialize_json=True))
        with PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
            found = [a.as_json() for a in check_anomalies(conn, StagedMonth(**staged), actions)]
        notify_anomalies(context, staged["taxi"], staged["month"], found)
        return found

    @task(outlets=[TAXI_POSTGRES_MONTH])
    def publish(staged: dict, outlet_events=None) -> int:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from include.flows.taxi_api_to_postgres import publish
        from include.postgres import StagedMonth

        with PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
            rows = publish(conn, StagedMonth(**staged))
        outlet_events[TAXI_POSTGRES_MONTH].extra = {"taxi": staged["taxi"], "month": staged["month"]}
        return rows

    # A plain @task made a teardown below: a @teardown function cannot be called once per family.
    @task
    def drop_staging(request: dict, run_id: str | None = None) -> None:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from include.postgres import drop_staging, pg_schema, tripdata_table
        from include.sources import MonthRequest

        month_request = MonthRequest.from_dict(request)
        with PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
            drop_staging(conn, pg_schema(), tripdata_table(month_request.taxi), month_request.month, run_id)

    plan = plan_month()
    for taxi in TAXIS:
        with TaskGroup(group_id=taxi):
            request = WaitForMonthFile(task_id="wait_for_file", taxi=taxi, plan=plan).output
            staged = stage(request)
            audit = SQLTableCheckOperator(
                task_id="audit",
                conn_id=POSTGRES_CONN_ID,
                table=f"{{{{ var.value.get('pg_schema', 'ny_taxi') }}}}.{taxi}_tripdata_profile",
                partition_clause="run_id = '{{ run_id }}'",
                checks=MONTH_CHECKS,
                retry_on_failure=False,  # a failed check fails at once: another try reads the same row
            )
            published = publish(staged)
            staged >> audit >> check_anomalies(staged) >> published
            published >> drop_staging(request).as_teardown(setups=staged)


taxi_api_to_postgres()
