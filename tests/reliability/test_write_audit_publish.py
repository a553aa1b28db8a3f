"""A month a check refuses is never published: the month before stays exactly in place.

Through the real DAGs (``airflow dags test``): green 2020-10 and 2020-12 are published, then two
reruns of December are refused, one by ``audit`` (a tenth of its pickups lie in November, more
than the 1% ``pickups_in_month`` allows) and one by ``check_anomalies`` (a tenth of the usual
trips, with ``anomaly_actions`` = {"rows": "fail"}). Each fails its check at once, without a
retry; the table, its partitions and rejects, the published profiles and the bucket stay as they
were; the refused load's profile row stays unpublished (Postgres) and its staging is dropped.
"""

import json
import re

import pytest

from tests.reliability.conftest import (
    DECEMBER,
    DECEMBER_PATH,
    as_december,
    assert_run_failed,
    bucket_state,
    edited_sample,
    export_to_gcs,
    load_to_postgres,
    postgres_state,
    profile_of_run,
    staging_objects,
    staging_tables,
    task_tries,
)

pytestmark = pytest.mark.integration

DECEMBER_RUN = {"taxis": ["green"], "month": str(DECEMBER)}
FAIL_ON_ROWS = {"AIRFLOW_VAR_ANOMALY_ACTIONS": json.dumps({"rows": "fail"})}


def _pickups_partly_in_november(rows):
    rows = as_december(rows)
    for row in rows[1::10]:
        row[1] = row[1].replace("2020-12-", "2020-11-")
    return rows


def _a_tenth_of_the_trips(rows):
    rows = as_december(rows)
    return [rows[0], *rows[1::10]]


ROWS_ANOMALY = r"anomaly in green 2020-12: rows is 9,4\d\d, expected 47,430 to 189,722 \(fail\)"
# (the file, extra environment, the task that refuses, what it says in Postgres, in GCS)
REFUSALS = {
    "audit": (
        _pickups_partly_in_november,
        {},
        "green.audit",
        r"Check: pickups_in_month,\s+Check Values: \{[^}]*'success': False",
        r"green 2020-12 fails pickups_in_month \(rows_outside_month <= 0.01 \* rows_loaded\)",
    ),
    "check_anomalies": (
        _a_tenth_of_the_trips,
        FAIL_ON_ROWS,
        "green.check_anomalies",
        ROWS_ANOMALY,
        ROWS_ANOMALY,
    ),
}
PARAMETERS = ("edit", "env", "refusing_task", "postgres_message", "gcs_message")


def _publish_october_and_december(mirror, publish) -> None:
    mirror.replace(DECEMBER_PATH, edited_sample(as_december))
    publish()
    publish(month=DECEMBER)


@pytest.mark.parametrize(PARAMETERS, REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refused_month_leaves_the_published_one_in_postgres(
    run_dag, mirror, mirror_env, pg_conn, pg_schema, edit, env, refusing_task, postgres_message, gcs_message
):
    _publish_october_and_december(
        mirror, lambda **month: load_to_postgres(mirror.url, pg_conn, pg_schema, **month)
    )
    before = postgres_state(pg_conn, pg_schema)

    mirror.replace(DECEMBER_PATH, edited_sample(edit))
    text = assert_run_failed(run_dag("taxi_api_to_postgres", DECEMBER_RUN, **mirror_env, **env))

    assert re.search(postgres_message, text, re.DOTALL), text[-4000:]
    run_id, tries = task_tries("taxi_api_to_postgres")
    assert tries[refusing_task] == ("failed", 1), tries  # refused at once: another try reads the same data
    assert tries["green.stage"] == ("success", 1)
    assert tries["green.publish"][0] == "upstream_failed"
    assert tries["green.drop_staging"][0] == "success"
    assert postgres_state(pg_conn, pg_schema) == before
    assert staging_tables(pg_conn, pg_schema) == []
    refused = profile_of_run(pg_conn, pg_schema, "green", run_id)
    assert refused["published_at"] is None
    assert refused["rows_loaded"] < 94_861 or refused["rows_outside_month"] > 0.01 * refused["rows_loaded"]
    if refusing_task == "green.check_anomalies":
        assert {"feature": "rows", "action": "fail"}.items() <= refused["anomalies"][0].items()


@pytest.mark.parametrize(PARAMETERS, REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refused_month_leaves_the_published_one_in_the_bucket(
    run_dag,
    mirror,
    mirror_env,
    gcs_hook,
    gcs_bucket,
    storage_client,
    edit,
    env,
    refusing_task,
    postgres_message,
    gcs_message,
):
    _publish_october_and_december(
        mirror, lambda **month: export_to_gcs(mirror.url, gcs_hook, gcs_bucket, **month)
    )
    before = bucket_state(storage_client, gcs_bucket)

    mirror.replace(DECEMBER_PATH, edited_sample(edit))
    text = assert_run_failed(
        run_dag("taxi_api_to_gcs", DECEMBER_RUN, AIRFLOW_VAR_GCS_BUCKET=gcs_bucket, **mirror_env, **env)
    )

    assert re.search(gcs_message, text), text[-4000:]
    _, tries = task_tries("taxi_api_to_gcs")
    assert tries[refusing_task] == ("failed", 1), tries
    assert tries["green.publish"][0] == "upstream_failed"
    assert tries["green.drop_staging"][0] == "success"
    assert bucket_state(storage_client, gcs_bucket) == before
    assert staging_objects(storage_client, gcs_bucket) == []
