"""What an alert says about a run: its month and the first line of its error."""

from datetime import datetime, timezone

import pytest

from include.errors import SourceNotPublishedError
from include.observing.alerts import first_line, run_month


def test_the_month_param_wins_over_the_data_interval():
    assert run_month({"taxi": "green", "month": "2020-10"}, datetime(2021, 1, 1)) == "2020-10"


@pytest.mark.parametrize(
    "interval_start",
    # A task's context holds a datetime; the deadline's context, the run as JSON.
    [datetime(2021, 1, 1, tzinfo=timezone.utc), "2021-01-01T00:00:00Z"],
)
def test_without_a_month_param_the_month_is_the_data_interval_s(interval_start):
    assert run_month({"taxi": "green", "month": None}, interval_start) == "2021-01"
    assert run_month(None, interval_start) == "2021-01"


def test_a_run_with_neither_says_so():
    assert run_month({}, None).startswith("none")


def test_the_first_line_names_the_exception_type():
    error = SourceNotPublishedError("http://mirror/x.csv.gz is not published (HTTP 404)\nmore detail")
    assert first_line(error) == "SourceNotPublishedError: http://mirror/x.csv.gz is not published (HTTP 404)"
    assert first_line(KeyError()) == "KeyError"
    assert first_line("Task was killed\ntraceback") == "Task was killed"
    assert first_line(None).startswith("no exception recorded")
