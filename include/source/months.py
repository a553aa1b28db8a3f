"""Which month a run processes, decided from the run's data interval or its params, never the clock.

Airflow 3 gives manual runs no logical date unless one is asked for, and a scheduled run of a
monthly ``CronDataIntervalTimetable`` covers ``[first of month, first of next month)``. A task that
called ``now()`` would load a different month when retried or backfilled; deriving the month from
the interval (or an explicit ``month`` param) makes every rerun and backfill load the same data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from include.errors import InvalidParamsError

_MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month, written ``YYYY-MM`` as in the TLC file names."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse ``YYYY-MM``; the error names the bad value and the expected form."""
        match = _MONTH_PATTERN.match(text.strip()) if isinstance(text, str) else None
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise InvalidParamsError(f"month {text!r} is not a month in the form YYYY-MM (e.g. 2021-01)")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, moment: date | datetime) -> Month:
        return cls(moment.year, moment.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date.fromordinal(self.next.first_day.toordinal() - 1)

    @property
    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def plus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def minus(self, months: int) -> Month:
        return self.plus(-months)

    @property
    def start(self) -> datetime:
        """Midnight of the first day: the inclusive lower bound of the month's pickups."""
        return datetime(self.year, self.month, 1)

    @property
    def end(self) -> datetime:
        """Midnight of the next month's first day: the exclusive upper bound."""
        return self.next.start

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def resolve_month(month_param: str | None, data_interval_start: datetime | None) -> Month:
    """The month a run loads: the ``month`` param if given, else the month its data interval starts in.

    Scheduled and backfill runs of a monthly data-interval timetable start their interval on the
    first of the month they cover. A manual run without a logical date has no interval, so it must
    name the month.
    """
    if month_param:
        return Month.parse(month_param)
    if data_interval_start is None:
        raise InvalidParamsError(
            "this run has no data interval (a manual run without a logical date): "
            'pass the month to load as the \'month\' param, e.g. {"month": "2021-01"}'
        )
    return Month.of(data_interval_start)


def resolve_day(day_param: str | None, data_interval_start: datetime | None) -> date:
    """The day a daily run exports: the ``day`` param if given, else the day its interval starts."""
    if day_param:
        try:
            return date.fromisoformat(day_param)
        except ValueError:
            raise InvalidParamsError(f"day {day_param!r} is not a date in the form YYYY-MM-DD") from None
    if data_interval_start is None:
        raise InvalidParamsError(
            "this run has no data interval (a manual run without a logical date): "
            'pass the day to export as the \'day\' param, e.g. {"day": "2021-01-01"}'
        )
    return data_interval_start.date()
