"""The profile gathered while a month streams, against an independent pandas computation."""

import numpy as np
import pyarrow as pa
import pytest

from include.checks.profile import Profiler
from include.source.extract import iter_batches
from include.source.families import schema_for
from include.source.months import Month
from include.source.transform import MONTHLY_RULES, CleaningReport, clean
from tests.samples import FHV_2021_01, GREEN_2020_10, read_with_pandas

OCTOBER = Month(2020, 10)


@pytest.fixture(scope="module")
def green_profile():
    schema, report = schema_for("green"), CleaningReport()
    profiler = Profiler(schema, OCTOBER)
    batches = profiler.observe(
        clean(
            iter_batches(GREEN_2020_10, schema, block_bytes=64 << 10), schema, MONTHLY_RULES, report, OCTOBER
        )
    )
    table = pa.Table.from_batches(list(batches))
    return profiler.profile(report, 0, "http://x/green_tripdata_2020-10.csv.gz"), table


def kept_rows():
    source = read_with_pandas(GREEN_2020_10, parse_dates=["lpep_pickup_datetime", "lpep_dropoff_datetime"])
    return source[source.passenger_count != 0]


def test_counts_match_pandas(green_profile):
    profile, table = green_profile
    kept = kept_rows()
    assert profile.rows_loaded == len(kept) == table.num_rows
    assert profile.rows_read == 95_120
    assert profile.dropped_by_rule == {"missing_pickup_time": 0, "no_passengers": 95_120 - len(kept)}
    per_day = kept.lpep_pickup_datetime.dt.date.astype(str).value_counts().to_dict()
    assert profile.trips_per_day == per_day
    outside = ((kept.lpep_pickup_datetime < "2020-10-01") | (kept.lpep_pickup_datetime >= "2020-11-01")).sum()
    assert profile.rows_outside_month == outside


def test_null_fractions_are_per_declared_column(green_profile):
    profile, _ = green_profile
    kept = kept_rows()
    assert profile.null_fraction["passenger_count"] == pytest.approx(
        kept.passenger_count.isna().mean(), abs=1e-6
    )
    assert profile.null_fraction["ehail_fee"] == 1.0
    assert profile.null_fraction["cbd_congestion_fee"] == 1.0  # a column of a later era
    assert set(profile.null_fraction) == set(schema_for("green").names)


def test_sampled_quantiles_are_close_to_the_exact_ones(green_profile):
    profile, _ = green_profile
    kept = kept_rows()
    minutes = (kept.lpep_dropoff_datetime - kept.lpep_pickup_datetime).dt.total_seconds() / 60
    for name, values in (
        ("fare_amount", kept.fare_amount),
        ("trip_distance", kept.trip_distance),
        ("trip_minutes", minutes),
    ):
        for label, q in (("p05", 0.05), ("p50", 0.5), ("p95", 0.95)):
            # Within one percentile of the exact value: what a 20,000-row uniform sample gives.
            low, high = np.nanquantile(values, [max(q - 0.01, 0), min(q + 0.01, 1)])
            assert low <= profile.quantiles[name][label] <= high, (name, label)


def test_profiling_the_same_file_twice_gives_the_same_profile(green_profile):
    schema, report = schema_for("green"), CleaningReport()
    profiler = Profiler(schema, OCTOBER)
    for _ in profiler.observe(
        clean(iter_batches(GREEN_2020_10, schema), schema, MONTHLY_RULES, report, OCTOBER)
    ):
        pass
    assert profiler.profile(report, 0, "http://x/green_tripdata_2020-10.csv.gz") == green_profile[0]


def test_a_family_without_fares_profiles_the_trip_time_only():
    schema, report = schema_for("fhv"), CleaningReport()
    profiler = Profiler(schema, Month(2021, 1))
    for _ in profiler.observe(
        clean(iter_batches(FHV_2021_01, schema), schema, MONTHLY_RULES, report, Month(2021, 1))
    ):
        pass
    profile = profiler.profile(report, 0, "u")
    assert set(profile.quantiles) == {"trip_minutes"}
    assert profile.dropped_by_rule == {"missing_pickup_time": 0}  # no passenger count, no such rule
    assert "share_dropped.missing_pickup_time" in profile.features()
