"""A person's review of a flagged month: its settings, what it asks, and what an answer decides."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from include.checks.quality import Anomaly
from include.checks.review import (
    APPROVE,
    DEFAULT_DECISION,
    DEFAULT_TIMEOUT,
    REJECT,
    ReviewSettings,
    asking,
    rejection_message,
    request_text,
    review_record,
)
from include.errors import InvalidParamsError

ROWS = Anomaly("rows", 9_480.0, 47_430.4, 189_721.6, "ask", compared=("2020-10", "2020-11"))
NULLS = Anomaly("null_fraction.trip_distance", 0.3, 0.0, 0.05, "warn", compared=("2020-11",))
FLAGS = [ROWS.as_json(), NULLS.as_json()]
LINK = "http://airflow.test/taxi-results/?taxi=green&month=2020-12&run_id=manual__1#chart"
ANSWERED = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


def test_unset_a_review_waits_a_day_and_no_answer_rejects():
    settings = ReviewSettings.parse(None, None)
    assert (
        (settings.timeout, settings.default)
        == (DEFAULT_TIMEOUT, DEFAULT_DECISION)
        == (
            timedelta(hours=24),
            "reject",
        )
    )
    assert settings.default_option == REJECT
    assert ReviewSettings.parse("", "") == settings  # Variables set to nothing


def test_the_variables_set_the_wait_and_the_default():
    settings = ReviewSettings.parse("90", " Approve ")
    assert (settings.timeout, settings.default, settings.default_option) == (
        timedelta(seconds=90),
        "approve",
        APPROVE,
    )


@pytest.mark.parametrize(
    ("timeout", "default", "named"),
    [
        ("soon", None, "anomaly_review_timeout"),
        ("0", None, "anomaly_review_timeout"),
        (None, "maybe", "default"),
    ],
)
def test_a_wrong_setting_names_its_variable(timeout, default, named):
    with pytest.raises(InvalidParamsError, match=named):
        ReviewSettings.parse(timeout, default)


def test_only_a_flag_set_to_ask_asks():
    assert asking(FLAGS) == [ROWS]
    assert asking([NULLS.as_json()]) == [] and asking([]) == [] and asking(None) == []


def test_the_request_shows_every_flag_with_its_range_and_months_and_links_the_chart():
    settings = ReviewSettings.parse("7200", None)
    subject, body = request_text("green", "2020-12", FLAGS, LINK, settings)
    assert subject == "Publish green 2020-12? Its rows differ from the months before it"
    assert (
        f"| rows | ask | {ROWS.value:,.0f} | {ROWS.low:,.0f} to {ROWS.high:,.0f} | 2020-10, 2020-11 |" in body
    )
    assert f"| {NULLS.feature} | warn | {NULLS.value:.4g} | 0 to {NULLS.high:.4g} | 2020-11 |" in body
    assert f"]({LINK})" in body
    assert "within 2 hours, the month is **rejected**" in body
    _, without_chart = request_text("green", "2020-12", FLAGS, None, settings)
    assert "no chart in Taxi results" in without_chart and "](" not in without_chart


def _answer(option: str, user: dict | None, reason: str | None = None, timedout: bool = False) -> dict:
    """The event ``HITLOperator.execute_complete`` gets: a person's answer, or the timeout's default."""
    return {
        "chosen_options": [option],
        "params_input": {"reason": reason} if reason is not None else {},
        "responded_at": ANSWERED,
        "responded_by_user": user,
        "timedout": timedout,
    }


def test_an_approval_is_recorded_with_who_when_and_what_they_saw():
    review = review_record(_answer(APPROVE, {"id": "admin", "name": "Ada"}, " real: a storm "), FLAGS, LINK)
    assert review == {
        "decision": "approve",
        "by": "Ada",
        "by_id": "admin",
        "at": ANSWERED.isoformat(),
        "reason": "real: a storm",
        "timed_out": False,
        "anomalies": FLAGS,
        "chart": LINK,
    }


def test_a_rejection_fails_the_run_naming_the_reviewer_and_the_reason():
    review = review_record(_answer(REJECT, {"id": 7, "name": "Grace"}, "truncated file"), FLAGS, LINK)
    assert (review["decision"], review["by_id"], review["timed_out"]) == ("reject", "7", False)
    assert rejection_message("green", "2020-12", review) == (
        f"green 2020-12 rejected by Grace at {ANSWERED.isoformat()}: truncated file; "
        "the month is not published"
    )
    review = review_record(_answer(REJECT, {"id": "g", "name": "Grace"}, ""), FLAGS, None)
    assert review["reason"] is None
    assert "rejected by Grace" in rejection_message("green", "2020-12", review)
    assert "(no reason given)" in rejection_message("green", "2020-12", review)


@pytest.mark.parametrize("option", [APPROVE, REJECT])
def test_no_answer_records_the_default_as_timed_out(option):
    # The scheduler's timeout sweep answers with the defaults and no user.
    review = review_record(_answer(option, None, "", timedout=True), FLAGS, LINK)
    assert (review["decision"], review["by"], review["timed_out"]) == (
        "approve" if option == APPROVE else "reject",
        None,
        True,
    )
    if option == REJECT:
        message = rejection_message("green", "2020-12", review)
        assert message.startswith("green 2020-12 no answer to the review by ")
        assert "the default, reject, applies" in message
