import gzip
import logging
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.errors import InvalidFileError
from include.source.extract import Rejects, iter_batches
from include.source.families import schema_for
from tests.samples import (
    FHV_2019_01,
    FHV_2021_01,
    GREEN_2020_10,
    GREEN_2024_01_PARQUET,
    YELLOW_2021_01,
    head_lines,
    read_with_pandas,
    write_csv,
)


def test_reads_the_whole_month_in_blocks_with_the_declared_schema():
    schema = schema_for("yellow")
    batches = list(iter_batches(YELLOW_2021_01, schema, block_bytes=256 << 10))
    assert len(batches) > 1, "a small block size must give several batches"
    assert all(batch.schema == schema.arrow_schema for batch in batches)
    expected = read_with_pandas(YELLOW_2021_01)
    assert sum(batch.num_rows for batch in batches) == len(expected)
    table = pa.Table.from_batches(batches)
    assert table.column("total_amount").to_pandas().sum() == pytest.approx(expected.total_amount.sum())


def test_an_all_empty_column_keeps_its_declared_type():
    table = pa.Table.from_batches(list(iter_batches(GREEN_2020_10, schema_for("green"))))
    assert table.column("ehail_fee").null_count == table.num_rows
    assert table.schema.field("ehail_fee").type == pa.float64()
    # Empty passenger counts stay null integers, not NaN floats.
    assert table.schema.field("passenger_count").type == pa.int64()
    assert (
        table.column("passenger_count").null_count
        == read_with_pandas(GREEN_2020_10).passenger_count.isna().sum()
    )


def _without_field(lines: list[str], index: int) -> list[str]:
    return [
        ",".join(f for i, f in enumerate(line.rstrip("\n").split(",")) if i != index) + "\n" for line in lines
    ]


def test_a_column_the_file_lacks_loads_as_nulls_and_is_reported(tmp_path, caplog):
    lines = _without_field(head_lines(YELLOW_2021_01, 20), 17)  # congestion_surcharge
    path = write_csv(tmp_path, "yellow_tripdata_2018-01.csv.gz", lines)
    with caplog.at_level(logging.INFO, logger="include.source.extract"):
        batch = next(iter_batches(path, schema_for("yellow")))
    assert batch.schema == schema_for("yellow").arrow_schema
    assert batch.column("congestion_surcharge").null_count == batch.num_rows == 19
    assert "no column(s) ['congestion_surcharge', 'airport_fee', 'cbd_congestion_fee']" in caplog.text


def test_a_missing_pickup_time_fails_naming_the_file_and_column(tmp_path):
    path = write_csv(
        tmp_path, "yellow_tripdata_2021-01.csv.gz", _without_field(head_lines(YELLOW_2021_01, 20), 1)
    )
    with pytest.raises(
        InvalidFileError, match=r"yellow_tripdata_2021-01.csv.gz: missing column\(s\) tpep_pickup_datetime"
    ):
        next(iter_batches(path, schema_for("yellow")))


def test_an_extra_column_is_reported_and_left_out(tmp_path, caplog):
    lines = head_lines(YELLOW_2021_01, 20)
    lines = [lines[0].rstrip("\n") + ",surge_fee\n"] + [line.rstrip("\n") + ",1.25\n" for line in lines[1:]]
    path = write_csv(tmp_path, "yellow_tripdata_2021-01.csv.gz", lines)
    with caplog.at_level(logging.WARNING, logger="include.source.extract"):
        batch = next(iter_batches(path, schema_for("yellow")))
    assert batch.schema == schema_for("yellow").arrow_schema
    assert batch.num_rows == 19
    assert "ignoring column(s) not in the declared schema: ['surge_fee']" in caplog.text


def test_a_byte_order_mark_and_the_header_s_case_change_nothing(tmp_path, caplog):
    lines = head_lines(GREEN_2020_10, 300)
    plain = pa.Table.from_batches(
        list(iter_batches(write_csv(tmp_path, "plain.csv.gz", lines), schema_for("green")))
    )
    lines[0] = "\ufeff" + lines[0].lower()
    path = write_csv(tmp_path, "green_tripdata_2020-10.csv.gz", lines)
    with caplog.at_level(logging.INFO, logger="include.source.extract"):
        marked = pa.Table.from_batches(list(iter_batches(path, schema_for("green"))))
    assert marked.equals(plain)
    assert "matched column(s) by case or an older spelling: vendorid → vendor_id" in caplog.text


