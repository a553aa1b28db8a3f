"""
### NYC taxi warehouse models: dbt, run by Airflow through Cosmos

The dbt project `include/dbt` (see docs/dbt.md) builds, in the warehouse schema of the loaded trips:

* `stg_{family}_tripdata` — each family's trips in one vocabulary, with `service_type` and a
  surrogate `trip_id`;
* `dim_zones` — the TLC's taxi zones (a dbt seed);
* `fact_trips` — yellow and green trips whose pickup and drop-off zones are both known;
* `dm_monthly_zone_revenue` — trips, money and averages per pickup zone, month and service type.

Every seed and model is a task, and its dbt tests the task right after it: a failed test stops
what depends on it and alerts like any failed task. This DAG builds them in Postgres
(`postgres_default`, schema Variable `pg_schema`), scheduled on `nyc_taxi_postgres_month`, which
`taxi_api_to_postgres` publishes per month; `taxi_warehouse_models_bigquery` builds the same in
BigQuery.

**months_to_build** reads the months from the triggering asset events (a manual run: the `months`
param; empty rebuilds every month) and dbt gets them as the var `months`: `fact_trips` and
`dm_monthly_zone_revenue` replace those months only (Postgres delete+insert on the month, BigQuery
insert_overwrite of the month partitions), never the rest of the history. The tasks are rendered
from the manifest `scripts/dbt-parse.sh` writes at build time (`include/flows/dbt_models.py`).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include.flows.assets import TAXI_POSTGRES_MONTH
from include.flows.dbt_models import build_models, months_param
from include.flows.defaults import DEFAULT_ARGS


@dag(
    schedule=TAXI_POSTGRES_MONTH,
    start_date=datetime(2009, 1, 1),  # runs come from asset events, not dates
    catchup=False,
    max_active_runs=1,  # two runs replacing the same month would race
    default_args=DEFAULT_ARGS,
    params=months_param(),
    tags=["nyc-taxi", "dbt", "postgres"],
    doc_md=__doc__,
)
def taxi_warehouse_models():
    build_models("postgres", TAXI_POSTGRES_MONTH, schema_variable="pg_schema")


taxi_warehouse_models()
