"""Backfills of the monthly Postgres flow: which runs a backfill creates, and what they load.

``airflow backfill create`` asks the DAG's timetable for the runs between two dates
(``airflow.models.backfill._get_info_list``) and the scheduler then runs each with its data
interval. Here the same function lists the runs, and each run is executed with
``airflow dags test`` at the moment the scheduler would start it, which gives the task exactly the
backfill run's data interval (asserted below). tests/scheduler runs backfills under a real scheduler.
"""

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from local_stack import expected
from local_stack.report import month_row_counts

pytestmark = pytest.mark.integration

UTC = timezone.utc


def backfill_runs(dag_id: str, from_date: datetime, to_date: datetime, **environment: str):
    """The runs ``airflow backfill create --from-date --to-date`` creates, in order."""
    import os
    from unittest import mock

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.backfill import _get_info_list
    from airflow.serialization.serialized_objects import DagSerialization

    with mock.patch.dict(os.environ, environment):  # the source's bounds are read at parse time
        dag = DagBag(dag_folder=Path(__file__).resolve().parents[2] / "dags").dags[dag_id]
    serialized = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    runs = _get_info_list(from_date=from_date, to_date=to_date, reverse=False, dag=serialized)
    for run in runs:  # dags test at run_after gets the same interval as the backfill run
        assert serialized.timetable.infer_manual_data_interval(run_after=run.run_after) == run.data_interval
    return runs


def test_the_q4_2020_backfill_runs_october_november_and_december_once_each():
    runs = backfill_runs(
        "taxi_api_to_postgres", datetime(2020, 10, 1, tzinfo=UTC), datetime(2020, 12, 31, tzinfo=UTC)
    )
    intervals = [(run.data_interval.start.date(), run.data_interval.end.date()) for run in runs]
    assert intervals == [
        (date(2020, 10, 1), date(2020, 11, 1)),
        (date(2020, 11, 1), date(2020, 12, 1)),
        (date(2020, 12, 1), date(2021, 1, 1)),
    ]


def test_a_backfill_past_the_source_s_last_month_stops_at_it():
    runs = backfill_runs(
        "taxi_api_to_postgres",
        datetime(2021, 5, 1, tzinfo=UTC),
        datetime(2021, 12, 31, tzinfo=UTC),
        AIRFLOW_VAR_TAXI_SOURCE="mirror",
    )
    assert [run.data_interval.start.date() for run in runs] == [
        date(2021, 5, 1),
        date(2021, 6, 1),
        date(2021, 7, 1),
    ]


def test_a_backfill_of_a_month_s_days_exports_each_day_at_midnight():
    runs = backfill_runs(
        "taxi_daily_trips_to_gcs", datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 1, 31, tzinfo=UTC)
    )
    starts = [run.data_interval.start for run in runs]
    assert len(starts) == 31
    assert starts[0] == datetime(2021, 1, 1, tzinfo=UTC) and starts[-1] == datetime(2021, 1, 31, tzinfo=UTC)


def test_a_two_month_backfill_loads_one_copy_of_each_family_and_month(
    run_dag, pg_conn, pg_schema, local_mirror
):
    folder, url = local_mirror
    runs = backfill_runs(
        "taxi_api_to_postgres", datetime(2020, 11, 1, tzinfo=UTC), datetime(2020, 12, 31, tzinfo=UTC)
    )
    assert [run.data_interval.start.date() for run in runs] == [date(2020, 11, 1), date(2020, 12, 1)]
    wanted = {
        taxi: {
            date(2020, m, 1): expected.rows(expected.mirror_file(folder, taxi, f"2020-{m}")) for m in (11, 12)
        }
        for taxi in ("yellow", "green", "fhv")
    }
    for _ in range(2):  # a backfill run again (reprocess) must not duplicate
        for run in runs:
            # A backfill sends no conf: the params' defaults (every family) apply.
            result = run_dag(
                "taxi_api_to_postgres",
                {},
                logical_date=run.run_after.isoformat(),
                AIRFLOW_VAR_MIRROR_BASE_URL=url,
            )
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        for taxi, counts in wanted.items():
            assert month_row_counts(pg_conn, pg_schema, f"{taxi}_tripdata") == counts
