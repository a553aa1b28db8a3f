import pyarrow as pa
import pytest

from include.extract import read_header
from include.schema import SCHEMAS, schema_for, to_snake_case
from tests.samples import SAMPLE_FILES


@pytest.mark.parametrize("taxi", ["yellow", "green"])
def test_declared_columns_are_the_real_files_header_in_order(taxi):
    assert SCHEMAS[taxi].source_names == read_header(SAMPLE_FILES[taxi])


def test_pickup_column_per_colour():
    assert schema_for("yellow").pickup_column == "tpep_pickup_datetime"
    assert schema_for("green").pickup_column == "lpep_pickup_datetime"


def test_unknown_colour_is_rejected_with_the_allowed_values():
    with pytest.raises(ValueError, match="'blue' is not supported; choose one of: yellow, green"):
        schema_for("blue")


def test_types_are_nullable_ints_floats_and_microsecond_timestamps():
    schema = schema_for("green").arrow_schema
    assert schema.field("passenger_count").type == pa.int64()
    assert schema.field("ehail_fee").type == pa.float64()
    assert schema.field("lpep_pickup_datetime").type == pa.timestamp("us")
    assert schema.field("store_and_fwd_flag").type == pa.string()


def test_snake_case_renames_only_the_camel_case_columns():
    names = schema_for("yellow").snake_case_arrow_schema.names
    assert names[:2] == ["vendor_id", "tpep_pickup_datetime"]
    assert {"ratecode_id", "pu_location_id", "do_location_id"} <= set(names)
    assert all(name == name.lower() for name in names)
    renamed = to_snake_case(pa.table({"VendorID": [1], "trip_distance": [1.5]}))
    assert renamed.column_names == ["vendor_id", "trip_distance"]
