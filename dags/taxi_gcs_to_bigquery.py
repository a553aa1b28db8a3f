"""
### NYC taxi trips: Parquet in GCS → BigQuery, with a daily summary

Scheduled on the `nyc_taxi_parquet` asset: every colour and month `taxi_api_to_gcs` writes is
loaded here, from the object its asset event names. A manual run loads the `taxis` and `month`
of its params from `{taxi}_tripdata/{taxi}_tripdata_{YYYY-MM}.parquet`.

1. **load_zone_lookup** publishes the TLC zone lookup to the bucket and loads
   `{bq_dataset}.taxi_zone_lookup`;
2. **load_month** (one mapped instance per colour and month, in the pool `bigquery_jobs`) replaces
   that month's partition of `{bq_dataset}.{taxi}_tripdata` with one load job (partitioned by
   MONTH on `source_month`, clustered on pickup and drop-off zone; times are `DATETIME`, the TLC's
   New York wall-clock). No DML: months of one table load side by side, and a failed load leaves
   the partition as it was;
3. **refresh_daily_summary** rebuilds `{bq_dataset}.{taxi}_daily_summary`: trips, revenue and
   average distance per pickup day and pickup borough.

Uses the connection `google_cloud_default` and the Variables `gcs_bucket`, `bq_dataset`,
`bq_location`; the dataset must exist (see docs/gcp.md).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from include.flows.assets import TAXI_BIGQUERY_MONTH, TAXI_PARQUET
from include.flows.defaults import DEFAULT_ARGS, monthly_params

GCP_CONN_ID = "google_cloud_default"


def _bigquery():
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from airflow.sdk import Variable

    from include.destinations.bigquery import DEFAULT_DATASET, BigQuery

    location = Variable.get("bq_location", default=None) or None
    hook = BigQueryHook(gcp_conn_id=GCP_CONN_ID, use_legacy_sql=False, location=location)
    return BigQuery(hook, Variable.get("bq_dataset", default=DEFAULT_DATASET), location)


@dag(
    schedule=TAXI_PARQUET,
    start_date=datetime(2009, 1, 1),  # runs come from asset events, not dates
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=monthly_params(),
    tags=["nyc-taxi", "bigquery", "gcs"],
    doc_md=__doc__,
)
def taxi_gcs_to_bigquery():
    @task(inlets=[TAXI_PARQUET])  # scheduler-tier: inlets, to read the events after this run's own
    def months_to_load(
        params: dict, triggering_asset_events=None, inlet_events=None, dag_run=None
    ) -> list[dict]:
        from airflow.sdk import Variable

        from include.flows.taxi_gcs_to_bigquery import months_to_load
        from include.source.sources import runtime_settings

        source, today = runtime_settings().source, dag_run.run_after.date()

        events = list(triggering_asset_events[TAXI_PARQUET]) if triggering_asset_events else []
        # scheduler-tier: Airflow 3.3.2 gives no run to events that arrive while this run is queued
        # (apache/airflow#56050): load them now too. A month loaded twice is replaced, not added.
        if events:
            events += inlet_events[TAXI_PARQUET].after(max(event.timestamp for event in events))
        bucket = Variable.get("gcs_bucket")
        return months_to_load(
            [event.extra for event in events],
            params,
            bucket,
            lambda taxi, month: source.has(taxi, month, today),
        )

    @task
    def load_zone_lookup() -> int:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.flows.taxi_gcs_to_bigquery import load_zone_lookup, publish_zone_lookup
        from include.source.sources import base_url, runtime_settings

        source = runtime_settings().source
        zones_url = source.zone_lookup_url(base_url(source))
        uri = publish_zone_lookup(zones_url, GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"))
        return load_zone_lookup(_bigquery(), uri)

    # The pool bounds the BigQuery jobs running at once (the environment creates it).
    @task(pool="bigquery_jobs", map_index_template="{{ taxi }} {{ month }}", outlets=[TAXI_BIGQUERY_MONTH])
    def load_month(taxi: str, month: str, uri: str, outlet_events=None) -> dict:
        from include.flows.taxi_gcs_to_bigquery import load_month
        from include.source.months import Month

        rows = load_month(_bigquery(), taxi, Month.parse(month), uri)
        outlet_events[TAXI_BIGQUERY_MONTH].extra = {"taxi": taxi, "month": month}
        return {"taxi": taxi, "month": month, "rows": rows}

    @task
    def refresh_daily_summary(loaded: list[dict]) -> None:
        from include.flows.taxi_gcs_to_bigquery import refresh_daily_summary

        bq = _bigquery()
        for taxi in sorted({month["taxi"] for month in loaded}):
            refresh_daily_summary(bq, taxi)

    months = months_to_load()  # first: a run with nothing to load stops before any work
    zones = load_zone_lookup()
    loaded = load_month.expand_kwargs(months)
    months >> zones
    [zones, loaded] >> refresh_daily_summary(loaded)


taxi_gcs_to_bigquery()
