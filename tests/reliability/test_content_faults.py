"""Faults in the content: columns missing or added, values that do not parse, months that differ.

Chosen behaviour (README, "What happens when things go wrong"): a missing declared column fails
the file; an extra column is ignored with a warning; a row whose values do not parse is set aside
with its line and reason (Postgres ``{table}_rejects``, GCS ``{taxi}_rejects/``) unless more than
1% of the file's rows are unreadable, which fails the file. Pickups outside the file's month are
kept, counted and reported.
"""

import io
import logging

import pandas as pd
import pyarrow.parquet as pq
import pytest

from include.flows.taxi_api_to_postgres import verify_loaded_month
from include.months import Month
from include.sources import MonthRequest
from tests.reliability.conftest import (
    GREEN_TABLE,
    OCTOBER_PATH,
    as_december,
    bucket_state,
    download_and_export,
    download_and_load,
    edited_sample,
    table_state,
)
from tests.reliability.fault_server import served
from tests.samples import GREEN_2020_10, read_with_pandas

pytestmark = pytest.mark.integration

REJECTS_TABLE = f"{GREEN_TABLE}_rejects"
REJECTS_OBJECT = "green_rejects/green_tripdata_2020-10.csv"


def _set_field(changes: dict[int, tuple[str, str]]):
    """An edit setting column ``name`` of line ``n`` (the header is line 1) to a value."""

    def edit(rows):
        for line, (name, value) in changes.items():
            rows[line - 1][rows[0].index(name)] = value
        return rows

    return edit


def _drop_column(name: str):
    def edit(rows):
        index = rows[0].index(name)
        return [row[:index] + row[index + 1 :] for row in rows]

    return edit


def test_a_missing_column_fails_the_file_and_changes_nothing(
    mirror, pg_conn, pg_schema, gcs_hook, gcs_bucket, storage_client
):
    download_and_load(mirror.url, pg_conn, pg_schema)
    download_and_export(mirror.url, gcs_hook, gcs_bucket)
    before = table_state(pg_conn, pg_schema, GREEN_TABLE), bucket_state(storage_client, gcs_bucket)

    mirror.script(OCTOBER_PATH, served(edited_sample(_drop_column("trip_distance"))))
    mirror.script(OCTOBER_PATH, served(edited_sample(_drop_column("trip_distance"))))
    message = r"green_tripdata_2020-10.csv.gz: missing column\(s\) trip_distance"
    with pytest.raises(ValueError, match=message):
        download_and_load(mirror.url, pg_conn, pg_schema)
    with pytest.raises(ValueError, match=message):
        download_and_export(mirror.url, gcs_hook, gcs_bucket)

    assert (table_state(pg_conn, pg_schema, GREEN_TABLE), bucket_state(storage_client, gcs_bucket)) == before


def test_an_extra_column_is_ignored_with_a_warning(mirror, pg_conn, pg_schema, caplog):
    download_and_load(mirror.url, pg_conn, pg_schema)
    one_good_load = table_state(pg_conn, pg_schema, GREEN_TABLE)

    def add_airport_fee(rows):
        return [rows[0] + ["airport_fee"]] + [[*row, "1.25"] for row in rows[1:]]

    mirror.script(OCTOBER_PATH, served(edited_sample(add_airport_fee)))
    with caplog.at_level(logging.WARNING, logger="include.extract"):
        download_and_load(mirror.url, pg_conn, pg_schema)

    assert "ignoring column(s) not in the green schema: ['airport_fee']" in caplog.text
    assert table_state(pg_conn, pg_schema, GREEN_TABLE) == one_good_load


UNREADABLE = {1_000: ("passenger_count", "two"), 50_000: ("lpep_pickup_datetime", "2020-10-32 08:00:00")}


def test_unreadable_rows_go_to_the_rejects_table_and_a_clean_rerun_clears_them(mirror, pg_conn, pg_schema):
    download_and_load(mirror.url, pg_conn, pg_schema)
    one_good_load = table_state(pg_conn, pg_schema, GREEN_TABLE)
    good_rows = pg_conn.execute(f"SELECT count(*) FROM {pg_schema}.{GREEN_TABLE}").fetchone()[0]

    mirror.script(OCTOBER_PATH, served(edited_sample(_set_field(UNREADABLE))))
    loaded = download_and_load(mirror.url, pg_conn, pg_schema)

    source = read_with_pandas(GREEN_2020_10)
    kept_lines = [line for line in UNREADABLE if source.passenger_count[line - 2] != 0]
    assert loaded.rows_rejected == 2
    assert loaded.rows_loaded == good_rows - len(kept_lines)
    rejected = pg_conn.execute(
        f"SELECT source_month, source_file, line_number, reason FROM {pg_schema}.{REJECTS_TABLE}"
        " ORDER BY line_number"
    ).fetchall()
    assert rejected == [
        (
            Month(2020, 10).first_day,
            "green_tripdata_2020-10.csv.gz",
            1_000,
            "passenger_count: 'two' is not a valid int64",
        ),
        (
            Month(2020, 10).first_day,
            "green_tripdata_2020-10.csv.gz",
            50_000,
            "lpep_pickup_datetime: '2020-10-32 08:00:00' is not a valid timestamp[us]",
        ),
    ]

    download_and_load(mirror.url, pg_conn, pg_schema)  # the mirror serves the real file again
    assert table_state(pg_conn, pg_schema, GREEN_TABLE) == one_good_load
    assert table_state(pg_conn, pg_schema, REJECTS_TABLE)[0] == 0


