"""What each colour's months hold, read from the profiles the loads store: the results view's data.

Every load of a month writes a profile row to ``{schema}.{taxi}_tripdata_profile`` when it stages
the month (rows read, kept, rejected, trips per day, anomaly flags) and sets its ``published_at``
when the month is published. What the warehouse serves for a month is its latest published
profile. A profile staged after that one and never published (refused by a check, or still in
flight) is kept apart and shown beside it: the first thing an on-call engineer looks for.

The functions take a plain psycopg connection (what ``PostgresHook.get_conn()`` returns), like
``include.destinations.postgres``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from include.checks.profile import MonthProfile
from include.destinations.postgres import (
    autocommit,
    checked_identifier,
    profile_from_row,
    select_profiles,
    tripdata_table,
)
from include.destinations.postgres import profile_table as profile_table_of
from include.observing.chart import trips_per_day_png
from include.source.families import TAXIS
from include.source.months import Month


def profile_table(taxi: str) -> str:
    """The profile table of a colour, e.g. ``green_tripdata_profile``; refuses unknown colours."""
    if taxi not in TAXIS:
        raise ValueError(f"taxi {taxi!r} has no profiles; choose one of: {', '.join(TAXIS)}")
    return profile_table_of(tripdata_table(taxi))


@dataclass(frozen=True)
class AnomalyFlag:
    """One feature of a month outside the range its trailing months predict."""

    feature: str
    value: float | None
    low: float | None
    high: float | None
    action: str  # "warn", "ask" or "fail"
    days: tuple[date, ...] = ()

    @classmethod
    def from_json(cls, flag: Mapping[str, Any]) -> AnomalyFlag:
        return cls(
            feature=str(flag["feature"]),
            value=flag.get("value"),
            low=flag.get("low"),
            high=flag.get("high"),
            action=str(flag.get("action", "warn")),
            days=tuple(sorted(date.fromisoformat(day) for day in flag.get("days") or ())),
        )


@dataclass(frozen=True)
class Review:
    """A person's answer to a load whose flags asked for one (``include.checks.review``)."""

    decision: str  # "approve" or "reject"
    by: str | None  # None: nobody answered in time, the default applied
    at: datetime
    reason: str | None
    timed_out: bool

    @classmethod
    def from_json(cls, review: Mapping[str, Any]) -> Review:
        return cls(
            decision=str(review["decision"]),
            by=review.get("by"),
            at=datetime.fromisoformat(review["at"]),
            reason=review.get("reason"),
            timed_out=bool(review.get("timed_out")),
        )

    @property
    def outcome(self) -> str:
        return "approved" if self.decision == "approve" else "rejected"


@dataclass(frozen=True)
class MonthLoad:
    """One load of one month: the profile it staged (``include.checks.profile``) and what became of it."""

    profile: MonthProfile
    run_id: str
    staged_at: datetime
    published_at: datetime | None
    anomalies: tuple[AnomalyFlag, ...] | None  # None: not checked yet
    review: Review | None = None  # None: no flag asked for one (or not answered yet)

    @property
    def taxi(self) -> str:
        return self.profile.taxi

    @property
    def month(self) -> Month:
        return Month.parse(self.profile.month)

    @property
    def published(self) -> bool:
        return self.published_at is not None

    @property
    def dropped_by_rule(self) -> dict[str, int]:
        """jsonb keeps no key order: the rules by name, so the page lists them the same every time."""
        return dict(sorted(self.profile.dropped_by_rule.items()))

    @property
    def flagged_days(self) -> list[date]:
        """Every day any of the month's anomaly flags names, in order."""
        return sorted({day for flag in self.anomalies or () for day in flag.days})

    def chart_png(self) -> bytes:
        """The month's trips per pickup day with the flagged days marked (``include.observing.chart``)."""
        state = "" if self.published else ", not published"
        return trips_per_day_png(
            f"{self.taxi} trips per pickup day, {self.month} (run {self.run_id}{state})",
            {date.fromisoformat(day): count for day, count in self.profile.trips_per_day.items()},
            self.month.first_day,
            self.month.last_day,
            self.flagged_days,
        )


@dataclass(frozen=True)
class ColourResults:
    """A colour's months: what each one serves, and the loads after it that were not published."""

    taxi: str
    table: str  # schema-qualified, for the page
    table_exists: bool
    months: list[MonthLoad]  # the latest published profile of each month, newest month first
    not_published: list[MonthLoad]  # staged after what their month serves, newest first

    def not_published_for(self, month: Month) -> list[MonthLoad]:
        return [profile for profile in self.not_published if profile.month == month]


