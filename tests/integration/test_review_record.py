"""A person's review is stored with the month's profile by every destination, and a published month
keeps it: ``Destination.record_review`` on Postgres and on the GCS stand-in, through the flows' steps."""

from __future__ import annotations

import json

import psycopg
import pytest

from include.destinations.gcs import GCS, profile_object
from include.destinations.postgres import Postgres
from include.flows import load_month
from include.source.months import Month
from include.source.sources import SOURCES, MonthRequest
from local_stack import expected
from tests.samples import GREEN_2020_10

pytestmark = pytest.mark.integration

OCTOBER = Month(2020, 10)
REVIEW = {
    "decision": "approve",
    "by": "ada",
    "by_id": "ada",
    "at": "2026-12-07T12:00:00+00:00",
    "reason": "real: the month before a storm",
    "timed_out": False,
    "anomalies": [{"feature": "rows", "value": 1.0, "low": 2.0, "high": 3.0, "action": "ask"}],
    "chart": None,
}


def _stage_review_publish(destination, run_id: str) -> dict:
    request = MonthRequest.of(SOURCES["mirror"], "http://mirror.test", "green", OCTOBER)
    try:
        staged = load_month.stage(destination, GREEN_2020_10, request, run_id)
        destination.record_review(staged, REVIEW)
        return load_month.publish(destination, staged)
    finally:
        destination.drop_staging("green", OCTOBER, run_id)


def test_postgres_keeps_the_review_in_the_profile_row_and_adds_the_column_to_an_older_table(
    pg_conn: psycopg.Connection, pg_schema: str
):
    # A profile table made before reviews: the load adds the column.
    _stage_review_publish(Postgres(pg_conn, pg_schema), "run-before")
    pg_conn.execute(f'ALTER TABLE "{pg_schema}".green_tripdata_profile DROP COLUMN review')

    published = _stage_review_publish(Postgres(pg_conn, pg_schema), "run-reviewed")

    assert published["rows"] == expected.rows(GREEN_2020_10)
    rows = pg_conn.execute(
        f'SELECT run_id, review, published_at IS NOT NULL FROM "{pg_schema}".green_tripdata_profile'
        " ORDER BY staged_at"
    ).fetchall()
    assert rows == [("run-before", None, True), ("run-reviewed", REVIEW, True)]


def test_gcs_keeps_the_review_in_the_published_profile(cloud_stack, gcs_bucket, storage_client):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    published = _stage_review_publish(GCS(GCSHook("google_cloud_default"), gcs_bucket), "run-reviewed")

    assert published["rows"] == expected.rows(GREEN_2020_10)
    profile = json.loads(
        storage_client.bucket(gcs_bucket).blob(profile_object("green", OCTOBER)).download_as_text()
    )
    assert (profile["review"], profile["run_id"], profile["rows_loaded"]) == (
        REVIEW,
        "run-reviewed",
        expected.rows(GREEN_2020_10),
    )