def test_fhv_headers_of_both_eras_read_alike(caplog):
    with caplog.at_level(logging.INFO, logger="include.source.extract"):
        old, new = (
            pa.Table.from_batches(list(iter_batches(path, schema_for("fhv"))))
            for path in (FHV_2019_01, FHV_2021_01)
        )
    assert old.schema == new.schema == schema_for("fhv").arrow_schema
    for table, path in ((old, FHV_2019_01), (new, FHV_2021_01)):
        expected = read_with_pandas(path)
        assert table.num_rows == len(expected)
        assert table.column("pu_location_id").null_count == expected.iloc[:, 3].isna().sum() > 0
        assert table.column("dropoff_datetime").null_count == 0
    assert "dropOff_datetime → dropoff_datetime, PUlocationID → pu_location_id" in caplog.text


def test_the_tlc_parquet_reads_as_the_declared_schema():
    expected = pq.read_table(GREEN_2024_01_PARQUET)
    assert expected.schema.field("VendorID").type == pa.int32()  # the TLC's own types differ from ours
    table = pa.Table.from_batches(list(iter_batches(GREEN_2024_01_PARQUET, schema_for("green"))))
    assert table.schema == schema_for("green").arrow_schema
    assert table.num_rows == expected.num_rows == 56_551
    assert table.column("vendor_id").to_pylist() == expected.column("VendorID").to_pylist()
    assert table.column("cbd_congestion_fee").null_count == table.num_rows  # a 2025 column


def test_a_parquet_column_of_the_wrong_type_fails_naming_the_file_and_column(tmp_path):
    source = pq.read_table(GREEN_2024_01_PARQUET).slice(0, 100)
    fares = pa.array(["cheap"] + [str(v) for v in source.column("fare_amount").to_pylist()[1:]])
    path = tmp_path / "green_tripdata_2024-01.parquet"
    pq.write_table(
        source.set_column(source.schema.get_field_index("fare_amount"), "fare_amount", fares), path
    )
    with pytest.raises(
        InvalidFileError,
        match=r"green_tripdata_2024-01.parquet: column fare_amount holds string values .* double",
    ):
        list(iter_batches(path, schema_for("green")))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<!DOCTYPE html><html><body>Not found</body></html>", r"is not a Parquet file: .*an HTML page"),
        (GREEN_2024_01_PARQUET.read_bytes()[:400_000], r"is truncated or corrupt"),
    ],
    ids=["html", "truncated"],
)
def test_a_file_that_is_not_a_tlc_parquet_fails_naming_it(tmp_path, content, message):
    path = tmp_path / "green_tripdata_2024-01.parquet"
    path.write_bytes(content)
    with pytest.raises(InvalidFileError, match=f"green_tripdata_2024-01.parquet {message}"):
        list(iter_batches(path, schema_for("green")))


def test_an_unparseable_value_fails_naming_the_file_column_and_row(tmp_path):
    lines = head_lines(YELLOW_2021_01, 20)
    fields = lines[7].split(",")
    fields[3] = "two"  # passenger_count
    lines[7] = ",".join(fields)
    path = write_csv(tmp_path, "yellow_tripdata_2021-01.csv.gz", lines)
    with pytest.raises(ValueError, match=r"yellow_tripdata_2021-01.csv.gz: .*column #3.*'two'"):
        list(iter_batches(path, schema_for("yellow")))


def _green_lines_with(tmp_path, changes: dict[int, tuple[int, str]], count: int = 200):
    """A slice of green 2020-10 with field ``i`` of line ``n`` (header = line 1) set to a value."""
    lines = head_lines(GREEN_2020_10, count)
    for line_number, (field, value) in changes.items():
        fields = lines[line_number - 1].split(",")
        fields[field] = value
        lines[line_number - 1] = ",".join(fields)
    return write_csv(tmp_path, "green_tripdata_2020-10.csv.gz", lines)


