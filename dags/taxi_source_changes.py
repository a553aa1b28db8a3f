"""
### NYC taxi trips: reload the months whose source file appeared or changed

Scheduled on the `nyc_taxi_source_files` asset. With the watcher on (`AIRFLOW_VAR_WATCH_SOURCE=on`,
read when this file is parsed), the triggerer asks the source every `AIRFLOW_VAR_WATCH_SOURCE_SECONDS`
(6 hours by default) about every family's months in the configured bounds, one conditional HEAD
each, and emits an event when a file appears or changes (ETag, Last-Modified, size;
`include/source/watch.py`). An unchanged source costs those requests and runs nothing.

1. **plan_reloads** groups the events by month: which families changed, and a run id naming their
   new versions (`include/flows/taxi_source_changes.py`);
2. **reload_postgres** and **reload_gcs** run `taxi_api_to_postgres` and `taxi_api_to_gcs` for each
   changed month with `{"month": ..., "taxis": [...]}`, and wait for them: each family's month goes
   through the same stage, audit, anomaly check and publish as a scheduled run, into every
   destination. The GCS publish emits `nyc_taxi_parquet`, so BigQuery (and the models built on the
   published months) follow. A run id that already exists is skipped: the same change announced
   twice reloads once.

The monthly DAGs must be unpaused: a reload of a paused one fails at once, naming it (unpause it,
then clear the failed task). With the watcher off, an event made by
hand (Assets → `nyc_taxi_source_files` → Create asset event, extra `{"taxi": "green", "month":
"2020-11"}`) reloads that month the same way. See docs/operations.md, "Events: new and corrected
source files".
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task

from include.flows.assets import source_files
from include.flows.defaults import DEFAULT_ARGS, LOAD_TIMEOUT
from include.source.sources import SourceSettings

SOURCE_FILES = source_files(SourceSettings.from_environment())  # the watcher's bounds, as the schedules'
RELOADED_DAGS = {"postgres": "taxi_api_to_postgres", "gcs": "taxi_api_to_gcs"}


@dag(
    schedule=SOURCE_FILES,
    start_date=datetime(2009, 1, 1),  # runs come from asset events, not dates
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["nyc-taxi", "source", "events"],
    doc_md=__doc__,
)
def taxi_source_changes():
    @task(inlets=[SOURCE_FILES])  # inlets, to read the events that came while this run was queued
    def plan_reloads(triggering_asset_events=None, inlet_events=None) -> list[dict]:
        from include.flows.taxi_source_changes import changes_of, reloads

        events = list(triggering_asset_events[SOURCE_FILES]) if triggering_asset_events else []
        # Airflow 3.3.2 gives no run to events that arrive while this run is queued
        # (apache/airflow#56050): reload them now too; one read twice keeps its run id.
        if events:
            events += inlet_events[SOURCE_FILES].after(max(event.timestamp for event in events))
        return reloads(changes_of((event.extra, str(event.timestamp)) for event in events))

    planned = plan_reloads()
    for destination, dag_id in RELOADED_DAGS.items():
        TriggerDagRunOperator.partial(
            task_id=f"reload_{destination}",
            trigger_dag_id=dag_id,
            logical_date=None,  # a manual run of the month in its conf, not of a date
            wait_for_completion=True,
            deferrable=True,  # waits in the triggerer, holding no worker slot
            poke_interval=15,
            skip_when_already_exists=True,
            fail_when_dag_is_paused=True,  # at once, naming the DAG, rather than waiting for hours
            execution_timeout=LOAD_TIMEOUT,
            map_index_template="{{ task.conf['month'] }} {{ task.conf['taxis'] | join(',') }}",
        ).expand_kwargs(planned)


taxi_source_changes()
