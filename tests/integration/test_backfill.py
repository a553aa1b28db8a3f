"""Backfills of the monthly Postgres flow: which runs a backfill creates, and what they load.

``airflow backfill create`` asks the DAG's timetable for the runs between two dates
(``airflow.models.backfill._get_info_list``) and the scheduler then runs each with its data
interval. Here the same function lists the runs, and each run is executed with
``airflow dags test`` at the moment the scheduler would start it, which gives the task exactly the
backfill run's data interval (asserted below).
"""

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from local_stack.report import month_row_counts
from local_stack.tlc_server import serve_in_thread
from tests.samples import YELLOW_2021_01, read_with_pandas, two_month_mirror

pytestmark = pytest.mark.integration

UTC = timezone.utc


def backfill_runs(dag_id: str, from_date: datetime, to_date: datetime):
    """The runs ``airflow backfill create --from-date --to-date`` creates, in order."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.backfill import _get_info_list
    from airflow.serialization.serialized_objects import DagSerialization

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


def test_a_two_month_backfill_loads_one_copy_of_each_month(tmp_path, run_dag, pg_conn, pg_schema):
    server, base_url = serve_in_thread(two_month_mirror(tmp_path))
    runs = backfill_runs(
        "taxi_api_to_postgres", datetime(2020, 12, 1, tzinfo=UTC), datetime(2021, 1, 31, tzinfo=UTC)
    )
    assert [run.data_interval.start.date() for run in runs] == [date(2020, 12, 1), date(2021, 1, 1)]

    source = read_with_pandas(YELLOW_2021_01)
    kept = int((source.passenger_count != 0).sum())
    expected = {date(2020, 12, 1): kept, date(2021, 1, 1): kept}
    try:
        for _ in range(2):  # a backfill run again (reprocess) must not duplicate
            for run in runs:
                result = run_dag(
                    "taxi_api_to_postgres",
                    {"taxi": "yellow"},
                    logical_date=run.run_after.isoformat(),
                    AIRFLOW_VAR_TLC_BASE_URL=base_url,
                )
                assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            assert month_row_counts(pg_conn, pg_schema, "yellow_taxi_trips") == expected
    finally:
        server.shutdown()
