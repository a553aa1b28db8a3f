"""The checks that guard a month before it is published, and the anomaly test against earlier months.

**Checks** are statements about the staged month's profile that must hold, or the month is not
published. The Postgres flow hands them to common-sql's ``SQLTableCheckOperator`` on the profile
table; the GCS flow evaluates the same statements on the profile it wrote (``failed_checks``), so
each rule is written once.

**Anomalies** are features of the month that differ too much from the same family's trailing
months (up to ``HISTORY_MONTHS``). For each feature, the trailing values give a robust centre
(the median) and spread (1.4826 times the median absolute deviation, which equals the standard
deviation for normal data and ignores outliers); the month is flagged when it lies more than
``ROBUST_Z`` spreads from the centre *and* more than the feature's minimum meaningful change
(a halving or doubling of the row count, five points of null rate...), so that a short or calm
history — a single earlier month has no spread at all — does not flag noise. Counts and
quantiles are compared on a log scale, shares on a linear one. What a flag does is set per
feature by the Variable ``anomaly_actions``: ``warn`` (publish, and say so), ``ask`` (keep the
month staged until a person approves or rejects it, ``include.flows.check_anomalies``) or ``fail`` (refuse
it before publishing). Unset, ``DEFAULT_ACTIONS`` apply.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from include.errors import DataQualityError, InvalidParamsError

if TYPE_CHECKING:
    from include.checks.profile import MonthProfile

log = logging.getLogger(__name__)

# Statements on one profile row; SQLTableCheckOperator's format (a name, a boolean SQL expression).
MONTH_CHECKS: dict[str, dict[str, str]] = {
    "has_rows": {"check_statement": "rows_loaded > 0"},
    "most_rows_kept": {"check_statement": "rows_loaded >= 0.5 * rows_read"},
    "pickups_in_month": {"check_statement": "rows_outside_month <= 0.01 * rows_loaded"},
}

HISTORY_MONTHS = 12
ROBUST_Z = 4.0
Action = Literal["warn", "ask", "fail"]
ACTIONS: tuple[Action, ...] = ("warn", "ask", "fail")
# When the Variable is unset: a month with half or twice the usual trips waits for a person (it may
# be real, like April 2020 at a sixth of March, or a truncated file); every other flag warns.
DEFAULT_ACTIONS: dict[str, Action] = {"rows": "ask"}


def failed_checks(profile: MonthProfile) -> list[str]:
    """The names of the ``MONTH_CHECKS`` the profile breaks, evaluated by SQLite on its one row."""
    numbers = {name: value for name, value in asdict(profile).items() if isinstance(value, int)}
    with sqlite3.connect(":memory:") as db:
        db.execute(f"CREATE TABLE profile ({', '.join(numbers)})")
        db.execute(f"INSERT INTO profile VALUES ({', '.join('?' * len(numbers))})", list(numbers.values()))
        return [
            name
            for name, check in MONTH_CHECKS.items()
            if not db.execute(f"SELECT {check['check_statement']} FROM profile").fetchone()[0]
        ]


@dataclass(frozen=True)
class FeatureRule:
    """How one feature is compared: on which scale, and the smallest change worth a flag.

    An ``absolute`` rule ignores the history: the feature must lie in ``[0, min_change]``.
    """

    scale: Literal["log", "linear", "absolute"]
    min_change: float


# By feature name; the first pattern that matches a feature applies.
FEATURE_RULES: dict[str, FeatureRule] = {
    "rows": FeatureRule("log", math.log(2)),  # half or double the usual month
    # Days with under half the median day's trips: a gap in the data, whatever the history.
    "low_trip_days": FeatureRule("absolute", 2),
    # A column the file's era always has, absent or empty: wrong whatever the history.
    "missing_column.*": FeatureRule("absolute", 0),
    "share_*": FeatureRule("linear", 0.02),  # two points of the rows
    "null_fraction.*": FeatureRule("linear", 0.05),  # five points of the rows
    "*.p*": FeatureRule("log", math.log(1.5)),  # quantiles: a third lower or half higher
}


def rule_for(feature: str) -> FeatureRule:
    return next(rule for pattern, rule in FEATURE_RULES.items() if fnmatch.fnmatchcase(feature, pattern))


@dataclass(frozen=True)
class Anomaly:
    """A feature of the month outside the range its history allows."""

    feature: str
    value: float
    low: float
    high: float
    action: Action
    days: tuple[str, ...] = ()
    # The earlier months the range came from (none for a rule that ignores the history).
    compared: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, values: Mapping) -> Anomaly:
        lists = {name: tuple(values.get(name) or ()) for name in ("days", "compared")}
        return cls(**{**values, **lists})

    def describe(self, taxi: str, month: str) -> str:
        return (
            f"anomaly in {taxi} {month}: {self.feature} is {_number(self.value)}, "
            f"expected {_number(self.low)} to {_number(self.high)} ({self.action})"
        )

    def as_json(self) -> dict:
        found = {k: v for k, v in asdict(self).items() if k not in ("days", "compared")}
        lists = {name: list(getattr(self, name)) for name in ("days", "compared") if getattr(self, name)}
        return found | lists


def _number(value: float) -> str:
    """Counts in thousands (35,520), shares and small values to four digits (0.0312)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"


