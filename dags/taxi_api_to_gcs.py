"""
### NYC taxi trips: TLC download → Parquet in GCS, every taxi family, one month per run

Each run writes one month of each taxi family the source publishes for it to the bucket in the
Variable `gcs_bucket`, one task group per family, each independent of the others:

- `{taxi}_tripdata/{taxi}_tripdata_{YYYY-MM}.parquet`: the cleaned month in one file;
- `{taxi}_tripdata_by_day/pickup_date=YYYY-MM-DD/{taxi}_tripdata_{YYYY-MM}.parquet`: the same rows
  partitioned by pickup day, Hive style;
- `{taxi}_tripdata_rejects/` (unreadable rows, if any) and `{taxi}_tripdata_profiles/` (the
  month's profile, which later months are compared with).

Every file has the family's declared schema plus `source_month`, whatever the month or the
source's format, so BigQuery loads any month into one table. The steps are those of
`taxi_api_to_postgres`: **wait_for_file**, **stage** (under a staging prefix of the run's own),
**audit** and **check_anomalies** (on the staged profile), **publish** (server-side copies to the
final names, stale objects deleted, the profile written last) and the teardown **drop_staging**.
Publishing a month emits the `nyc_taxi_parquet` asset event that schedules `taxi_gcs_to_bigquery`.
"""

from __future__ import annotations

from airflow.sdk import TaskGroup, dag, task

from include.flows.assets import TAXI_PARQUET
from include.flows.defaults import (
    DEFAULT_ARGS,
    LOAD_TIMEOUT,
    MONTHLY_DEADLINE,
    monthly_params,
    monthly_schedule,
)
from include.source.families import TAXIS
from include.source.sensors import WaitForMonthFile
from include.source.sources import SourceSettings

GCP_CONN_ID = "google_cloud_default"
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
    @task
    def plan_month(params: dict, dag_run=None, data_interval_start=None) -> dict:
        from dataclasses import asdict

        from include.source.sources import plan_run, runtime_settings

        return asdict(plan_run(params, data_interval_start, dag_run.run_after.date(), runtime_settings()))

    @task(execution_timeout=LOAD_TIMEOUT)
    def stage(request: dict, run_id: str | None = None) -> dict:
        from dataclasses import asdict

        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.flows.taxi_api_to_gcs import stage
        from include.source.sources import MonthRequest, downloaded

        month_request = MonthRequest.from_dict(request)
        with downloaded(month_request.url) as path:
            return asdict(
                stage(GCSHook(GCP_CONN_ID), path, month_request, Variable.get("gcs_bucket"), run_id)
            )

    @task
    def audit(staged: dict) -> None:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        from include.flows.taxi_api_to_gcs import StagedExport, audit

        audit(GCSHook(GCP_CONN_ID), StagedExport(**staged))

    @task
    def check_anomalies(staged: dict, **context) -> list[dict]:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.checks.quality import parse_actions
        from include.flows.taxi_api_to_gcs import StagedExport, check_anomalies
        from include.observing.alerts import notify_anomalies

        actions = parse_actions(Variable.get("anomaly_actions", default={}, deserialize_json=True))
        anomalies = check_anomalies(GCSHook(GCP_CONN_ID), StagedExport(**staged), actions)
        found = [anomaly.as_json() for anomaly in anomalies]
        notify_anomalies(context, staged["taxi"], staged["month"], found)
        return found

    @task(outlets=[TAXI_PARQUET])
    def publish(staged: dict, outlet_events=None) -> dict:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        from include.flows.taxi_api_to_gcs import StagedExport, publish

        published = publish(GCSHook(GCP_CONN_ID), StagedExport(**staged))
        outlet_events[TAXI_PARQUET].extra = published
        return published

    # A plain @task made a teardown below: a @teardown function cannot be called once per family.
    @task
    def drop_staging(request: dict, run_id: str | None = None) -> None:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.flows.taxi_api_to_gcs import drop_staging

        drop_staging(
            GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"), request["taxi"], request["month"], run_id
        )

    plan = plan_month()
    for taxi in TAXIS:
        with TaskGroup(group_id=taxi):
            request = WaitForMonthFile(task_id="wait_for_file", taxi=taxi, plan=plan).output
            staged = stage(request)
            published = publish(staged)
            staged >> audit(staged) >> check_anomalies(staged) >> published
            published >> drop_staging(request).as_teardown(setups=staged)


taxi_api_to_gcs()
