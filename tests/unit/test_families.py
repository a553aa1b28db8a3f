import pyarrow as pa
import pytest

from include.errors import InvalidParamsError
from include.source.extract import match_columns, read_header
from include.source.families import FAMILIES, TAXIS, schema_for
from include.source.months import Month
from include.source.sources import SOURCES
from local_stack.tlc_server import SAMPLES
from tests.samples import FHV_2019_01

# Columns the TLC added after some samples' eras: a sample may lack only these.
LATER_COLUMNS = {"airport_fee", "cbd_congestion_fee"}
SAMPLES_OF_FAMILIES = [(family.name, sample) for family in FAMILIES.values() for sample in family.samples]


def _header(path) -> list[str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).schema_arrow.names
    return read_header(path)


@pytest.mark.parametrize(("taxi", "sample"), SAMPLES_OF_FAMILIES)
def test_every_column_of_every_declared_sample_is_declared(taxi, sample):
    path = SAMPLES / sample
    header = _header(path)
    match = match_columns(path.name, header, schema_for(taxi))
    assert match.extra == []
    assert list(match.matched.values()) == header  # in the files' order
    assert set(match.missing) <= LATER_COLUMNS


def test_the_2019_fhv_header_is_matched_by_its_old_spellings():
    fhv = match_columns("fhv", read_header(FHV_2019_01), schema_for("fhv"))
    assert fhv.missing == [] and fhv.extra == []
    assert ("dropOff_datetime", "dropoff_datetime") in fhv.respelled


def test_the_sources_publish_what_the_families_declare():
    assert tuple(SOURCES["mirror"].first_months) == ("yellow", "green", "fhv")  # no HVFHV in the CSVs
    assert SOURCES["tlc"].first_months == {taxi: FAMILIES[taxi].first_months["tlc"] for taxi in TAXIS}
    assert SOURCES["tlc"].first_months["fhvhv"] == Month(2019, 2)
    assert not SOURCES["mirror"].has("fhvhv", Month(2020, 10), Month(2020, 12).first_day)


def test_names_are_snake_case_everywhere_and_the_trip_times_keep_the_tlc_names():
    for family in FAMILIES.values():
        assert all(name == name.lower() for name in family.schema.names)
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
        InvalidParamsError, match="'blue' is not supported; choose one of: yellow, green, fhv, fhvhv"
    ):
        schema_for("blue")
