from datetime import datetime, timezone

from airflow.timetables.base import DataInterval, TimeRestriction

from include.flows.defaults import daily_schedule, monthly_schedule
from include.source.sources import SourceSettings

UTC = timezone.utc


def scheduled_intervals(timetable, start: datetime, now_limit: int = 100) -> list[DataInterval]:
    """Every data interval the scheduler would create with catch-up from ``start``."""
    restriction = TimeRestriction(earliest=start.replace(tzinfo=UTC), latest=None, catchup=True)
    found, last = [], None
    for _ in range(now_limit):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None:
            break
        found.append(info.data_interval)
        last = info.data_interval
    return found


def test_the_monthly_schedule_ends_with_the_source_s_last_month():
    settings = SourceSettings.from_values("mirror", "2021-05")
    intervals = scheduled_intervals(monthly_schedule(settings), settings.start_date)
    assert [(i.start.date().isoformat(), i.end.date().isoformat()) for i in intervals] == [
        ("2021-05-01", "2021-06-01"),
        ("2021-06-01", "2021-07-01"),
        ("2021-07-01", "2021-08-01"),
    ]


def test_a_live_source_s_schedule_does_not_end():
    settings = SourceSettings.from_values("tlc", "2025-01")
    intervals = scheduled_intervals(monthly_schedule(settings), settings.start_date, now_limit=30)
    # As many as asked for: the scheduler creates each once its month is over, for ever.
    assert len(intervals) == 30
    assert intervals[-1].start == datetime(2027, 6, 1, tzinfo=UTC)


def test_the_daily_schedule_covers_every_day_of_the_last_month_at_midnight():
    settings = SourceSettings.from_values("mirror", "2021-07")
    intervals = scheduled_intervals(daily_schedule(settings), settings.start_date)
    assert len(intervals) == 31
    assert intervals[0].start == datetime(2021, 7, 1, tzinfo=UTC)
    assert intervals[-1] == DataInterval(datetime(2021, 7, 31, tzinfo=UTC), datetime(2021, 8, 1, tzinfo=UTC))


def test_the_bound_survives_serialization_as_the_scheduler_reads_it():
    from include.flows.timetables import CronDataIntervalsUntil

    timetable = monthly_schedule(SourceSettings.from_values("mirror"))
    restored = CronDataIntervalsUntil.deserialize(timetable.serialize())
    assert restored.last_start == datetime(2021, 7, 1, tzinfo=UTC)
    assert restored.summary == "0 0 1 * * until 2021-07-01"
    # A manual run still gets the month before it, at any date: the bound is the schedule's only.
    manual = restored.infer_manual_data_interval(run_after=datetime(2026, 2, 3, tzinfo=UTC))
    assert (manual.start, manual.end) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))


def test_a_backfill_from_before_the_first_month_gets_only_the_months_of_the_schedule():
    # A backfill asks the timetable for the intervals of its own range, whatever the start_date.
    settings = SourceSettings.from_values("mirror", "2020-11", "2020-12")
    monthly = scheduled_intervals(monthly_schedule(settings), datetime(2020, 9, 1))
    assert [i.start.date().isoformat() for i in monthly] == ["2020-11-01", "2020-12-01"]
    daily = scheduled_intervals(daily_schedule(settings), datetime(2020, 10, 30))
    assert (daily[0].start, len(daily)) == (datetime(2020, 11, 1, tzinfo=UTC), 61)


def test_both_bounds_survive_serialization():
    from include.flows.timetables import CronDataIntervalsUntil

    timetable = monthly_schedule(SourceSettings.from_values("mirror", "2020-11", "2020-12"))
    restored = CronDataIntervalsUntil.deserialize(timetable.serialize())
    assert (restored.first_start, restored.last_start) == (
        datetime(2020, 11, 1, tzinfo=UTC),
        datetime(2020, 12, 1, tzinfo=UTC),
    )
