"""Parquet faults through the real DAGs, with the TLC's own source (``taxi_source`` = ``tlc``).

Green 2024-01, the TLC's real Parquet file, is published first; then the source serves, in turn,
a truncated copy, an HTML page, and a copy whose ``passenger_count`` holds text where a number is
declared. Each fails ``stage`` at once (an unreadable file: no retry) naming the file (and the
column, for the wrong type), and leaves what was published exactly as it was.
"""

import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.reliability.conftest import (
    JANUARY_2024,
    PARQUET_PATH,
    TLC_SOURCE,
    assert_run_failed,
    assert_run_succeeded,
    bucket_state,
    export_to_gcs,
    parquet_sample,
    postgres_state,
    staging_objects,
    staging_tables,
    task_tries,
)
from tests.samples import GREEN_2024_01_PARQUET

pytestmark = pytest.mark.integration

FILE = "green_tripdata_2024-01.parquet"
JANUARY_RUN = {"taxis": ["green"], "month": str(JANUARY_2024)}
REAL_FILE = GREEN_2024_01_PARQUET.read_bytes()


def _passenger_count_as_text(table: pa.Table) -> pa.Table:
    """``passenger_count`` written as text, with "unknown" where the TLC has no count."""
    index = table.schema.get_field_index("passenger_count")
    text = pc.fill_null(table.column(index).cast(pa.string()), "unknown")
    return table.set_column(index, "passenger_count", text)


PARQUET_FAULTS = {
    "a truncated file": (REAL_FILE[: len(REAL_FILE) // 2], rf"{FILE} is truncated or corrupt: "),
    "an HTML page": (
        b"<!DOCTYPE html>\n<html><body>Service unavailable</body></html>\n",
        rf"{FILE} is not a Parquet file: it starts with b'<!DOCTYPE html>.*, an HTML page",
    ),
    "text where a number is declared": (
        parquet_sample(_passenger_count_as_text),
        rf"{FILE}: column passenger_count holds string values that do not convert to the declared int64: "
        r".*'unknown'",
    ),
}


def _kept_rows() -> int:
    """Rows of the real file the cleaning rules keep (no trip with 0 passengers), read by pyarrow."""
    counts = pq.read_table(GREEN_2024_01_PARQUET, columns=["passenger_count"]).column(0)
    return len(counts) - pc.sum(pc.equal(counts, 0)).as_py()


def test_parquet_faults_fail_at_once_and_keep_the_published_month_in_postgres(
    run_dag, mirror, mirror_env, pg_conn, pg_schema, subtests
):
    assert_run_succeeded(run_dag("taxi_api_to_postgres", JANUARY_RUN, **mirror_env, **TLC_SOURCE))
    assert pg_conn.execute(f"SELECT count(*) FROM {pg_schema}.green_tripdata").fetchone() == (_kept_rows(),)
    before = postgres_state(pg_conn, pg_schema)

    for fault, (content, message) in PARQUET_FAULTS.items():
        with subtests.test(fault):
            mirror.replace(PARQUET_PATH, content)
            text = assert_run_failed(run_dag("taxi_api_to_postgres", JANUARY_RUN, **mirror_env, **TLC_SOURCE))
            assert re.search(f"InvalidFileError: {message}", text), text[-4000:]
            _, tries = task_tries("taxi_api_to_postgres")
            assert tries["green.stage"] == ("failed", 1), tries
            assert postgres_state(pg_conn, pg_schema) == before
            assert staging_tables(pg_conn, pg_schema) == []


def test_parquet_faults_fail_at_once_and_keep_the_published_month_in_the_bucket(
    run_dag, mirror, mirror_env, gcs_hook, gcs_bucket, storage_client, subtests
):
    export_to_gcs(mirror.url, gcs_hook, gcs_bucket, month=JANUARY_2024, source="tlc")
    before = bucket_state(storage_client, gcs_bucket)
    assert "green_tripdata/green_tripdata_2024-01.parquet" in before

    for fault, (content, message) in PARQUET_FAULTS.items():
        with subtests.test(fault):
            mirror.replace(PARQUET_PATH, content)
            text = assert_run_failed(
                run_dag(
                    "taxi_api_to_gcs",
                    JANUARY_RUN,
                    AIRFLOW_VAR_GCS_BUCKET=gcs_bucket,
                    **mirror_env,
                    **TLC_SOURCE,
                )
            )
            assert re.search(f"InvalidFileError: {message}", text), text[-4000:]
            _, tries = task_tries("taxi_api_to_gcs")
            assert tries["green.stage"] == ("failed", 1), tries
            assert bucket_state(storage_client, gcs_bucket) == before
            assert staging_objects(storage_client, gcs_bucket) == []
