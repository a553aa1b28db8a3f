"""
### NYC taxi trips: TLC download → Postgres, every taxi family, one month per run

Each run loads one month of each taxi family the source publishes for it (yellow, green, FHV, and
High-Volume FHV on the TLC's Parquet) into `{pg_schema}.{taxi}_tripdata`, one task group per
family, each independent of the others
(`include/flows/load_month.py` builds them; `include/destinations/postgres.py` is the destination):

1. **wait_for_file** skips the family if the run does not load it, then waits — in the triggerer,
   holding no worker slot — until the source has the month's file (a fixed archive fails at once
   on 404);
2. **stage** downloads the file, reads it with the family's declared schema, applies the cleaning
   rules (`include/source/transform.py`) and COPYs the rows into a staging table of this run's own,
   profiling them on the way (rows per day, nulls, quantiles) into `{taxi}_tripdata_profile`;
   unreadable rows go to the staging rejects with their line and reason;
3. **audit** (`SQLTableCheckOperator`) checks the staged profile: rows loaded, most rows kept,
   pickups inside the month;
4. **check_anomalies** compares the profile with the family's trailing published months and
   flags features out of range (warn, ask or fail per the Variable `anomaly_actions`); a flag
   that asks makes it wait for a person to approve or reject the month;
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
from airflow.sdk import dag

from include.checks.quality import MONTH_CHECKS
from include.flows.assets import TAXI_POSTGRES_MONTH
from include.flows.defaults import DEFAULT_ARGS, MONTHLY_DEADLINE, monthly_params, monthly_schedule
from include.flows.load_month import load_every_family
from include.source.sources import SourceSettings

POSTGRES_CONN_ID = "postgres_default"
SOURCE = SourceSettings.from_environment()  # the schedule's bounds; see include/source/sources.py


def audit_profile_row(taxi: str) -> SQLTableCheckOperator:
    """The checks as common-sql's check operator on the staged profile row."""
    return SQLTableCheckOperator(
        task_id="audit",
        conn_id=POSTGRES_CONN_ID,
        table=f"{{{{ var.value.get('pg_schema', 'ny_taxi') }}}}.{taxi}_tripdata_profile",
        partition_clause="run_id = '{{ run_id }}'",
        checks=MONTH_CHECKS,
        retry_on_failure=False,  # a failed check fails at once: another try reads the same row
    )


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
    load_every_family(
        "include.destinations.postgres.Postgres",
        stage_pool="postgres_loads",  # COPYs at once, bounded for the database's sake
        audit=audit_profile_row,
        publish_outlets=[TAXI_POSTGRES_MONTH],  # schedules the warehouse models of the month
    )


taxi_api_to_postgres()
