"""Faults in the content: columns missing or added, values that do not parse, months that differ.

Chosen behaviour (docs/operations.md, "What happens when things go wrong"): a declared column the file lacks
loads as nulls and is reported (the TLC added columns over the years), but a file without the
pickup time fails; an extra column is ignored with a warning; header names match ignoring case and
a byte-order mark, and a match that needed that is reported; a row whose values do not parse is
set aside with its line and reason (Postgres ``{taxi}_tripdata_rejects``, GCS
``{taxi}_tripdata_rejects/``) unless more than 1% of the file's rows are unreadable, which fails
the file. Pickups outside the file's month are kept and counted in the month's profile; more than
1% fails the audit (through the DAGs: test_write_audit_publish.py).
"""

import gzip
import io
import json
import logging

import pandas as pd
import pyarrow.parquet as pq
import pytest

from include.errors import DataQualityError, InvalidFileError
from include.source.months import Month
from tests.reliability.conftest import (
    DECEMBER,
    DECEMBER_PATH,
    OCTOBER,
    OCTOBER_PATH,
    as_december,
    bucket_state,
    edited_sample,
    export_to_gcs,
    load_to_postgres,
    postgres_state,
    profile_of_run,
    source_path,
    staging_objects,
    staging_tables,
)
from tests.samples import FHV_2019_01, GREEN_2020_10, read_with_pandas

pytestmark = pytest.mark.integration

REJECTS_TABLE = "green_tripdata_rejects"
REJECTS_OBJECT = "green_tripdata_rejects/green_tripdata_2020-10.csv"
FILE = "green_tripdata_2020-10.csv.gz"


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


def _kept_rows() -> pd.DataFrame:
    """October's rows the cleaning rules keep (no trip with 0 passengers), read by pandas."""
    source = read_with_pandas(GREEN_2020_10, parse_dates=["lpep_pickup_datetime"])
    return source[source.passenger_count != 0]


def test_a_missing_declared_column_loads_as_nulls_and_is_reported(
    mirror, pg_conn, pg_schema, gcs_hook, gcs_bucket, storage_client, caplog
):
    mirror.replace(OCTOBER_PATH, edited_sample(_drop_column("congestion_surcharge")))
    with caplog.at_level(logging.INFO, logger="include.source.extract"):
        staged = load_to_postgres(mirror.url, pg_conn, pg_schema)
        export_to_gcs(mirror.url, gcs_hook, gcs_bucket)

    assert (
        f"{FILE}: no column(s) ['congestion_surcharge', 'cbd_congestion_fee'] in the file; they load as nulls"
        in caplog.text
    )
    assert pg_conn.execute(
        f"SELECT count(*), count(congestion_surcharge) FROM {pg_schema}.green_tripdata"
    ).fetchone() == (len(_kept_rows()), 0)
    assert (
        profile_of_run(pg_conn, pg_schema, "green", staged.run_id)["null_fraction"]["congestion_surcharge"]
        == 1.0
    )
    month = pq.read_table(
        io.BytesIO(
            storage_client.bucket(gcs_bucket)
            .blob("green_tripdata/green_tripdata_2020-10.parquet")
            .download_as_bytes()
        )
    )
    assert month.num_rows == len(_kept_rows())
    assert str(month.schema.field("congestion_surcharge").type) == "double"
    assert month.column("congestion_surcharge").null_count == month.num_rows


def test_a_missing_column_is_flagged_against_earlier_months(mirror, pg_conn, pg_schema, caplog):
    """A column that suddenly loads as nulls is what the anomaly test is for: warned by default. (A
    column the family's era always has fails the file instead: tests/unit/test_era_columns.py.)"""
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    mirror.replace(
        DECEMBER_PATH, edited_sample(lambda rows: _drop_column("congestion_surcharge")(as_december(rows)))
    )
    with caplog.at_level(logging.WARNING, logger="include.checks.quality"):
        staged = load_to_postgres(mirror.url, pg_conn, pg_schema, month=DECEMBER)

    flags = profile_of_run(pg_conn, pg_schema, "green", staged.run_id)["anomalies"]
    assert {flag["feature"]: flag["action"] for flag in flags}["null_fraction.congestion_surcharge"] == "warn"
    assert "anomaly in green 2020-12: null_fraction.congestion_surcharge is 1" in caplog.text


