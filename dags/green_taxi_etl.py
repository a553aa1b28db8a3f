"""
### The course's green-taxi pipeline: Q4 2020 into Postgres and GCS

For the months in the params (default: October to December 2020):

1. **check_sources** asks the source, with conditional requests, whether any month's file changed
   since the last successful run; if none did and the months are the same, the run stops here
   having downloaded nothing (the daily schedule then costs one HEAD request per month);
2. **extract_transform** (one mapped instance per month) downloads the green file, keeps trips with
   `passenger_count > 0` and `trip_distance > 0`, adds `lpep_pickup_date`, with the columns in
   snake_case (`VendorID → vendor_id`, `RatecodeID → ratecode_id`, `PULocationID → pu_location_id`,
   `DOLocationID → do_location_id`), and stages the month as Parquet in the bucket;
3. **assert_invariants** fails naming the column and its offending rows unless every `vendor_id`
   is 1 or 2 (the filter already guarantees the course's other two assertions);
4. **load_postgres** replaces the whole table `{pg_schema}.green_taxi` with the months, in one
   transaction; **write_partitions** writes each month to
   `gs://{bucket}/green_taxi/lpep_pickup_date=YYYY-MM-DD/` and **remove_other_months** deletes the
   files of months not in this run, so Postgres and GCS hold exactly the same months;
5. **summarize** logs what the course asks for, charts the trips per pickup day into the bucket's
   `green_taxi_reports/`, and records the source files' versions for the next run's check;
6. **drop_staging** (a teardown) removes the staged files whatever happened.

Runs daily at 05:00 UTC, as in the course.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronTriggerTimetable, Param, dag, task, teardown

from include.flows.defaults import DEFAULT_ARGS, LOAD_TIMEOUT

GCP_CONN_ID = "google_cloud_default"
POSTGRES_CONN_ID = "postgres_default"


def _staging_prefix(run_id: str) -> str:
    """Where this run stages its months: unique per run, so concurrent runs never collide."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return f"_staging/green_taxi_etl/{safe}"


@dag(
    schedule=CronTriggerTimetable("0 5 * * *", timezone="UTC"),
    # Before any month it can load, so a run of any logical date has its tasks.
    start_date=datetime(2009, 1, 1),
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
    def list_months(params: dict, dag_run=None) -> list[dict]:
        from include.source.months import Month
        from include.source.sources import MonthRequest, base_url, runtime_settings

        settings, today = runtime_settings(), dag_run.run_after.date()
        months = sorted(settings.check_month(Month(params["year"], m), today) for m in params["months"])
        return [
            MonthRequest.of(settings.source, base_url(settings.source), "green", m).to_dict() for m in months
        ]

    @task.short_circuit
    def check_sources(requests: list[dict]) -> bool:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from include.destinations.postgres import pg_schema
        from include.flows.green_taxi_etl import unchanged_since_last_run
        from include.source.sources import MonthRequest

        with PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
            return not unchanged_since_last_run(
                conn, pg_schema(), [MonthRequest.from_dict(r) for r in requests]
            )

    @task(map_index_template="{{ task.op_kwargs['request']['month'] }}", execution_timeout=LOAD_TIMEOUT)
    def extract_transform(request: dict, run_id: str | None = None) -> dict:
        from dataclasses import asdict

        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.flows.green_taxi_etl import stage_month
        from include.source.sources import MonthRequest

        staged = stage_month(
            MonthRequest.from_dict(request),
            GCSHook(GCP_CONN_ID),
            Variable.get("gcs_bucket"),
            _staging_prefix(run_id),
        )
        return asdict(staged)

    @task
    def assert_invariants(staged: list[dict]) -> None:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.destinations import gcs
        from include.flows import green_taxi_etl

        objects = [month["staging_object"] for month in staged]
        with gcs.downloaded(GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"), objects) as paths:
            green_taxi_etl.assert_invariants(paths)

    @task(pool="postgres_loads", execution_timeout=LOAD_TIMEOUT)
    def load_postgres(staged: list[dict]) -> int:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        from include.destinations import gcs
        from include.destinations.postgres import pg_schema
        from include.flows import green_taxi_etl
        from include.observing import lineage

        objects, bucket = [month["staging_object"] for month in staged], Variable.get("gcs_bucket")
        with (
            gcs.downloaded(GCSHook(GCP_CONN_ID), bucket, objects) as paths,
            PostgresHook(POSTGRES_CONN_ID).get_conn() as conn,
        ):
            rows = green_taxi_etl.load_postgres(conn, pg_schema(), paths)
            lineage.loaded_into_postgres(conn, pg_schema(), green_taxi_etl.TABLE, bucket, objects, rows)
            return rows

    @task(map_index_template="{{ task.op_kwargs['staged']['month'] }}")
    def write_partitions(staged: dict) -> int:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.flows.green_taxi_etl import StagedMonth, publish_month

        return publish_month(StagedMonth(**staged), GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"))

    @task
    def remove_other_months(staged: list[dict]) -> int:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.flows.green_taxi_etl import remove_other_months

        months = [month["month"] for month in staged]
        return remove_other_months(GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"), months)

    @task
    def summarize(staged: list[dict], rows_loaded: int, partitions: list[int]) -> str:
        from pathlib import Path

        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        from include.destinations.postgres import pg_schema
        from include.flows.green_taxi_etl import StagedMonth, publish_chart, record_sources, summary
        from include.observing.chart import DEFAULT_CHART_DIR

        months = [StagedMonth(**month) for month in staged]
        with PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
            chart, uri = publish_chart(
                conn,
                pg_schema(),
                [month.month for month in months],
                Path(Variable.get("chart_dir", default=DEFAULT_CHART_DIR)),
                GCSHook(GCP_CONN_ID),
                Variable.get("gcs_bucket"),
            )
            # Last: only a run that published everywhere makes the next run's check skip the work.
            record_sources(conn, pg_schema(), months)
        text = f"{summary(months, rows_loaded, list(partitions))}\ntrips per day chart: {chart} and {uri}"
        print(text)
        return text

    @teardown
    def drop_staging(run_id: str | None = None) -> None:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        from include.destinations import gcs

        gcs.delete_prefix(GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"), _staging_prefix(run_id))

    requests = list_months()
    changed = check_sources(requests)
    staged = extract_transform.expand(request=requests)
    changed >> staged
    checked = assert_invariants(staged)
    rows_loaded = load_postgres(staged)
    partitions = write_partitions.expand(staged=staged)
    removed = remove_other_months(staged)
    checked >> [rows_loaded, partitions]
    partitions >> removed
    summary_task = summarize(staged, rows_loaded, partitions)
    removed >> summary_task
    summary_task >> drop_staging().as_teardown(setups=staged)


green_taxi_etl()
