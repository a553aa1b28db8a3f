"""
### NYC taxi trips: TLC download → Parquet in GCS, one month per run

Each run writes one month of one taxi colour to the bucket in the Variable `gcs_bucket`:

- `gs://{bucket}/{taxi}/{taxi}_tripdata_{YYYY-MM}.parquet`: the cleaned month in one file;
- `gs://{bucket}/{taxi}_trips/pickup_date=YYYY-MM-DD/{taxi}_tripdata_{YYYY-MM}.parquet`: the same
  rows partitioned by pickup day, Hive style.

Every file has the colour's declared schema, whatever the month, so BigQuery loads any month into
the same table. A rerun overwrites the month's objects and deletes any it no longer writes. The
task publishes the `nyc_taxi_parquet` asset, which schedules `taxi_gcs_to_bigquery`.

Same download, schema, cleaning rules, schedule and params as `taxi_api_to_postgres`.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from include.assets import TAXI_PARQUET
from include.dag_defaults import DEFAULT_ARGS, FIRST_MIRROR_MONTH, MONTHLY, MONTHLY_DEADLINE, monthly_params

GCP_CONN_ID = "google_cloud_default"


@dag(
    schedule=MONTHLY,
    start_date=FIRST_MIRROR_MONTH,
    catchup=True,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    deadline=MONTHLY_DEADLINE,  # alerts: a run still going long after being queued
    params=monthly_params(),
    tags=["nyc-taxi", "gcs", "parquet", "monthly"],
    doc_md=__doc__,
)
def taxi_api_to_gcs():
    @task(outlets=[TAXI_PARQUET])
    def extract_to_parquet(params: dict, outlet_events, dag_run=None, data_interval_start=None) -> dict:
        from dataclasses import asdict

        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.flows.taxi_api_to_gcs import export_month_to_gcs
        from include.sources import DEFAULT_TLC_BASE_URL, MonthRequest, downloaded_month

        request = MonthRequest.from_run(params, data_interval_start, dag_run.run_after.date())
        base_url = Variable.get("tlc_base_url", default=DEFAULT_TLC_BASE_URL)
        with downloaded_month(base_url, request) as path:
            export = asdict(
                export_month_to_gcs(GCSHook(GCP_CONN_ID), path, request, Variable.get("gcs_bucket"))
            )
        outlet_events[TAXI_PARQUET].extra = export
        return export

    extract_to_parquet()


taxi_api_to_gcs()
