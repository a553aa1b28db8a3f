"""Profile rows as the loads write them (``{schema}.{taxi}_tripdata_profile``), for the results tests.

The tests create the tables with the loads' own DDL (``include.destinations.postgres.PROFILE_DDL``) and insert
the rows the results view must show.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

import psycopg
from psycopg import sql

from include.destinations.postgres import PROFILE_DDL

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)


def create_profile_table(conn: psycopg.Connection, schema_name: str, taxi: str) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema_name)))
    conn.execute(sql.SQL(PROFILE_DDL).format(table=sql.Identifier(schema_name, f"{taxi}_tripdata_profile")))


def month_days(month: date, trips: int, skip: tuple[int, ...] = ()) -> dict[str, int]:
    """``trips`` trips on every day of ``month`` but the days of the month in ``skip``."""
    days, day = {}, month
    while day.month == month.month:
        if day.day not in skip:
            days[day.isoformat()] = trips + day.day  # a different count each day
        day += timedelta(days=1)
    return days


def insert_profile(
    conn: psycopg.Connection,
    schema_name: str,
    taxi: str,
    month: date,
    run_id: str,
    *,
    staged_hours: float,
    published_hours: float | None,
    rows_read: int,
    rows_rejected: int = 0,
    rows_outside_month: int = 0,
    dropped_by_rule: dict[str, int] | None = None,
    trips_per_day: dict[str, int] | None = None,
    anomalies: list[dict[str, Any]] | None = None,
) -> None:
    """One profile row; times are hours after ``T0``; rows loaded = the trips per day's sum."""
    trips = trips_per_day if trips_per_day is not None else month_days(month, 100)
    dropped = {"missing_pickup_time": 0, "no_passengers": 3} if dropped_by_rule is None else dropped_by_rule
    query = sql.SQL(
        "INSERT INTO {table} (source_month, run_id, source_url, staged_at, published_at, rows_read,"
        " rows_loaded, rows_rejected, rows_outside_month, dropped_by_rule, null_fraction, trips_per_day,"
        " quantiles, anomalies) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    ).format(table=sql.Identifier(schema_name, f"{taxi}_tripdata_profile"))
    conn.execute(
        query,
        (
            month,
            run_id,
            f"http://tlc.test/{taxi}/{taxi}_tripdata_{month:%Y-%m}.csv.gz",
            T0 + timedelta(hours=staged_hours),
            None if published_hours is None else T0 + timedelta(hours=published_hours),
            rows_read,
            sum(trips.values()),
            rows_rejected,
            rows_outside_month,
            json.dumps(dropped),
            json.dumps({"passenger_count": 0.035}),
            json.dumps(trips),
            json.dumps({"fare_amount": {"p05": 3.5, "p50": 9.0, "p95": 38.0}}),
            None if anomalies is None else json.dumps(anomalies),
        ),
    )


class LoadRows(HTMLParser):
    """The results page's load rows: each ``<tr class="load">``'s data attributes and cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self._cell: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "tr" and attributes.get("class") == "load":
            data = {name: value or "" for name, value in attributes.items() if name.startswith("data-")}
            self.rows.append(data)
        elif tag == "td" and self.rows and self._cell is None:
            self._cell, self._text = (attributes.get("class") or "").split()[-1], []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1][self._cell] = " ".join(" ".join(self._text).split())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)


def load_rows(page: str) -> list[dict[str, str]]:
    parser = LoadRows()
    parser.feed(page)
    return parser.rows
