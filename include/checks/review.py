"""A person's review of a month the anomaly test flagged with ``ask``: what they are asked, and what
their answer (or its absence) decides.

The month stays staged while a person looks at its flags (feature, value, expected range, the
months compared) and its trips-per-day chart, then approves it (it is published) or rejects it
(it is not, and the run fails with who rejected it and why). No answer within
``anomaly_review_timeout`` seconds takes ``anomaly_review_default`` (``reject`` unless set): a month
nobody looked at is not published on its own. The Airflow side, ``include.flows.check_anomalies``, asks
through the standard provider's ``ApprovalOperator``; this module is plain Python, so the decision
is tested without Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from include.checks.quality import Anomaly
from include.errors import InvalidParamsError

# ApprovalOperator's two options, as the UI shows them and the REST API takes them.
APPROVE, REJECT = "Approve", "Reject"
Decision = Literal["approve", "reject"]
DECISIONS: dict[str, Decision] = {APPROVE: "approve", REJECT: "reject"}

# A monthly load waits a day for a person: long enough to be seen in working hours, short enough
# that a month nobody looked at does not hold its run (and a slot of max_active_runs) for days.
DEFAULT_TIMEOUT = timedelta(hours=24)
DEFAULT_DECISION: Decision = "reject"


@dataclass(frozen=True)
class ReviewSettings:
    """How long a review waits (``anomaly_review_timeout``, seconds) and what no answer decides
    (``anomaly_review_default``: ``reject`` or ``approve``)."""

    timeout: timedelta = DEFAULT_TIMEOUT
    default: Decision = DEFAULT_DECISION

    @classmethod
    def parse(cls, timeout: str | int | None, default: str | None) -> ReviewSettings:
        """The Variables' values (None: unset), checked; the error names the Variable and what is allowed."""
        seconds = DEFAULT_TIMEOUT.total_seconds() if timeout in (None, "") else timeout
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            seconds = -1.0
        if seconds <= 0:
            raise InvalidParamsError(
                f"Variable anomaly_review_timeout {timeout!r} must be a number of seconds above 0"
            )
        decision = (default or DEFAULT_DECISION).strip().lower()
        if decision not in DECISIONS.values():
            raise InvalidParamsError(
                f"Variable anomaly_review_default {default!r} must be one of {sorted(DECISIONS.values())}"
            )
        return cls(timedelta(seconds=seconds), decision)

    @property
    def default_option(self) -> str:
        return APPROVE if self.default == "approve" else REJECT


def asking(anomalies: Sequence[Mapping[str, Any]] | None) -> list[Anomaly]:
    """The flags (as ``check_anomalies`` returns them) whose action is ``ask``: none, no review."""
    return [flag for flag in map(Anomaly.from_json, anomalies or ()) if flag.action == "ask"]


def request_text(
    taxi: str,
    month: str,
    anomalies: Sequence[Mapping[str, Any]],
    chart_link: str | None,
    settings: ReviewSettings,
) -> tuple[str, str]:
    """The review's subject and its body (Markdown, as the UI's required-actions page shows it)."""
    flags = [Anomaly.from_json(flag) for flag in anomalies]
    features = ", ".join(flag.feature for flag in flags if flag.action == "ask")
    subject = f"Publish {taxi} {month}? Its {features} differ from the months before it"
    rows = "\n".join(
        f"| {flag.feature} | {flag.action} | {_number(flag.value)} | {_number(flag.low)} to "
        f"{_number(flag.high)} | {_months(flag.compared)} |"
        for flag in flags
    )
    chart = (
        f"[The month's trips per pickup day in Taxi results]({chart_link}), flagged days in red."
        if chart_link
        else "This destination has no chart in Taxi results."
    )
    body = (
        f"The anomaly test flagged **{taxi} {month}**. It is staged, not published: readers still see "
        "what was published before.\n\n"
        "| feature | action | value | expected | months compared |\n"
        "|---|---|---|---|---|\n"
        f"{rows}\n\n"
        f"{chart}\n\n"
        f"**{APPROVE}** publishes the month. **{REJECT}** drops it and fails the run (say why in "
        f"*reason*). With no answer within {_duration(settings.timeout)}, the month is "
        f"**{settings.default}ed**."
    )
    return subject, body


def review_record(
    answer: Mapping[str, Any], anomalies: Sequence[Mapping[str, Any]], chart_link: str | None
) -> dict[str, Any]:
    """What is stored with the month's profile: the decision, who took it and when, their reason,
    whether nobody answered (the default applied), and what they were shown.

    ``answer`` is the HITL event ``execute_complete`` receives: ``chosen_options``,
    ``params_input``, ``responded_at``, ``responded_by_user`` (None on a timeout), ``timedout``.
    """
    [option] = answer["chosen_options"]
    user = answer.get("responded_by_user") or None
    responded_at = answer["responded_at"]
    reason = ((answer.get("params_input") or {}).get("reason") or "").strip()
    return {
        "decision": DECISIONS[option],
        "by": user["name"] if user else None,
        "by_id": str(user["id"]) if user else None,
        "at": responded_at.isoformat() if isinstance(responded_at, datetime) else str(responded_at),
        "reason": reason or None,
        "timed_out": bool(answer.get("timedout")) or user is None,
        "anomalies": [dict(flag) for flag in anomalies],
        "chart": chart_link,
    }


def rejection_message(taxi: str, month: str, review: Mapping[str, Any]) -> str:
    """Why the run fails: who rejected the month and why, or that nobody answered in time."""
    if review["timed_out"]:
        who = f"no answer to the review by {review['at']}: the default, reject, applies"
    else:
        who = f"rejected by {review['by']} at {review['at']}"
    reason = f": {review['reason']}" if review.get("reason") else " (no reason given)"
    return f"{taxi} {month} {who}{reason}; the month is not published"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"


def _months(months: Sequence[str]) -> str:
    if not months:
        return "none (the rule ignores the history)"
    return ", ".join(months) if len(months) <= 3 else f"{months[0]} to {months[-1]} ({len(months)})"


def _duration(timeout: timedelta) -> str:
    seconds = int(timeout.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour{'s' if seconds != 3600 else ''}"
    return f"{seconds} seconds"