def test_unreadable_rows_go_to_a_rejects_object_next_to_the_month(
    mirror, gcs_hook, gcs_bucket, storage_client
):
    mirror.script(OCTOBER_PATH, served(edited_sample(_set_field(UNREADABLE))))
    export = download_and_export(mirror.url, gcs_hook, gcs_bucket)

    assert export.rows_rejected == 2
    rejects = pd.read_csv(
        io.BytesIO(storage_client.bucket(gcs_bucket).blob(REJECTS_OBJECT).download_as_bytes())
    )
    assert rejects.line.tolist() == sorted(UNREADABLE)
    assert rejects.reason.str.contains("is not a valid").all()

    # The real file: no rejects, so the stale object goes.
    download_and_export(mirror.url, gcs_hook, gcs_bucket)
    assert REJECTS_OBJECT not in bucket_state(storage_client, gcs_bucket)


def test_a_file_with_too_many_unreadable_rows_fails_and_changes_nothing(
    mirror, pg_conn, pg_schema, gcs_hook, gcs_bucket, storage_client
):
    download_and_load(mirror.url, pg_conn, pg_schema)
    download_and_export(mirror.url, gcs_hook, gcs_bucket)
    before = (
        table_state(pg_conn, pg_schema, GREEN_TABLE),
        table_state(pg_conn, pg_schema, REJECTS_TABLE),
        bucket_state(storage_client, gcs_bucket),
    )
    # A shifted layout: every 50th row has a distance where a count belongs.
    broken = edited_sample(_set_field(dict.fromkeys(range(2, 95122, 50), ("passenger_count", "1.5"))))

    for attempt in (download_and_load, download_and_export):
        mirror.script(OCTOBER_PATH, served(broken))
        target = (pg_conn, pg_schema) if attempt is download_and_load else (gcs_hook, gcs_bucket)
        with pytest.raises(
            ValueError, match=r"1903 of 95120 rows could not be read, more than the 1% allowed"
        ):
            attempt(mirror.url, *target)

    assert (
        table_state(pg_conn, pg_schema, GREEN_TABLE),
        table_state(pg_conn, pg_schema, REJECTS_TABLE),
        bucket_state(storage_client, gcs_bucket),
    ) == before


def _as_december_with_ehail_fees(rows):
    """October's rows as December, with an ``ehail_fee`` on every trip."""
    fee = rows[0].index("ehail_fee")
    for row in as_december(rows)[1:]:
        row[fee] = "2.75"
    return rows


def test_ehail_fee_empty_in_one_month_and_numeric_in_another_shares_one_type(
    mirror, pg_conn, pg_schema, gcs_hook, gcs_bucket, storage_client
):
    december = MonthRequest("green", Month(2020, 12))
    mirror.script("/green/green_tripdata_2020-12.csv.gz", served(edited_sample(_as_december_with_ehail_fees)))
    mirror.script("/green/green_tripdata_2020-12.csv.gz", served(edited_sample(_as_december_with_ehail_fees)))
    download_and_load(mirror.url, pg_conn, pg_schema)
    download_and_load(mirror.url, pg_conn, pg_schema, december)
    download_and_export(mirror.url, gcs_hook, gcs_bucket)
    download_and_export(mirror.url, gcs_hook, gcs_bucket, december)

    fees = pg_conn.execute(
        f"SELECT source_month, count(ehail_fee), sum(ehail_fee), pg_typeof(min(ehail_fee))::text"
        f" FROM {pg_schema}.{GREEN_TABLE} GROUP BY source_month ORDER BY source_month"
    ).fetchall()
    kept = int((read_with_pandas(GREEN_2020_10).passenger_count != 0).sum())
    assert fees == [
        (Month(2020, 10).first_day, 0, None, "double precision"),
        (Month(2020, 12).first_day, kept, pytest.approx(2.75 * kept), "double precision"),
    ]
    bucket = storage_client.bucket(gcs_bucket)
    schemas = [
        pq.read_schema(io.BytesIO(bucket.blob(f"green/green_tripdata_{month}.parquet").download_as_bytes()))
        for month in ("2020-10", "2020-12")
    ]
    assert schemas[0] == schemas[1]
    assert str(schemas[0].field("ehail_fee").type) == "double"


def test_pickups_outside_the_month_are_counted_and_reported(mirror, pg_conn, pg_schema, gcs_hook, gcs_bucket):
    source = read_with_pandas(GREEN_2020_10, parse_dates=["lpep_pickup_datetime"])
    kept = source[source.passenger_count != 0]
    pickups = kept.lpep_pickup_datetime
    outside = int(((pickups < "2020-10-01") | (pickups >= "2020-11-01")).sum())
    assert outside > 0, "the sample has a few stray pickups"

    loaded = download_and_load(mirror.url, pg_conn, pg_schema)
    assert loaded.outside_month == outside
    assert verify_loaded_month(pg_conn, loaded).outside_month == outside
    assert download_and_export(mirror.url, gcs_hook, gcs_bucket).outside_month == outside


def test_a_month_with_too_many_stray_pickups_fails_its_check(mirror, pg_conn, pg_schema):
    def move_a_tenth_to_september(rows):
        for row in rows[1::10]:
            row[1] = row[1].replace("2020-10-", "2020-09-")
        return rows

    mirror.script(OCTOBER_PATH, served(edited_sample(move_a_tenth_to_september)))
    loaded = download_and_load(mirror.url, pg_conn, pg_schema)
    with pytest.raises(
        ValueError, match=r"rows of 2020-10 have a pickup outside the month, more than the allowed 1.0%"
    ):
        verify_loaded_month(pg_conn, loaded)