def parse_actions(setting: Mapping[str, str] | str | None) -> dict[str, Action]:
    """The Variable ``anomaly_actions`` (JSON text, or parsed): feature name or glob → ``warn``, ``ask``
    or ``fail`` (a feature it does not name warns). Unset or empty is ``DEFAULT_ACTIONS``; ``{}``:
    every flag warns."""
    if isinstance(setting, str):
        try:
            setting = json.loads(setting) if setting.strip() else None
        except json.JSONDecodeError as error:
            raise InvalidParamsError(f"Variable anomaly_actions {setting!r} is not JSON: {error}") from None
    if setting is not None and not isinstance(setting, Mapping):
        raise InvalidParamsError(f"Variable anomaly_actions {setting!r} must be a JSON object")
    actions = dict(DEFAULT_ACTIONS if setting is None else setting)
    wrong = {pattern: action for pattern, action in actions.items() if action not in ACTIONS}
    if wrong:
        raise InvalidParamsError(f"Variable anomaly_actions: {wrong} must map features to one of {ACTIONS}")
    return actions


def action_for(feature: str, actions: Mapping[str, Action]) -> Action:
    return next((a for pattern, a in actions.items() if fnmatch.fnmatchcase(feature, pattern)), "warn")


def find_anomalies(
    profile: MonthProfile, history: Sequence[MonthProfile], actions: Mapping[str, Action] | None = None
) -> list[Anomaly]:
    """Flag each feature of ``profile`` outside the range its trailing ``history`` allows."""
    actions = actions or {}
    earlier = [(p.month, p.features()) for p in history[-HISTORY_MONTHS:]]
    found = []
    for feature, value in profile.features().items():
        rule = rule_for(feature)
        past = {month: f[feature] for month, f in earlier if feature in f}
        if rule.scale == "absolute":
            (low, high), past = (0.0, rule.min_change), {}
        elif past:
            low, high = _allowed_range(rule, list(past.values()))
        else:
            continue
        if not low <= value <= high:
            days = tuple(profile.low_trip_days()) if feature == "low_trip_days" else ()
            action = action_for(feature, actions)
            found.append(Anomaly(feature, value, low, high, action, days, tuple(past)))
    return found


def _allowed_range(rule: FeatureRule, past: Sequence[float]) -> tuple[float, float]:
    import numpy as np

    if rule.scale == "log":
        values = np.log(np.maximum(np.asarray(past, dtype=float), 1e-9))
    else:
        values = np.asarray(past, dtype=float)
    centre = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - centre)))
    reach = max(ROBUST_Z * spread, rule.min_change)
    low, high = centre - reach, centre + reach
    if rule.scale == "log":
        return math.exp(low), math.exp(high)
    return max(low, 0.0), high


def judge(profile: MonthProfile, history: Sequence[MonthProfile], anomalies: Sequence[Anomaly]) -> None:
    """Log each flag; raise ``DataQualityError`` if any flag's action is ``fail`` (``ask`` flags pass:
    the review after the check decides on them)."""
    compared = f"{len(history)} earlier month(s)" if history else "no earlier month (history-free rules only)"
    for anomaly in anomalies:
        log.warning("%s", anomaly.describe(profile.taxi, profile.month))
    if not anomalies:
        log.info("No anomaly in %s %s, compared with %s", profile.taxi, profile.month, compared)
    failing = [a.describe(profile.taxi, profile.month) for a in anomalies if a.action == "fail"]
    if failing:
        raise DataQualityError(f"{'; '.join(failing)}; compared with {compared}: the month is not published")
