from datetime import datetime

import pytest

from include.source.months import Month, resolve_month


def test_parse_and_format_round_trip():
    assert str(Month.parse("2021-01")) == "2021-01"
    assert Month.parse(" 2020-12 ") == Month(2020, 12)


@pytest.mark.parametrize("text", ["2021-13", "2021-1", "21-01", "2021/01", "", "January"])
def test_parse_rejects_malformed_months_naming_the_value(text):
    with pytest.raises(ValueError, match="YYYY-MM") as error:
        Month.parse(text)
    assert repr(text) in str(error.value)


def test_bounds_cover_exactly_one_calendar_month():
    december = Month(2020, 12)
    assert december.start == datetime(2020, 12, 1)
    assert december.end == datetime(2021, 1, 1)
    assert december.next == Month(2021, 1)
    assert Month(2021, 1).previous == december
    assert Month(2021, 3).previous == Month(2021, 2)


def test_param_wins_over_the_data_interval():
    assert resolve_month("2020-10", datetime(2021, 1, 1)) == Month(2020, 10)


def test_scheduled_runs_take_the_month_their_interval_starts_in():
    assert resolve_month(None, datetime(2021, 1, 1)) == Month(2021, 1)


def test_a_run_without_interval_or_param_fails_naming_the_param():
    with pytest.raises(ValueError, match="'month' param"):
        resolve_month(None, None)


def test_months_add_and_subtract_across_years():
    assert Month(2020, 11).plus(3) == Month(2021, 2)
    assert Month(2021, 2).minus(14) == Month(2019, 12)
