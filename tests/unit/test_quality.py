"""The month checks and the anomaly test, on profiles of real trips.

The anomaly thresholds must flag a real anomaly and not an ordinary month. The real green months of
2020 are not on this machine, but their row counts are public (the course's mirror files): the
months here are the real trips of October 2020 (every column as recorded), sampled to each month's
real row count and moved into it, then profiled by the same code as a load.
"""

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from include.checks.profile import MonthProfile, Profiler
from include.checks.quality import (
    DEFAULT_ACTIONS,
    MONTH_CHECKS,
    Anomaly,
    failed_checks,
    find_anomalies,
    judge,
    parse_actions,
)
from include.errors import DataQualityError, InvalidParamsError
from include.source.extract import iter_batches
from include.source.families import schema_for
from include.source.months import Month
from include.source.transform import MONTHLY_RULES, CleaningReport, clean
from tests.samples import GREEN_2020_10

# Rows of the mirror's green_tripdata_2020-MM.csv.gz files (the year sums to 1,734,051).
GREEN_2020_ROWS = {3: 223_406, 4: 35_612, 7: 72_257, 8: 81_063, 9: 87_987, 10: 95_120, 11: 88_605}
GREEN = schema_for("green")


@pytest.fixture(scope="module")
def october() -> pa.Table:
    return pa.Table.from_batches(list(iter_batches(GREEN_2020_10, GREEN)))


def green_2020(october: pa.Table, month: int) -> MonthProfile:
    """Real October trips sampled to the month's real row count, moved into the month, profiled."""
    target = Month(2020, month)
    random = np.random.default_rng(month)
    in_october = october.filter(pc.equal(pc.month(october.column("lpep_pickup_datetime")), 10))
    picked = in_october.take(pa.array(random.integers(0, in_october.num_rows, GREEN_2020_ROWS[month])))
    # Keep each trip's time of day and duration; spread the trips over the month's days.
    days = random.integers(0, (target.end - target.start).days, picked.num_rows)
    columns = {}
    for name in (GREEN.pickup_column, GREEN.dropoff_column):
        moved = pc.add(
            pc.subtract(
                picked.column(name), pc.floor_temporal(picked.column(GREEN.pickup_column), unit="day")
            ),
            pa.array((np.datetime64(target.start) + days.astype("timedelta64[D]")).astype("datetime64[us]")),
        )
        columns[name] = moved
    for name, values in columns.items():
        picked = picked.set_column(picked.schema.get_field_index(name), name, values)
    report, profiler = CleaningReport(), Profiler(GREEN, target)
    for _ in profiler.observe(
        clean(picked.to_batches(max_chunksize=50_000), GREEN, MONTHLY_RULES, report, target)
    ):
        pass
    return profiler.profile(report, 0, f"green {target}")


def test_the_april_2020_collapse_is_flagged_with_only_march_before_it(october):
    march, april = green_2020(october, 3), green_2020(october, 4)
    flags = {anomaly.feature: anomaly for anomaly in find_anomalies(april, [march])}
    assert "rows" in flags
    assert flags["rows"].value == april.rows_loaded
    assert flags["rows"].low <= march.rows_loaded <= flags["rows"].high  # March itself is normal
    assert april.rows_loaded < flags["rows"].low


def test_an_ordinary_month_is_not_flagged(october):
    history = [green_2020(october, month) for month in (7, 8, 9, 10)]
    november = green_2020(october, 11)
    assert find_anomalies(november, history) == []


def test_the_flag_names_the_feature_value_range_and_says_anomaly(october, caplog):
    march, april = green_2020(october, 3), green_2020(october, 4)
    anomalies = find_anomalies(april, [march], parse_actions({"rows": "fail"}))
    with (
        caplog.at_level(logging.WARNING, logger="include.checks.quality"),
        pytest.raises(DataQualityError) as error,
    ):
        judge(april, [march], anomalies)
    rows = next(a for a in anomalies if a.feature == "rows")
    assert rows.action == "fail"
    message = str(error.value)
    assert message.startswith(f"anomaly in green 2020-04: rows is {april.rows_loaded:,}, ")
    assert f"expected {rows.low:,.0f} to {rows.high:,.0f} (fail)" in message
    assert "the month is not published" in message
    assert "anomaly in green 2020-04: rows is" in caplog.text