def test_a_file_without_the_pickup_time_fails_and_changes_nothing(
    mirror, pg_conn, pg_schema, gcs_hook, gcs_bucket, storage_client
):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    export_to_gcs(mirror.url, gcs_hook, gcs_bucket)
    before = postgres_state(pg_conn, pg_schema), bucket_state(storage_client, gcs_bucket)

    mirror.replace(OCTOBER_PATH, edited_sample(_drop_column("lpep_pickup_datetime")))
    message = rf"{FILE}: missing column\(s\) lpep_pickup_datetime; header is \['VendorID', "
    with pytest.raises(InvalidFileError, match=message):
        load_to_postgres(mirror.url, pg_conn, pg_schema)
    with pytest.raises(InvalidFileError, match=message):
        export_to_gcs(mirror.url, gcs_hook, gcs_bucket)

    assert (postgres_state(pg_conn, pg_schema), bucket_state(storage_client, gcs_bucket)) == before
    assert staging_tables(pg_conn, pg_schema) == staging_objects(storage_client, gcs_bucket) == []


def test_an_extra_column_is_ignored_with_a_warning(mirror, pg_conn, pg_schema, caplog):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    one_good_load = postgres_state(pg_conn, pg_schema, with_runs=False)

    def add_airport_fee(rows):  # a yellow column since 2022, never a green one
        return [rows[0] + ["airport_fee"]] + [[*row, "1.25"] for row in rows[1:]]

    mirror.replace(OCTOBER_PATH, edited_sample(add_airport_fee))
    with caplog.at_level(logging.WARNING, logger="include.source.extract"):
        load_to_postgres(mirror.url, pg_conn, pg_schema)

    assert f"{FILE}: ignoring column(s) not in the declared schema: ['airport_fee']" in caplog.text
    assert postgres_state(pg_conn, pg_schema, with_runs=False) == one_good_load
    columns = pg_conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
        " AND table_name = 'green_tripdata'",
        (pg_schema,),
    ).fetchall()
    assert ("airport_fee",) not in columns


def test_a_byte_order_mark_and_the_header_case_change_nothing(mirror, pg_conn, pg_schema, caplog):
    """Spreadsheet tools save CSV with a UTF-8 byte-order mark; the TLC changes a header's case."""
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    one_good_load = postgres_state(pg_conn, pg_schema, with_runs=False)

    def bom_and_lower_case(rows):
        rows[0] = [name.lower() for name in rows[0]]
        rows[0][0] = "\ufeff" + rows[0][0]
        return rows

    mirror.replace(OCTOBER_PATH, edited_sample(bom_and_lower_case))
    assert gzip.decompress(mirror.content(OCTOBER_PATH)).startswith(b"\xef\xbb\xbfvendorid,")
    with caplog.at_level(logging.INFO, logger="include.source.extract"):
        load_to_postgres(mirror.url, pg_conn, pg_schema)

    assert postgres_state(pg_conn, pg_schema, with_runs=False) == one_good_load
    assert (
        f"{FILE}: matched column(s) by case or an older spelling: vendorid → vendor_id, "
        "ratecodeid → ratecode_id, pulocationid → pu_location_id, dolocationid → do_location_id"
    ) in caplog.text


def test_the_2019_fhv_header_is_matched_by_case_and_reported(mirror, pg_conn, pg_schema, caplog):
    with caplog.at_level(logging.INFO, logger="include.source.extract"):
        load_to_postgres(mirror.url, pg_conn, pg_schema, "fhv", Month(2019, 1))

    assert (
        "fhv_tripdata_2019-01.csv.gz: matched column(s) by case or an older spelling: "
        "dropOff_datetime → dropoff_datetime, PUlocationID → pu_location_id, DOlocationID → do_location_id"
    ) in caplog.text
    source = read_with_pandas(FHV_2019_01)
    loaded = pg_conn.execute(
        f"SELECT count(*), count(dropoff_datetime), count(pu_location_id), count(do_location_id)"
        f" FROM {pg_schema}.fhv_tripdata"
    ).fetchone()
    assert loaded == (
        len(source),
        source.dropOff_datetime.count(),
        source.PUlocationID.count(),
        source.DOlocationID.count(),
    )


