import pyarrow as pa
import pytest

from include.errors import InvalidParamsError
from include.source.extract import match_columns, read_header
from include.source.families import SCHEMAS, TAXIS, schema_for
from tests.samples import FHV_2019_01, GREEN_2024_01_PARQUET, SAMPLE_FILES


@pytest.mark.parametrize("taxi", TAXIS)
def test_every_column_of_the_real_headers_is_declared(taxi):
    header = read_header(SAMPLE_FILES[taxi])
    match = match_columns(SAMPLE_FILES[taxi].name, header, SCHEMAS[taxi])
    assert match.extra == []
    assert list(match.matched.values()) == header  # in the files' order
    # Only the columns the TLC added after these files' era are missing.
    assert set(match.missing) <= {"airport_fee", "cbd_congestion_fee"}


def test_the_2019_fhv_header_and_the_tlc_parquet_match_too():
    import pyarrow.parquet as pq

    fhv = match_columns("fhv", read_header(FHV_2019_01), schema_for("fhv"))
    assert fhv.missing == [] and fhv.extra == []
    assert ("dropOff_datetime", "dropoff_datetime") in fhv.respelled
    parquet = match_columns(
        "green", pq.ParquetFile(GREEN_2024_01_PARQUET).schema_arrow.names, schema_for("green")
    )
    assert parquet.missing == ["cbd_congestion_fee"] and parquet.extra == []


def test_names_are_snake_case_everywhere_and_the_trip_times_keep_the_tlc_names():
    for schema in SCHEMAS.values():
        assert all(name == name.lower() for name in schema.names)
    assert schema_for("yellow").names[:3] == ("vendor_id", "tpep_pickup_datetime", "tpep_dropoff_datetime")
    assert {"ratecode_id", "pu_location_id", "do_location_id"} <= set(schema_for("green").names)
    assert (schema_for("fhv").pickup_column, schema_for("fhv").dropoff_column) == (
        "pickup_datetime",
        "dropoff_datetime",
    )


def test_types_are_nullable_ints_floats_and_microsecond_timestamps_and_every_table_has_source_month():
    schema = schema_for("green").table_schema
    assert schema.field("passenger_count").type == pa.int64()
    assert schema.field("ehail_fee").type == pa.float64()
    assert schema.field("lpep_pickup_datetime").type == pa.timestamp("us")
    assert schema.field("store_and_fwd_flag").type == pa.string()
    assert schema.field("source_month").type == pa.date32() and not schema.field("source_month").nullable
    assert schema_for("green").arrow_schema.names == schema.names[:-1]


def test_unknown_family_is_rejected_with_the_allowed_values():
    with pytest.raises(
        InvalidParamsError, match="'blue' is not supported; choose one of: yellow, green, fhv"
    ):
        schema_for("blue")
