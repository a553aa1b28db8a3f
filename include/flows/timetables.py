"""A data-interval timetable bounded at both ends: no run for an interval outside the source's months.

A DAG's ``end_date`` would stop the schedule too, but Airflow also creates no task for a run whose
logical date is after it, so every manual run of a finished archive (``airflow dags test`` gives
"now" as the logical date) would succeed having run nothing. Bounding the timetable instead stops
the schedule and leaves manual runs alone. The first interval is bounded here as well, not only by
the DAG's ``start_date``: a backfill asks the timetable for the intervals of its own range, and
Airflow 3.3 does not hold it to ``start_date``, so a backfill from a date before the source's first
month would create runs that can only fail. Registered by ``plugins/nyc_taxi_timetables.py``, as
Airflow requires of custom timetables so the scheduler can deserialize them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable
from pendulum import UTC

from include.errors import DeploymentError


class CronDataIntervalsUntil(CronDataIntervalTimetable):
    """``CronDataIntervalTimetable`` whose runs are the intervals starting from ``first_start`` (if
    given) to ``last_start``, for the scheduler and for backfills alike."""

    def __init__(
        self,
        cron: str,
        last_start: datetime | None,
        timezone: str = "UTC",
        first_start: datetime | None = None,
    ) -> None:
        super().__init__(cron, timezone)
        self.last_start = _aware(last_start)
        self.first_start = _aware(first_start)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if self.first_start and (restriction.earliest is None or restriction.earliest < self.first_start):
            restriction = TimeRestriction(self.first_start, restriction.latest, restriction.catchup)
        info = super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )
        if info is None or (self.last_start and info.data_interval.start > self.last_start):
            return None
        return info

    @property
    def summary(self) -> str:
        return f"{super().summary} until {self.last_start:%Y-%m-%d}" if self.last_start else super().summary

    def serialize(self) -> dict[str, Any]:
        return {
            **super().serialize(),
            "last_start": self.last_start.isoformat() if self.last_start else None,
            "first_start": self.first_start.isoformat() if self.first_start else None,
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> CronDataIntervalsUntil:
        base = CronDataIntervalTimetable.deserialize(data)
        last, first = data.get("last_start"), data.get("first_start")
        return cls(
            base._expression,
            datetime.fromisoformat(last) if last else None,
            base._timezone,
            datetime.fromisoformat(first) if first else None,
        )


def require_registration() -> None:
    """Fail the DAG's import, in words naming ``plugins/``, when the timetable is not registered:
    Airflow's own error ("is not registered or you have a top level database access...") does not
    say which folder is missing."""
    from airflow import plugins_manager  # the plugins are loaded once per process; the serializer needs them

    name = f"{CronDataIntervalsUntil.__module__}.{CronDataIntervalsUntil.__qualname__}"
    if name not in plugins_manager.get_timetables_plugins():
        raise DeploymentError(
            f"the timetable {name} is not registered: copy this repository's plugins/ into your "
            "Airflow's plugins folder (`airflow config get-value core plugins_folder`) and restart "
            "Airflow; see docs/own-airflow.md"
        )


def _aware(moment: datetime | None) -> datetime | None:
    """A naive bound is taken as UTC, like the DAGs' dates."""
    return moment.replace(tzinfo=moment.tzinfo or UTC) if moment else None