UNREADABLE = {1_000: ("passenger_count", "two"), 50_000: ("lpep_pickup_datetime", "2020-10-32 08:00:00")}


def test_unreadable_rows_go_to_the_rejects_table_and_a_clean_rerun_clears_them(mirror, pg_conn, pg_schema):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    one_good_load = postgres_state(pg_conn, pg_schema, with_runs=False)

    mirror.replace(OCTOBER_PATH, edited_sample(_set_field(UNREADABLE)))
    staged = load_to_postgres(mirror.url, pg_conn, pg_schema)

    source = read_with_pandas(GREEN_2020_10)
    kept_lines = [line for line in UNREADABLE if source.passenger_count[line - 2] != 0]
    assert staged.rows_rejected == 2
    assert staged.rows_loaded == len(_kept_rows()) - len(kept_lines)
    assert pg_conn.execute(f"SELECT count(*) FROM {pg_schema}.green_tripdata").fetchone()[0] == (
        staged.rows_loaded
    )
    assert profile_of_run(pg_conn, pg_schema, "green", staged.run_id)["rows_rejected"] == 2
    rejected = pg_conn.execute(
        f"SELECT source_month, source_file, line_number, reason FROM {pg_schema}.{REJECTS_TABLE}"
        " ORDER BY line_number"
    ).fetchall()
    assert rejected == [
        (OCTOBER.first_day, FILE, 1_000, "passenger_count: 'two' is not a valid int64"),
        (
            OCTOBER.first_day,
            FILE,
            50_000,
            "lpep_pickup_datetime: '2020-10-32 08:00:00' is not a valid timestamp[us]",
        ),
    ]

    mirror.restore(OCTOBER_PATH)  # the real file again
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    assert postgres_state(pg_conn, pg_schema, with_runs=False) == one_good_load
    assert pg_conn.execute(f"SELECT count(*) FROM {pg_schema}.{REJECTS_TABLE}").fetchone() == (0,)


def test_unreadable_rows_go_to_a_rejects_object_next_to_the_month(
    mirror, gcs_hook, gcs_bucket, storage_client
):
    export_to_gcs(mirror.url, gcs_hook, gcs_bucket)
    one_good_export = bucket_state(storage_client, gcs_bucket, with_runs=False)
    mirror.replace(OCTOBER_PATH, edited_sample(_set_field(UNREADABLE)))
    staged = export_to_gcs(mirror.url, gcs_hook, gcs_bucket)

    assert staged.rows_rejected == 2
    rejects = pd.read_csv(
        io.BytesIO(storage_client.bucket(gcs_bucket).blob(REJECTS_OBJECT).download_as_bytes())
    )
    assert rejects.line.tolist() == sorted(UNREADABLE)
    assert rejects.reason.str.contains("is not a valid").all()

    mirror.restore(OCTOBER_PATH)  # the real file: no rejects, so the stale object goes
    export_to_gcs(mirror.url, gcs_hook, gcs_bucket)
    assert bucket_state(storage_client, gcs_bucket, with_runs=False) == one_good_export
    assert REJECTS_OBJECT not in bucket_state(storage_client, gcs_bucket)


def test_a_file_with_too_many_unreadable_rows_fails_and_changes_nothing(
    mirror, pg_conn, pg_schema, gcs_hook, gcs_bucket, storage_client
):
    load_to_postgres(mirror.url, pg_conn, pg_schema)
    export_to_gcs(mirror.url, gcs_hook, gcs_bucket)
    before = postgres_state(pg_conn, pg_schema), bucket_state(storage_client, gcs_bucket)
    # A shifted layout: every 50th row has a distance where a count belongs.
    mirror.replace(
        OCTOBER_PATH,
        edited_sample(_set_field(dict.fromkeys(range(2, 95122, 50), ("passenger_count", "1.5")))),
    )

    message = rf"{FILE}: 1903 of 95120 rows could not be read, more than the 1% allowed"
    with pytest.raises(InvalidFileError, match=message):
        load_to_postgres(mirror.url, pg_conn, pg_schema)
    with pytest.raises(InvalidFileError, match=message):
        export_to_gcs(mirror.url, gcs_hook, gcs_bucket)

    assert (postgres_state(pg_conn, pg_schema), bucket_state(storage_client, gcs_bucket)) == before
    assert staging_tables(pg_conn, pg_schema) == staging_objects(storage_client, gcs_bucket) == []


