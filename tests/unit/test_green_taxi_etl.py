"""The green-taxi transform and its invariant on real rows of green 2020-10."""

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from include.destinations.parquet import write_parquet
from include.errors import DataQualityError
from include.flows.green_taxi_etl import (
    OUTPUT_SCHEMA,
    assert_invariants,
    summary,
    transform,
    vendor_violations,
)
from include.source.extract import iter_batches
from include.source.families import schema_for
from include.source.transform import CleaningReport
from tests.samples import GREEN_2020_10, read_with_pandas


@pytest.fixture(scope="module")
def transformed() -> pa.Table:
    batches = transform(iter_batches(GREEN_2020_10, schema_for("green")), CleaningReport())
    return pa.Table.from_batches(list(batches), schema=OUTPUT_SCHEMA)


def test_transform_matches_an_independent_pandas_computation(transformed):
    source = read_with_pandas(GREEN_2020_10, parse_dates=["lpep_pickup_datetime"])
    kept = source[(source.passenger_count > 0) & (source.trip_distance > 0)]
    assert transformed.num_rows == len(kept) == 49_269
    assert transformed.column("trip_distance").to_pandas().sum() == pytest.approx(kept.trip_distance.sum())
    per_day = transformed.column("lpep_pickup_date").to_pandas().value_counts().sort_index()
    expected = kept.lpep_pickup_datetime.dt.date.value_counts().sort_index()
    assert per_day.to_dict() == expected.to_dict()


def test_the_course_s_assertions_hold_on_the_transform_s_output(transformed):
    """The course asserts these three; the filter guarantees the last two, so they are tested here."""
    assert vendor_violations(transformed) == 0
    assert pc.min(transformed.column("passenger_count")).as_py() > 0
    assert pc.min(transformed.column("trip_distance")).as_py() > 0
    assert (
        transformed.column("passenger_count").null_count
        == transformed.column("trip_distance").null_count
        == 0
    )


def test_output_is_snake_case_with_the_pickup_date(transformed):
    assert {"vendor_id", "ratecode_id", "pu_location_id", "do_location_id", "lpep_pickup_date"} <= set(
        transformed.column_names
    )
    assert not {"VendorID", "RatecodeID", "PULocationID", "DOLocationID"} & set(transformed.column_names)
    assert transformed.schema == OUTPUT_SCHEMA


def test_an_unknown_vendor_fails_naming_the_column_and_the_count(transformed, tmp_path):
    good = tmp_path / "good.parquet"
    write_parquet(transformed.to_batches(), OUTPUT_SCHEMA, good)
    assert assert_invariants([good]) == transformed.num_rows
    bad = transformed.slice(0, 10).to_pandas()
    bad.loc[:2, "vendor_id"] = 6
    path = tmp_path / "bad.parquet"
    write_parquet(pa.Table.from_pandas(bad, schema=OUTPUT_SCHEMA).to_batches(), OUTPUT_SCHEMA, path)
    with pytest.raises(DataQualityError, match=r"^vendor_id: 3 of 10 rows not in \(1, 2\)$"):
        assert_invariants([path])


def test_the_summary_names_the_renamed_columns():
    text = summary([], 0, [])
    renames = ["VendorID → vendor_id", "RatecodeID → ratecode_id", "PULocationID → pu_location_id"]
    assert f"columns renamed: {', '.join(renames)}, DOLocationID → do_location_id" in text