def test_a_month_with_days_missing_is_flagged_whatever_the_history(october):
    october_profile = green_2020(october, 10)
    days = dict(october_profile.trips_per_day)
    for day in ("2020-10-12", "2020-10-13", "2020-10-14"):
        days[day] = 0
    gap = MonthProfile(**{**october_profile.__dict__, "trips_per_day": days})
    [flag] = [a for a in find_anomalies(gap, []) if a.feature == "low_trip_days"]
    assert flag.value == 3 and flag.days == ("2020-10-12", "2020-10-13", "2020-10-14")
    assert find_anomalies(october_profile, []) == []


def test_a_feature_can_be_set_to_fail_or_warn_by_name_or_pattern():
    actions = parse_actions({"null_fraction.*": "fail", "rows": "warn"})
    profile = MonthProfile("green", "2020-11", "u", 100, 100, 0, 0, {}, {"trip_distance": 0.5}, {}, {})
    before = MonthProfile("green", "2020-10", "u", 100, 100, 0, 0, {}, {"trip_distance": 0.0}, {}, {})
    [flag] = find_anomalies(profile, [before], actions)
    assert (flag.feature, flag.action) == ("null_fraction.trip_distance", "fail")
    with pytest.raises(InvalidParamsError, match="anomaly_actions"):
        parse_actions({"rows": "page-someone"})


@pytest.mark.parametrize("text", ['{"rows": "page-someone"}', "rows: ask", '["rows"]'])
def test_the_variable_as_text_is_json_of_features_and_actions(text):
    assert parse_actions('{"rows": "fail", "share_*": "ask"}') == {"rows": "fail", "share_*": "ask"}
    assert parse_actions("") == parse_actions("  ") == parse_actions(None)  # set to nothing: the defaults
    with pytest.raises(InvalidParamsError, match="anomaly_actions"):
        parse_actions(text)


def test_unset_the_april_2020_collapse_asks_a_person_and_the_check_lets_it_through(october, caplog):
    march, april = green_2020(october, 3), green_2020(october, 4)
    anomalies = find_anomalies(april, [march], parse_actions(None))  # the Variable unset
    with caplog.at_level(logging.WARNING, logger="include.checks.quality"):
        judge(april, [march], anomalies)  # no fail flag: the review decides
    rows = next(a for a in anomalies if a.feature == "rows")
    assert (rows.action, rows.compared) == ("ask", (march.month,))
    assert DEFAULT_ACTIONS == {"rows": "ask"}
    assert all(a.action == "warn" for a in anomalies if a.feature != "rows")
    assert f"rows is {april.rows_loaded:,}" in caplog.text and "(ask)" in caplog.text
    # Set to {}, every flag warns.
    assert {a.action for a in find_anomalies(april, [march], parse_actions({}))} == {"warn"}


def test_a_flag_travels_as_json_with_the_months_it_was_compared_with(october):
    march, april = green_2020(october, 3), green_2020(october, 4)
    for flag in find_anomalies(april, [march], parse_actions({"*": "ask"})):
        assert Anomaly.from_json(flag.as_json()) == flag
        assert flag.as_json().get("compared", []) == ([] if flag.feature == "low_trip_days" else ["2020-03"])


@pytest.mark.parametrize(
    ("numbers", "failed"),
    [
        ({"rows_read": 100, "rows_loaded": 99, "rows_outside_month": 0}, []),
        ({"rows_read": 0, "rows_loaded": 0, "rows_outside_month": 0}, ["has_rows"]),
        ({"rows_read": 100, "rows_loaded": 40, "rows_outside_month": 0}, ["most_rows_kept"]),
        ({"rows_read": 100, "rows_loaded": 100, "rows_outside_month": 2}, ["pickups_in_month"]),
    ],
)
def test_the_month_checks_are_the_sql_statements_the_postgres_audit_runs(numbers, failed):
    profile = MonthProfile("green", "2020-10", "u", rows_rejected=0, dropped_by_rule={}, null_fraction={},
                           trips_per_day={}, quantiles={}, **numbers)  # fmt: skip
    assert failed_checks(profile) == failed
    assert set(MONTH_CHECKS) == {"has_rows", "most_rows_kept", "pickups_in_month"}
