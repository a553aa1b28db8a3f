"""
### NYC taxi trips: TLC download → Parquet in GCS, every taxi family, one month per run

Each run writes one month of each taxi family the source publishes for it to the bucket in the
Variable `gcs_bucket`, one task group per family, each independent of the others
(`include/flows/load_month.py` builds them; `include/destinations/gcs.py` is the destination):

- `{taxi}_tripdata/{taxi}_tripdata_{YYYY-MM}.parquet`: the cleaned month in one file;
- `{taxi}_tripdata_by_day/pickup_date=YYYY-MM-DD/{taxi}_tripdata_{YYYY-MM}.parquet`: the same rows
  partitioned by pickup day, Hive style;
- `{taxi}_tripdata_rejects/` (unreadable rows, if any) and `{taxi}_tripdata_profiles/` (the
  month's profile, which later months are compared with).

Every file has the family's declared schema plus `source_month`, whatever the month or the
source's format, so BigQuery loads any month into one table. The steps are those of
`taxi_api_to_postgres`: **wait_for_file**, **stage** (under a staging prefix of the run's own),
**audit** and **check_anomalies** (on the staged profile; a person's approval when a flag asks
for one), **publish** (server-side copies to the
final names, stale objects deleted, the profile written last) and the teardown **drop_staging**.
Publishing a month emits the `nyc_taxi_parquet` asset event that schedules `taxi_gcs_to_bigquery`.
"""

from __future__ import annotations

from airflow.sdk import dag

from include.flows.assets import TAXI_PARQUET
from include.flows.defaults import DEFAULT_ARGS, MONTHLY_DEADLINE, monthly_params, monthly_schedule
from include.flows.load_month import load_every_family
from include.source.sources import SourceSettings

SOURCE = SourceSettings.from_environment()  # the schedule's bounds; see include/source/sources.py


@dag(
    schedule=monthly_schedule(SOURCE),
    start_date=SOURCE.start_date,
    catchup=True,  # unpaused, the scheduler writes every month of the source, each once
    max_active_runs=3,
    default_args=DEFAULT_ARGS,
    deadline=MONTHLY_DEADLINE,  # alerts: a run still going long after being queued
    params=monthly_params(),
    tags=["nyc-taxi", "gcs", "parquet", "monthly"],
    doc_md=__doc__,
)
def taxi_api_to_gcs():
    load_every_family("include.destinations.gcs.GCS", publish_outlets=[TAXI_PARQUET])


taxi_api_to_gcs()
