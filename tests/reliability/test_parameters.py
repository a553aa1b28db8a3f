"""Bad parameters and configuration are rejected before anything is downloaded or written.

Each run points ``tlc_base_url`` at a mirror that counts requests, so "before any download" is
measured, not assumed; the messages must name the parameter and the values that are allowed.
"""

from datetime import date

import pytest

from include.months import Month
from tests.reliability.conftest import GREEN_TABLE

pytestmark = pytest.mark.integration

LATEST = Month.of(date.today()).previous


def _fails(result) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    return output


@pytest.mark.parametrize(
    ("dag_id", "conf", "message"),
    [
        (
            "taxi_api_to_postgres",
            {"taxi": "purple", "month": "2020-10"},
            "'purple' is not one of ['yellow', 'green']",
        ),
        ("taxi_api_to_postgres", {"taxi": "green", "month": "2020-13"}, "'2020-13' does not match"),
        (
            "taxi_api_to_postgres",
            {"taxi": "green", "month": "2099-01"},
            f"month 2099-01 is not over yet on {date.today()}; choose a month from 2009-01 to {LATEST}",
        ),
        (
            "taxi_api_to_gcs",
            {"taxi": "green", "month": "2008-12"},
            f"month 2008-12 is before the first TLC month; choose a month from 2009-01 to {LATEST}",
        ),
        ("green_taxi_etl", {"year": 2020, "months": [10, 13]}, "13 is greater than the maximum of 12"),
        ("green_taxi_etl", {"year": 2099, "months": [1]}, "choose a month from 2009-01 to"),
    ],
    ids=[
        "colour",
        "month pattern",
        "future month",
        "month before the TLC",
        "green month",
        "green future year",
    ],
)
def test_invalid_params_are_rejected_before_any_download(run_dag, mirror, gcs_bucket, dag_id, conf, message):
    result = run_dag(dag_id, conf, AIRFLOW_VAR_TLC_BASE_URL=mirror.url, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket)
    assert message in _fails(result)
    assert sum(mirror.requests.values()) == 0


def test_a_crafted_schema_name_is_rejected_before_any_download_or_sql(run_dag, mirror, pg_conn, pg_schema):
    crafted = f"{pg_schema}; DROP TABLE {pg_schema}.{GREEN_TABLE}; --"
    result = run_dag(
        "taxi_api_to_postgres",
        {"taxi": "green", "month": "2020-10"},
        AIRFLOW_VAR_TLC_BASE_URL=mirror.url,
        AIRFLOW_VAR_PG_SCHEMA=crafted,
    )
    assert f"Variable pg_schema {crafted!r} is not a valid name" in _fails(result)
    assert sum(mirror.requests.values()) == 0
    assert pg_conn.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", (f"{pg_schema}%",)
    ).fetchone() == (0,)


@pytest.mark.parametrize("dataset", ["ny_taxi`; DROP SCHEMA ny_taxi; --", "ny-taxi", ""])
def test_a_crafted_bigquery_dataset_name_is_rejected_before_any_query(cloud_stack, dataset):
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    from include.bigquery import BigQuery

    with pytest.raises(ValueError, match="is not a valid BigQuery name"):
        BigQuery(BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False), dataset)
