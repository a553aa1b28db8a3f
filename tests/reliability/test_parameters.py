"""Bad parameters and configuration are rejected before anything is downloaded or written.

Each run points both sources' base URLs at a server that counts requests, so "before any
download" is measured, not assumed; the messages must name the parameter and the values that are
allowed. A value the params' schema refuses stops the run before it starts; a month outside what
the source has fails the first task at once (``InvalidParamsError``: no retry).
"""

import pytest

from tests.reliability.conftest import TLC_SOURCE, assert_run_failed, task_tries

pytestmark = pytest.mark.integration

# (DAG, run conf, extra environment, message, the task that refuses the run or None: before any task)
INVALID = {
    "unknown family": (
        "taxi_api_to_postgres",
        {"taxis": ["purple"], "month": "2020-10"},
        {},
        "'purple' is not one of ['yellow', 'green', 'fhv', 'fhvhv']",
        None,
    ),
    "no family": ("taxi_api_to_gcs", {"taxis": [], "month": "2020-10"}, {}, "[] should be non-empty", None),
    "month pattern": (
        "taxi_api_to_postgres",
        {"taxis": ["green"], "month": "2020-13"},
        {},
        "'2020-13' does not match",
        None,
    ),
    "month not over yet": (
        "taxi_api_to_postgres",
        {"taxis": ["green"], "month": "2099-01"},
        {},
        "month 2099-01 is outside the months loaded from mirror, the course's CSV mirror "
        "(DataTalksClub/nyc-tlc-data): choose a month from 2019-01 to 2021-07 (not over yet on ",
        "plan_month",
    ),
    "month before the mirror": (
        "taxi_api_to_gcs",
        {"taxis": ["green"], "month": "2018-12"},
        {},
        "month 2018-12 is outside the months loaded from mirror",
        "plan_month",
    ),
    "month before the TLC": (
        "taxi_api_to_postgres",
        {"taxis": ["green"], "month": "2008-12"},
        TLC_SOURCE,
        "month 2008-12 is outside the months loaded from tlc, the TLC's own Parquet (TLC Trip Record Data): "
        "choose a month from 2009-01 to ",
        "plan_month",
    ),
    "green month": (
        "green_taxi_etl",
        {"year": 2020, "months": [10, 13]},
        {},
        "13 is greater than the maximum of 12",
        None,
    ),
    "green year after the mirror": (
        "green_taxi_etl",
        {"year": 2022, "months": [1]},
        {},
        "month 2022-01 is outside the months loaded from mirror",
        "list_months",
    ),
}


@pytest.mark.parametrize(
    ("dag_id", "conf", "env", "message", "refusing_task"), INVALID.values(), ids=INVALID.keys()
)
def test_invalid_params_are_rejected_before_any_download(
    run_dag, mirror, mirror_env, gcs_bucket, dag_id, conf, env, message, refusing_task
):
    text = assert_run_failed(run_dag(dag_id, conf, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket, **mirror_env, **env))
    assert message in text
    assert mirror.total_requests() == 0
    if refusing_task:
        _, tries = task_tries(dag_id)
        assert tries[refusing_task] == ("failed", 1), tries
        assert "DagRun failed" in text
    else:
        assert "airflow.sdk.exceptions.ParamValidationError: Invalid input for param" in text


def test_a_crafted_schema_name_is_rejected_before_any_sql(run_dag, mirror, mirror_env, pg_conn, pg_schema):
    crafted = f"{pg_schema}; DROP TABLE {pg_schema}.green_tripdata; --"
    text = assert_run_failed(
        run_dag(
            "taxi_api_to_postgres",
            {"taxis": ["green"], "month": "2020-10"},
            **mirror_env,
            AIRFLOW_VAR_PG_SCHEMA=crafted,
        )
    )
    assert f"Variable pg_schema {crafted!r} is not a valid name" in text
    _, tries = task_tries("taxi_api_to_postgres")
    assert tries["green.stage"] == ("failed", 1), tries
    assert pg_conn.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", (f"{pg_schema}%",)
    ).fetchone() == (0,)


@pytest.mark.parametrize("dataset", ["ny_taxi`; DROP SCHEMA ny_taxi; --", "ny-taxi", ""])
def test_a_crafted_bigquery_dataset_name_is_rejected_before_any_query(cloud_stack, dataset):
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    from include.destinations.bigquery import BigQuery

    with pytest.raises(ValueError, match="is not a valid BigQuery name"):
        BigQuery(BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False), dataset)
