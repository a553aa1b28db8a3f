"""The green-taxi transform and its invariants on real rows of green 2020-10."""

import pyarrow as pa
import pytest

from include.extract import iter_batches
from include.flows.green_taxi_etl import (
    OUTPUT_SCHEMA,
    DataQualityError,
    assert_invariants,
    invariant_violations,
    transform,
)
from include.parquet import write_parquet
from include.schema import schema_for
from include.transform import CleaningReport
from tests.samples import GREEN_2020_10, read_with_pandas


@pytest.fixture(scope="module")
def transformed() -> pa.Table:
    batches = transform(iter_batches(GREEN_2020_10, schema_for("green")), CleaningReport())
    return pa.Table.from_batches(list(batches), schema=OUTPUT_SCHEMA)


def test_transform_matches_an_independent_pandas_computation(transformed):
    source = read_with_pandas(GREEN_2020_10, parse_dates=["lpep_pickup_datetime"])
    kept = source[(source.passenger_count > 0) & (source.trip_distance > 0)]
    assert transformed.num_rows == len(kept)
    assert transformed.column("trip_distance").to_pandas().sum() == pytest.approx(kept.trip_distance.sum())
    per_day = transformed.column("lpep_pickup_date").to_pandas().value_counts().sort_index()
    expected = kept.lpep_pickup_datetime.dt.date.value_counts().sort_index()
    assert per_day.to_dict() == expected.to_dict()


def test_transform_renames_to_snake_case_and_adds_the_pickup_date(transformed):
    assert {"vendor_id", "ratecode_id", "pu_location_id", "do_location_id", "lpep_pickup_date"} <= set(
        transformed.column_names
    )
    assert not {"VendorID", "RatecodeID", "PULocationID", "DOLocationID"} & set(transformed.column_names)
    assert transformed.schema == OUTPUT_SCHEMA


def test_clean_output_passes_every_invariant(transformed, tmp_path):
    assert invariant_violations(transformed) == {"vendor_id": 0, "passenger_count": 0, "trip_distance": 0}
    path = tmp_path / "good.parquet"
    write_parquet(transformed.to_batches(), OUTPUT_SCHEMA, path)
    assert assert_invariants([path]) == transformed.num_rows


def test_bad_rows_fail_naming_the_column_and_the_count(transformed, tmp_path):
    bad = transformed.slice(0, 10).to_pandas()
    bad.loc[:2, "vendor_id"] = 3
    bad.loc[5, "trip_distance"] = 0.0
    path = tmp_path / "bad.parquet"
    write_parquet(pa.Table.from_pandas(bad, schema=OUTPUT_SCHEMA).to_batches(), OUTPUT_SCHEMA, path)
    with pytest.raises(DataQualityError) as error:
        assert_invariants([path])
    assert (
        str(error.value) == "vendor_id: 3 of 10 rows not in (1, 2); trip_distance: 1 of 10 rows not above 0"
    )
