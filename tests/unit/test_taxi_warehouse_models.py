"""Which months a run of the warehouse models rebuilds, from its asset events or its params."""

import pytest

from include.errors import InvalidParamsError
from include.flows.taxi_warehouse_models import dbt_months_var, months_to_build


def test_each_month_named_by_the_events_is_built_once_oldest_first():
    events = [
        {"taxi": "yellow", "month": "2021-01"},
        {"taxi": "green", "month": "2020-10"},
        {"taxi": "green", "month": "2021-01"},  # another family, same month
        {"taxi": "yellow", "month": "2021-01"},  # republished
    ]
    assert months_to_build(events, {"months": ["1999-01"]}) == ["2020-10-01", "2021-01-01"]


def test_a_manual_run_builds_the_months_of_its_params_and_empty_means_every_month():
    assert months_to_build([], {"months": ["2021-01", "2020-12"]}) == ["2020-12-01", "2021-01-01"]
    assert months_to_build([], {"months": []}) == []
    assert dbt_months_var([]) == ""
    assert dbt_months_var(["2020-12-01", "2021-01-01"]) == "2020-12-01,2021-01-01"


@pytest.mark.parametrize(
    ("events", "params", "named"),
    [
        ([{"taxi": "limousine", "month": "2021-01"}], {}, "limousine"),
        ([{"taxi": "green", "month": "2021-13"}], {}, "2021-13"),
        ([], {"months": ["2021-01'; drop table x"]}, "drop table"),
    ],
)
def test_an_event_or_param_naming_something_else_is_refused_by_name(events, params, named):
    with pytest.raises(InvalidParamsError, match=named):
        months_to_build(events, params)
