"""Registers this repository's timetable, so the scheduler can deserialize the DAGs that use it."""

from airflow.plugins_manager import AirflowPlugin

from include.flows.timetables import CronDataIntervalsUntil


class NycTaxiTimetablesPlugin(AirflowPlugin):
    name = "nyc_taxi_timetables"
    timetables = [CronDataIntervalsUntil]  # noqa: RUF012 - the attribute AirflowPlugin reads