def _load(taxi: str, row: dict) -> MonthLoad:
    anomalies = row["anomalies"]
    return MonthLoad(
        profile=profile_from_row(taxi, row),
        run_id=row["run_id"],
        staged_at=row["staged_at"],
        published_at=row["published_at"],
        anomalies=None if anomalies is None else tuple(AnomalyFlag.from_json(flag) for flag in anomalies),
        review=None if row.get("review") is None else Review.from_json(row["review"]),
    )


def _table_exists(conn: psycopg.Connection, schema_name: str, table: str) -> bool:
    query = "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s"
    # Autocommit first, as select_profiles wants it: a query before would open a transaction.
    return autocommit(conn).execute(query, (schema_name, table)).fetchone() is not None


def _select_loads(
    conn: psycopg.Connection, schema_name: str, taxi: str, where: str, params: tuple
) -> list[MonthLoad]:
    rows = select_profiles(
        conn, schema_name, tripdata_table(taxi), where, params, "source_month DESC, staged_at DESC, run_id"
    )
    return [_load(taxi, row) for row in rows]


def read_colour(conn: psycopg.Connection, schema_name: str, taxi: str) -> ColourResults:
    """Every month of ``taxi`` with the profile it serves, and the loads staged after it unpublished."""
    table = profile_table(taxi)
    qualified = f"{checked_identifier(schema_name, 'schema')}.{table}"
    if not _table_exists(conn, schema_name, table):
        return ColourResults(taxi, qualified, False, [], [])
    profiles = _select_loads(conn, schema_name, taxi, "TRUE", ())
    served: dict[Month, MonthLoad] = {}
    for profile in profiles:
        current = served.get(profile.month)
        if profile.published and (current is None or profile.published_at > current.published_at):
            served[profile.month] = profile
    not_published = [
        profile
        for profile in profiles
        if not profile.published
        and (profile.month not in served or profile.staged_at > served[profile.month].staged_at)
    ]
    months = sorted(served.values(), key=lambda profile: profile.month, reverse=True)
    return ColourResults(taxi, qualified, True, months, not_published)


def read_results(conn: psycopg.Connection, schema_name: str) -> list[ColourResults]:
    """:func:`read_colour` of every colour, in the families' declared order."""
    return [read_colour(conn, schema_name, taxi) for taxi in TAXIS]


def read_profile(
    conn: psycopg.Connection, schema_name: str, taxi: str, month: Month, run_id: str | None = None
) -> MonthLoad | None:
    """The profile of one load (``run_id``), or the one the month serves; None if there is none."""
    if not _table_exists(conn, schema_name, profile_table(taxi)):
        return None
    if run_id is not None:
        where = "source_month = %s AND run_id = %s"
        found = _select_loads(conn, schema_name, taxi, where, (month.first_day, run_id))
        return found[0] if found else None
    where = "source_month = %s AND published_at IS NOT NULL"
    published = _select_loads(conn, schema_name, taxi, where, (month.first_day,))
    return max(published, key=lambda profile: profile.published_at, default=None)


# The dbt mart of monthly revenue (include/dbt/models/marts), in the same schema as the trips.
REVENUE_TABLE = "dm_monthly_zone_revenue"


@dataclass(frozen=True)
class ServiceRevenue:
    """One service's month in the revenue mart, summed over its pickup zones."""

    service_type: str
    month: Month
    trips: int
    total_amount: float


def monthly_revenue(conn: psycopg.Connection, schema_name: str) -> list[ServiceRevenue] | None:
    """Trips and total revenue per service and month, newest month first; None while the models
    (``taxi_warehouse_models``) have not built the mart."""
    if not _table_exists(conn, schema_name, REVENUE_TABLE):
        return None
    query = sql.SQL(
        "SELECT service_type, revenue_month, sum(trips), sum(revenue_monthly_total_amount) FROM {}"
        " GROUP BY service_type, revenue_month ORDER BY revenue_month DESC, service_type"
    ).format(sql.Identifier(checked_identifier(schema_name, "schema"), REVENUE_TABLE))
    return [
        ServiceRevenue(service, Month.of(month), int(trips), float(total or 0))
        for service, month, trips, total in conn.execute(query).fetchall()
    ]
