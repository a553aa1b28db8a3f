"""
### The course's green-taxi pipeline: Q4 2020 into Postgres and GCS

For the months in the params (default: October to December 2020), one mapped task instance per
month downloads the green file, keeps trips with `passenger_count > 0` and `trip_distance > 0`,
adds `lpep_pickup_date`, renames the CamelCase columns to snake_case (`VendorID → vendor_id`,
`RatecodeID → ratecode_id`, `PULocationID → pu_location_id`, `DOLocationID → do_location_id`)
and stages the month as Parquet in the bucket. Then:

1. **assert_invariants** fails naming each column and its offending rows unless every row has
   `vendor_id` in (1, 2), `passenger_count > 0` and `trip_distance > 0`;
2. **load_postgres** replaces the whole table `{pg_schema}.green_taxi` with the months, in one
   transaction;
3. **write_partitions** writes each month to `gs://{bucket}/green_taxi/lpep_pickup_date=YYYY-MM-DD/`,
   replacing that month's files,
   and its unreadable rows, if any, to `green_taxi_rejects/`;
4. **summarize** logs rows read, rows after the filter, vendor ids, renames and partitions, and
   charts the trips per pickup day (PNG) into the Variable `chart_dir` and `green_taxi_reports/`;
5. **drop_staging** (a teardown) removes the staged files whatever happened.

Runs daily at 05:00 UTC; every run reloads the configured months, so reruns change nothing.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronTriggerTimetable, Param, dag, task, teardown

from include.dag_defaults import DEFAULT_ARGS

GCP_CONN_ID = "google_cloud_default"
POSTGRES_CONN_ID = "postgres_default"


def _staging_prefix(run_id: str) -> str:
    """Where this run stages its months: unique per run, so concurrent runs never collide."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return f"_staging/green_taxi_etl/{safe}"


@dag(
    schedule=CronTriggerTimetable("0 5 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "year": Param(2020, type="integer", minimum=2009, description="Year of the months to load."),
        "months": Param(
            [10, 11, 12],
            type="array",
            items={"type": "integer", "minimum": 1, "maximum": 12},
            minItems=1,
            uniqueItems=True,
            description="Months (1-12) of that year to load.",
        ),
    },
    tags=["nyc-taxi", "green", "postgres", "gcs", "course"],
    doc_md=__doc__,
)
def green_taxi_etl():
    @task
    def list_months(params: dict, dag_run=None) -> list[str]:
        from include.months import Month, validate_month

        months = [
            validate_month(Month(params["year"], m), dag_run.run_after.date()) for m in params["months"]
        ]
        return [str(month) for month in sorted(months)]

    @task(map_index_template="{{ month }}")
    def extract_transform(month: str, run_id: str | None = None) -> dict:
        from dataclasses import asdict

        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.flows.green_taxi_etl import stage_month
        from include.months import Month
        from include.sources import DEFAULT_TLC_BASE_URL, MonthRequest, downloaded_month

        request = MonthRequest("green", Month.parse(month))
        base_url = Variable.get("tlc_base_url", default=DEFAULT_TLC_BASE_URL)
        with downloaded_month(base_url, request) as path:
            staged = stage_month(
                path, request.month, GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"), _staging_prefix(run_id)
            )
        return asdict(staged)

    @task
    def assert_invariants(staged: list[dict]) -> None:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include import gcs
        from include.flows import green_taxi_etl

        objects = [month["staging_object"] for month in staged]
        with gcs.downloaded(GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"), objects) as paths:
            green_taxi_etl.assert_invariants(paths)

    @task
    def load_postgres(staged: list[dict]) -> int:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        from include import gcs
        from include.flows import green_taxi_etl
        from include.postgres import DEFAULT_SCHEMA

        objects = [month["staging_object"] for month in staged]
        with (
            gcs.downloaded(GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"), objects) as paths,
            PostgresHook(POSTGRES_CONN_ID).get_conn() as conn,
        ):
            return green_taxi_etl.load_postgres(
                conn, Variable.get("pg_schema", default=DEFAULT_SCHEMA), paths
            )

    @task(map_index_template="{{ staged['month'] }}")
    def write_partitions(staged: dict) -> int:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.flows.green_taxi_etl import StagedMonth, publish_month

        return publish_month(StagedMonth(**staged), GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"))

    @task
    def summarize(staged: list[dict], rows_loaded: int, partitions: list[int]) -> str:
        from pathlib import Path

        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        from include.chart import DEFAULT_CHART_DIR
        from include.flows.green_taxi_etl import StagedMonth, publish_chart, summary
        from include.postgres import DEFAULT_SCHEMA

        months = [StagedMonth(**month) for month in staged]
        with PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
            chart, uri = publish_chart(
                conn,
                Variable.get("pg_schema", default=DEFAULT_SCHEMA),
                [month.month for month in months],
                Path(Variable.get("chart_dir", default=DEFAULT_CHART_DIR)),
                GCSHook(GCP_CONN_ID),
                Variable.get("gcs_bucket"),
            )
        text = f"{summary(months, rows_loaded, list(partitions))}\ntrips per day chart: {chart} and {uri}"
        print(text)
        return text

    @teardown
    def drop_staging(run_id: str | None = None) -> None:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include import gcs

        gcs.delete_prefix(GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"), _staging_prefix(run_id))

    staged = extract_transform.expand(month=list_months())
    checked = assert_invariants(staged)
    rows_loaded = load_postgres(staged)
    partitions = write_partitions.expand(staged=staged)
    checked >> [rows_loaded, partitions]
    summary_task = summarize(staged, rows_loaded, partitions)
    summary_task >> drop_staging().as_teardown(setups=staged)


green_taxi_etl()
