"""The dbt models as Airflow tasks: what ``taxi_warehouse_models`` and ``taxi_warehouse_models_bigquery``
build, one per warehouse, through astronomer-cosmos (docs/dbt.md).

``build_models`` makes ``months_to_build`` (the months the triggering asset events name, or the
``months`` param) and the ``dbt`` task group: every seed and model a task, its tests the task
right after it, dbt getting the months as the var ``months``. The tasks are rendered from the
manifest ``scripts/dbt-parse.sh`` writes at build time; dbt runs from its own environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import Asset, Param, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior, TestIndirectSelection
from cosmos.profiles import GoogleCloudServiceAccountFileProfileMapping, PostgresUserPasswordProfileMapping

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt"
# dbt's own environment (requirements-dbt.txt): .venv-dbt here, NYC_TAXI_DBT_EXECUTABLE in the image.
REPO = DBT_PROJECT.parents[1]
DBT_EXECUTABLE = os.environ.get("NYC_TAXI_DBT_EXECUTABLE") or str(REPO / ".venv-dbt" / "bin" / "dbt")
DEFAULT_SCHEMA = "ny_taxi"


def months_param() -> dict[str, Param]:
    return {
        "months": Param(
            [],
            type="array",
            items={"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
            description="A manual run's months to rebuild, as YYYY-MM; empty rebuilds every month.",
        )
    }


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


def build_models(target: str, published_month: Asset, schema_variable: str) -> None:
    """In a DAG: ``months_to_build``, then the dbt task group for ``target`` (postgres or bigquery)."""

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