def test_unreadable_rows_are_set_aside_with_their_line_and_reason(tmp_path):
    path = _green_lines_with(tmp_path, {8: (7, "two"), 150: (1, "2020-10-3x 10:00:00")}, count=5001)
    rejects = Rejects(path.name, max_fraction=0.5)
    table = pa.Table.from_batches(
        list(iter_batches(path, schema_for("green"), rejects, block_bytes=16 << 10))
    )
    assert table.num_rows == 5000 - 2
    assert [(row.line, row.reason) for row in rejects.rows] == [
        (8, "passenger_count: 'two' is not a valid int64"),
        (150, "lpep_pickup_datetime: '2020-10-3x 10:00:00' is not a valid timestamp[us]"),
    ]
    assert rejects.rows[0].text.split(",")[7] == "two"


def test_rows_with_the_wrong_number_of_fields_are_set_aside_by_line(tmp_path):
    lines = head_lines(GREEN_2020_10, 400)
    lines[299] = ",".join(lines[299].split(",")[:5]) + "\n"  # line 300
    path = write_csv(tmp_path, "green_tripdata_2020-10.csv.gz", lines)
    rejects = Rejects(path.name)
    rows = sum(batch.num_rows for batch in iter_batches(path, schema_for("green"), rejects))
    assert rows == 398
    assert [(row.line, row.reason) for row in rejects.rows] == [(300, "expected 20 fields, found 5")]


def test_too_many_unreadable_rows_fail_naming_the_file_and_first_line(tmp_path):
    path = _green_lines_with(tmp_path, dict.fromkeys(range(10, 20), (7, "x")), count=101)
    with pytest.raises(
        ValueError, match=r"green_tripdata_2020-10.csv.gz: 10 of 100 rows could not be read.*line 10"
    ):
        list(iter_batches(path, schema_for("green"), Rejects(path.name)))


def test_the_rejects_file_lists_each_row_once_in_line_order(tmp_path):
    path = _green_lines_with(tmp_path, {40: (8, "far"), 12: (7, "?")}, count=300)
    rejects = Rejects(path.name)
    list(iter_batches(path, schema_for("green"), rejects))
    rejects.write_csv(tmp_path / "rejects.csv")
    written = pd.read_csv(tmp_path / "rejects.csv")
    assert written.line.tolist() == [12, 40]
    assert written.reason.str.startswith(("passenger_count", "trip_distance")).all()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is empty \(0 bytes\)"),
        (b"<html><body>Not here</body></html>", r"is not gzip-compressed: .*an HTML page"),
        (GREEN_2020_10.read_bytes()[:50_000], r"is truncated or corrupt"),
        (gzip.compress(b""), r"has no header line"),
    ],
    ids=["empty", "html", "truncated", "no header"],
)
def test_a_file_that_is_not_a_tlc_csv_fails_naming_it(tmp_path, content, message):
    path = tmp_path / "green_tripdata_2020-10.csv.gz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"green_tripdata_2020-10.csv.gz {message}"):
        list(iter_batches(path, schema_for("green"), Rejects(path.name)))


def test_reading_logs_rows_rate_and_time_left_at_a_steady_pace(caplog):
    with caplog.at_level(logging.INFO, logger="include.observing.progress"):
        rows = sum(
            batch.num_rows
            for batch in iter_batches(
                YELLOW_2021_01, schema_for("yellow"), block_bytes=256 << 10, progress_every_seconds=0
            )
        )
    lines = [record.getMessage() for record in caplog.records if record.name == "include.observing.progress"]
    *lines, last = lines
    assert len(lines) > 1
    size_mb = f"{YELLOW_2021_01.stat().st_size / 1e6:.1f} MB"
    expected = re.compile(
        rf"Reading yellow_tripdata_2021-01.csv.gz: [\d.]+ of {size_mb}, "
        r"[\d,]+ rows \([\d,]+ rows/s\), [\d.]+ MB/s, about \d+ s left"
    )
    assert all(expected.fullmatch(line) for line in lines), lines
    size = size_mb.removesuffix(" MB")
    assert last.startswith(
        f"Reading yellow_tripdata_2021-01.csv.gz: done, {size} of {size_mb}, {rows:,} rows ("
    )
