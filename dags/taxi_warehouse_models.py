"""
### NYC taxi warehouse models: dbt, run by Airflow through Cosmos

The dbt project `include/dbt` (see docs/dbt.md) builds, in the warehouse schema of the loaded trips:

* `stg_{family}_tripdata` — each family's trips in one vocabulary, with `service_type` and a
  surrogate `trip_id`;
* `dim_zones` — the TLC's taxi zones (a dbt seed);
* `fact_trips` — yellow and green trips whose pickup and drop-off zones are both known;
* `dm_monthly_zone_revenue` — trips, money and averages per pickup zone, month and service type.

Every seed and model is a task, and its dbt tests the task right after it: a failed test stops
what depends on it and alerts like any failed task. Two DAGs, one per warehouse:

* **taxi_warehouse_models** — Postgres (`postgres_default`, schema Variable `pg_schema`),
  scheduled on `nyc_taxi_postgres_month`, which `taxi_api_to_postgres` publishes per month;
* **taxi_warehouse_models_bigquery** — BigQuery (`google_cloud_default` with a key file, dataset
  Variable `bq_dataset`), scheduled on `nyc_taxi_bigquery_month` from `taxi_gcs_to_bigquery`.

**months_to_build** reads the months from the triggering asset events (a manual run: the `months`
param; empty rebuilds every month) and dbt gets them as the var `months`: `fact_trips` and
`dm_monthly_zone_revenue` replace those months only (Postgres delete+insert on the month, BigQuery
insert_overwrite of the month partitions), never the rest of the history. The tasks are rendered
from the manifest `scripts/dbt-parse.sh` writes at build time; dbt runs from its own environment.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import Asset, Param, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior, TestIndirectSelection
from cosmos.profiles import GoogleCloudServiceAccountFileProfileMapping, PostgresUserPasswordProfileMapping

from include.assets import TAXI_BIGQUERY_MONTH, TAXI_POSTGRES_MONTH
from include.dag_defaults import DEFAULT_ARGS

DBT_PROJECT = Path(__file__).resolve().parent.parent / "include" / "dbt"
# dbt's own environment (requirements-dbt.txt): .venv-dbt here, NYC_TAXI_DBT_EXECUTABLE in the image.
REPO = DBT_PROJECT.parents[1]
DBT_EXECUTABLE = os.environ.get("NYC_TAXI_DBT_EXECUTABLE") or str(REPO / ".venv-dbt" / "bin" / "dbt")
DEFAULT_SCHEMA = "ny_taxi"


def project() -> ProjectConfig:
    """The dbt project, rendered from its manifest (``scripts/dbt-parse.sh`` writes it)."""
    config = ProjectConfig(dbt_project_path=DBT_PROJECT, install_dbt_deps=False)
    # A plain local path, not the ObjectStoragePath Cosmos makes of a manifest_path argument: opening
    # one imports every filesystem provider (Google's among them): 0.6 s more of every parse.
    config.manifest_path = DBT_PROJECT / "target" / "manifest.json"
    return config


def profile(target: str) -> ProfileConfig:
    """The dbt profile, made from the Airflow connection when a task runs (no profiles.yml)."""
    if target == "postgres":
        mapping = PostgresUserPasswordProfileMapping(
            conn_id="postgres_default", profile_args={"schema": DEFAULT_SCHEMA}
        )
    else:
        mapping = GoogleCloudServiceAccountFileProfileMapping(
            conn_id="google_cloud_default", profile_args={"dataset": DEFAULT_SCHEMA}
        )
    return ProfileConfig(profile_name="nyc_taxi", target_name=target, profile_mapping=mapping)


def warehouse_models(dag_id: str, target: str, published_month: Asset, schema_variable: str):
    @dag(
        dag_id=dag_id,
        schedule=published_month,
        start_date=datetime(2009, 1, 1),  # runs come from asset events, not dates
        catchup=False,
        max_active_runs=1,  # two runs replacing the same month would race
        default_args=DEFAULT_ARGS,
        params={
            "months": Param(
                [],
                type="array",
                items={"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
                description="A manual run's months to rebuild, as YYYY-MM; empty rebuilds every month.",
            )
        },
        tags=["nyc-taxi", "dbt", target],
        doc_md=__doc__,
    )
    def models():
        @task(inlets=[published_month])
        def months_to_build(params: dict, triggering_asset_events=None, inlet_events=None) -> str:
            from include.flows.taxi_warehouse_models import dbt_months_var, months_to_build

            events = list(triggering_asset_events[published_month]) if triggering_asset_events else []
            # scheduler-tier: as in taxi_gcs_to_bigquery, events that arrive while this run is queued
            # get no run of their own (apache/airflow#56050): build their months now too.
            if events:
                events += inlet_events[published_month].after(max(event.timestamp for event in events))
            return dbt_months_var(months_to_build([event.extra for event in events], params))

        schema = f"{{{{ var.value.get('{schema_variable}', '{DEFAULT_SCHEMA}') }}}}"
        months = months_to_build()
        dbt = DbtTaskGroup(
            group_id="dbt",
            project_config=project(),
            profile_config=profile(target),
            execution_config=ExecutionConfig(
                dbt_executable_path=DBT_EXECUTABLE,
                invocation_mode=InvocationMode.SUBPROCESS,
                # A model's test task runs only the tests of that model: a relationship test from
                # fact_trips to dim_zones waits for fact_trips rather than run after dim_zones.
                test_indirect_selection=TestIndirectSelection.CAUTIOUS,
            ),
            render_config=RenderConfig(
                load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.AFTER_EACH, emit_datasets=False
            ),
            operator_args={
                "vars": {"months": "{{ ti.xcom_pull(task_ids='months_to_build') }}"},
                # The schema (Postgres) or dataset (BigQuery) of the loaded trips, where the models go too.
                "env": {"NYC_TAXI_SCHEMA": schema},
            },
        )
        months >> dbt

    return models()


warehouse_models("taxi_warehouse_models", "postgres", TAXI_POSTGRES_MONTH, "pg_schema")
warehouse_models("taxi_warehouse_models_bigquery", "bigquery", TAXI_BIGQUERY_MONTH, "bq_dataset")
