from datetime import date, datetime

import pytest

from include.errors import InvalidParamsError
from include.source.months import Month
from include.source.sources import SOURCES, MonthRequest, SourceSettings, plan_run, source_named

MIRROR, TLC = SOURCES["mirror"], SOURCES["tlc"]


def test_each_source_has_its_own_url_layout():
    assert MIRROR.url("https://example.test/releases/download/", "green", Month(2020, 10)) == (
        "https://example.test/releases/download/green/green_tripdata_2020-10.csv.gz"
    )
    assert TLC.url("https://d37ci6vzurychx.cloudfront.net", "fhv", Month(2024, 1)) == (
        "https://d37ci6vzurychx.cloudfront.net/trip-data/fhv_tripdata_2024-01.parquet"
    )
    assert (
        TLC.zone_lookup_url("http://x/")
        == MIRROR.zone_lookup_url("http://x")
        == "http://x/misc/taxi_zone_lookup.csv"
    )


def test_the_schedule_spans_the_source_narrowed_by_the_variables():
    mirror = SourceSettings.from_values("mirror")
    assert (mirror.start_date, mirror.end_date) == (datetime(2019, 1, 1), datetime(2021, 7, 1))
    tlc = SourceSettings.from_values("tlc")
    assert (tlc.start_date, tlc.end_date) == (datetime(2009, 1, 1), None)  # a live source has no end
    narrow = SourceSettings.from_values("mirror", "2020-10", "2020-12")
    assert (narrow.first_month, narrow.last_month) == (Month(2020, 10), Month(2020, 12))
    # Narrowing cannot widen the source.
    assert SourceSettings.from_values("mirror", "2015-01", "2030-01").last_month == Month(2021, 7)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("azure",), "taxi_source is 'azure'; choose one of: mirror, tlc"),
        (("mirror", "2021-13"), "taxi_first_month: month '2021-13' is not a month in the form YYYY-MM"),
        (("mirror", "2021-02", "2021-01"), "taxi_first_month 2021-02 is after taxi_last_month 2021-01"),
    ],
)
def test_invalid_settings_are_refused_naming_the_variable(values, message):
    with pytest.raises(InvalidParamsError, match=message):
        SourceSettings.from_values(*values)


def test_the_environment_decides_the_parse_time_settings(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE", "tlc")
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_FIRST_MONTH", "2024-01")
    monkeypatch.delenv("AIRFLOW_VAR_TAXI_LAST_MONTH", raising=False)
    settings = SourceSettings.from_environment()
    assert (settings.source.name, settings.first_month, settings.last_month) == ("tlc", Month(2024, 1), None)


def test_a_month_outside_the_source_is_refused_with_the_range_to_choose_from():
    settings = SourceSettings.from_values("mirror")
    with pytest.raises(InvalidParamsError, match="choose a month from 2019-01 to 2021-07"):
        settings.check_month(Month(2024, 1), date(2026, 12, 1))
    tlc = SourceSettings.from_values("tlc")
    with pytest.raises(InvalidParamsError, match=r"from 2009-01 to 2026-11 \(not over yet on 2026-12-01\)"):
        tlc.check_month(Month(2026, 12), date(2026, 12, 1))
    assert tlc.check_month(Month(2026, 11), date(2026, 12, 1)) == Month(2026, 11)


def test_a_run_loads_the_requested_families_the_source_has_that_month():
    tlc = SourceSettings.from_values("tlc")
    run = plan_run(
        {"month": None, "taxis": ["fhv", "green", "yellow"]}, datetime(2013, 5, 1), date(2026, 1, 1), tlc
    )
    assert (run.month, run.source, run.taxis) == (
        "2013-05",
        "tlc",
        ["yellow"],
    )  # green from 2013-08, FHV 2015
    run = plan_run(
        {"month": "2020-10", "taxis": ["green"]}, None, date(2026, 1, 1), SourceSettings.from_values("mirror")
    )
    assert run.taxis == ["green"]
    with pytest.raises(
        InvalidParamsError, match="taxis \\['blue'\\] must be a non-empty list of: yellow, green, fhv"
    ):
        plan_run({"month": "2020-10", "taxis": ["blue"]}, None, date(2026, 1, 1), tlc)


def test_a_run_of_families_the_source_does_not_have_that_month_is_refused_naming_what_it_has():
    mirror, tlc = SourceSettings.from_values("mirror"), SourceSettings.from_values("tlc")
    with pytest.raises(InvalidParamsError, match=r"mirror publishes none of them for 2020-10 \(yellow from"):
        plan_run({"month": "2020-10", "taxis": ["fhvhv"]}, None, date(2026, 1, 1), mirror)
    with pytest.raises(InvalidParamsError, match=r"fhvhv from 2019-02\)"):
        plan_run({"month": "2019-01", "taxis": ["fhvhv"]}, None, date(2026, 1, 1), tlc)
    assert plan_run({"month": "2019-02", "taxis": ["fhvhv"]}, None, date(2026, 1, 1), tlc).taxis == ["fhvhv"]


def test_only_a_recent_month_of_a_live_source_is_worth_waiting_for():
    today = date(2026, 12, 1)
    assert TLC.may_still_appear(Month(2026, 10), today)  # published about two months after it ends
    assert not TLC.may_still_appear(Month(2025, 1), today)  # long past: a 404 means it will not come
    assert not MIRROR.may_still_appear(Month(2021, 7), today)  # a fixed archive never adds a month


def test_a_request_travels_as_a_flat_dict():
    request = MonthRequest.of(TLC, "http://x", "green", Month(2024, 1))
    assert MonthRequest.from_dict(request.to_dict()) == request
    assert request.file_name == "green_tripdata_2024-01.parquet"
    with pytest.raises(InvalidParamsError):
        source_named("s3")
