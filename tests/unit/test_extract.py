import pyarrow as pa
import pytest

from include.extract import iter_batches
from include.schema import schema_for
from tests.samples import GREEN_2020_10, YELLOW_2021_01, head_lines, read_with_pandas, write_csv


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


def test_a_missing_column_fails_naming_the_file_and_column(tmp_path):
    lines = [",".join(line.rstrip("\n").split(",")[:-1]) + "\n" for line in head_lines(YELLOW_2021_01, 20)]
    path = write_csv(tmp_path, "yellow_tripdata_2021-01.csv.gz", lines)
    with pytest.raises(
        ValueError, match=r"yellow_tripdata_2021-01.csv.gz: missing column\(s\) congestion_surcharge"
    ):
        next(iter_batches(path, schema_for("yellow")))


def test_an_extra_column_is_left_out(tmp_path):
    lines = head_lines(YELLOW_2021_01, 20)
    lines = [lines[0].rstrip("\n") + ",airport_fee\n"] + [line.rstrip("\n") + ",1.25\n" for line in lines[1:]]
    path = write_csv(tmp_path, "yellow_tripdata_2023-01.csv.gz", lines)
    batch = next(iter_batches(path, schema_for("yellow")))
    assert batch.schema == schema_for("yellow").arrow_schema
    assert batch.num_rows == 19


def test_an_unparseable_value_fails_naming_the_file_column_and_row(tmp_path):
    lines = head_lines(YELLOW_2021_01, 20)
    fields = lines[7].split(",")
    fields[3] = "two"  # passenger_count
    lines[7] = ",".join(fields)
    path = write_csv(tmp_path, "yellow_tripdata_2021-01.csv.gz", lines)
    with pytest.raises(ValueError, match=r"yellow_tripdata_2021-01.csv.gz: .*column #3.*'two'"):
        list(iter_batches(path, schema_for("yellow")))