def _as_december_with_ehail_fees(rows):
    """October's rows as December, with an ``ehail_fee`` on every trip."""
    fee = rows[0].index("ehail_fee")
    for row in as_december(rows)[1:]:
        row[fee] = "2.75"
    return rows


def test_ehail_fee_empty_in_one_month_and_numeric_in_another_shares_one_type(
    mirror, pg_conn, pg_schema, gcs_hook, gcs_bucket, storage_client
):
    mirror.replace(DECEMBER_PATH, edited_sample(_as_december_with_ehail_fees))
    for month in (OCTOBER, DECEMBER):
        load_to_postgres(mirror.url, pg_conn, pg_schema, month=month)
        export_to_gcs(mirror.url, gcs_hook, gcs_bucket, month=month)

    fees = pg_conn.execute(
        f"SELECT source_month, count(ehail_fee), sum(ehail_fee), pg_typeof(min(ehail_fee))::text"
        f" FROM {pg_schema}.green_tripdata GROUP BY source_month ORDER BY source_month"
    ).fetchall()
    kept = len(_kept_rows())
    assert fees == [
        (OCTOBER.first_day, 0, None, "double precision"),
        (DECEMBER.first_day, kept, pytest.approx(2.75 * kept), "double precision"),
    ]
    bucket = storage_client.bucket(gcs_bucket)
    schemas = [
        pq.read_schema(
            io.BytesIO(bucket.blob(f"green_tripdata/green_tripdata_{month}.parquet").download_as_bytes())
        )
        for month in (OCTOBER, DECEMBER)
    ]
    assert schemas[0] == schemas[1]
    assert str(schemas[0].field("ehail_fee").type) == "double"


def test_pickups_outside_the_month_are_kept_and_counted_in_the_profile(
    mirror, pg_conn, pg_schema, gcs_hook, gcs_bucket, storage_client
):
    pickups = _kept_rows().lpep_pickup_datetime
    outside = int(((pickups < "2020-10-01") | (pickups >= "2020-11-01")).sum())
    assert outside > 0, "the sample has a few stray pickups"

    staged = load_to_postgres(mirror.url, pg_conn, pg_schema)
    export_to_gcs(mirror.url, gcs_hook, gcs_bucket)

    assert profile_of_run(pg_conn, pg_schema, "green", staged.run_id)["rows_outside_month"] == outside
    assert pg_conn.execute(
        f"SELECT count(*) FROM {pg_schema}.green_tripdata"
        " WHERE lpep_pickup_datetime < '2020-10-01' OR lpep_pickup_datetime >= '2020-11-01'"
    ).fetchone() == (outside,)
    profile = json.loads(
        storage_client.bucket(gcs_bucket)
        .blob("green_tripdata_profiles/green_tripdata_2020-10.json")
        .download_as_bytes()
    )
    assert profile["rows_outside_month"] == outside


def test_a_month_with_too_many_stray_pickups_is_refused_by_the_audit(
    mirror, pg_conn, pg_schema, gcs_hook, gcs_bucket, storage_client
):
    def move_a_tenth_to_september(rows):
        for row in rows[1::10]:
            row[1] = row[1].replace("2020-10-", "2020-09-")
        return rows

    mirror.replace(source_path("green", OCTOBER), edited_sample(move_a_tenth_to_september))
    with pytest.raises(DataQualityError, match="green 2020-10 fails pickups_in_month"):
        load_to_postgres(mirror.url, pg_conn, pg_schema)
    with pytest.raises(
        DataQualityError, match=r"green 2020-10 fails pickups_in_month \(rows_outside_month <="
    ):
        export_to_gcs(mirror.url, gcs_hook, gcs_bucket)

    assert postgres_state(pg_conn, pg_schema)["partitions"] == []
    assert pg_conn.execute(
        f"SELECT count(*), count(published_at) FROM {pg_schema}.green_tripdata_profile"
    ).fetchone() == (1, 0)
    assert bucket_state(storage_client, gcs_bucket) == {}
