"""The yellow sample as the demo loads it: spread over its month, so no flag real data would not raise."""

from pathlib import Path

import pytest

from include.checks.quality import find_anomalies
from include.source.month_file import MonthFile
from include.source.months import Month
from include.source.sources import MonthRequest
from local_stack import expected, mirror
from local_stack.yellow_sample import spread_over_month
from tests.samples import YELLOW_2021_01


def profile_of(path: Path, month: Month):
    request = MonthRequest("yellow", month, "mirror", f"http://mirror.test/yellow/{path.name}")
    month_file = MonthFile(path, request)
    loaded = sum(batch.num_rows for batch in month_file.batches())
    profile = month_file.profile()
    assert loaded == profile.rows_loaded == expected.rows(path)
    return profile


def test_the_sample_has_trips_on_every_day_of_its_month():
    days = {day for day in expected.rows_per_day(YELLOW_2021_01) if (day.year, day.month) == (2021, 1)}
    assert len(days) == 31


@pytest.mark.parametrize("month", [Month(2021, 1), Month(2020, 11)])
def test_a_yellow_month_loaded_from_the_sample_flags_no_low_trip_days(tmp_path, month):
    # January is the sample itself; November is what the local mirror constructs from it.
    target = mirror.Month(month.year, month.month)
    path = mirror.moved_month(
        YELLOW_2021_01, mirror.Month(2021, 1), target, tmp_path / f"yellow_tripdata_{month}.csv.gz"
    )
    profile = profile_of(path, month)
    assert len(profile.trips_per_day) >= 30
    assert profile.low_trip_days() == []
    assert [a.feature for a in find_anomalies(profile, [])] == []


def test_rebuilding_the_sample_gives_the_same_bytes(tmp_path):
    # The builder's rule is idempotent: run on its own output it writes that output again.
    rebuilt = spread_over_month(YELLOW_2021_01, tmp_path / YELLOW_2021_01.name)
    assert rebuilt.read_bytes() == YELLOW_2021_01.read_bytes()
