"""A data-interval timetable that stops: no run for an interval after the source's last one.

A DAG's ``end_date`` would stop the schedule too, but Airflow also creates no task for a run whose
logical date is after it, so every manual run of a finished archive (``airflow dags test`` gives
"now" as the logical date) would succeed having run nothing. Bounding the timetable instead stops
the schedule and leaves manual runs alone. Registered by ``plugins/nyc_taxi_timetables.py``, as
Airflow requires of custom timetables so the scheduler can deserialize them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable
from pendulum import UTC


class CronDataIntervalsUntil(CronDataIntervalTimetable):
    """``CronDataIntervalTimetable`` whose last run is the interval starting at ``last_start``."""

    def __init__(self, cron: str, last_start: datetime | None, timezone: str = "UTC") -> None:
        super().__init__(cron, timezone)
        self.last_start = last_start.replace(tzinfo=last_start.tzinfo or UTC) if last_start else None

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
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
        return {**super().serialize(), "last_start": self.last_start.isoformat() if self.last_start else None}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> CronDataIntervalsUntil:
        base = CronDataIntervalTimetable.deserialize(data)
        last = data.get("last_start")
        return cls(base._expression, datetime.fromisoformat(last) if last else None, base._timezone)
