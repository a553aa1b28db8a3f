"""
### NYC taxi warehouse models in BigQuery: dbt, run by Airflow through Cosmos

The models of `taxi_warehouse_models` (docs/dbt.md) built in BigQuery (`google_cloud_default`
with a key file, dataset Variable `bq_dataset`), scheduled on `nyc_taxi_bigquery_month`, which
`taxi_gcs_to_bigquery` emits for each month it loads. `fact_trips` and `dm_monthly_zone_revenue`
are partitioned by month and clustered by zone; a run replaces the partitions of its months only
(insert_overwrite). Every seed and model is a task, its dbt tests the task right after it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include.flows.assets import TAXI_BIGQUERY_MONTH
from include.flows.dbt_models import build_models, months_param
from include.flows.defaults import DEFAULT_ARGS


@dag(
    schedule=TAXI_BIGQUERY_MONTH,
    start_date=datetime(2009, 1, 1),  # runs come from asset events, not dates
    catchup=False,
    max_active_runs=1,  # two runs replacing the same month would race
    default_args=DEFAULT_ARGS,
    params=months_param(),
    tags=["nyc-taxi", "dbt", "bigquery"],
    doc_md=__doc__,
)
def taxi_warehouse_models_bigquery():
    build_models("bigquery", TAXI_BIGQUERY_MONTH, schema_variable="bq_dataset")


taxi_warehouse_models_bigquery()
