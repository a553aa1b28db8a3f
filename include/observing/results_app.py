"""The results view: a FastAPI app that the api-server mounts at ``/taxi-results`` (every link in it is
relative, so it works under any prefix).

``plugins/taxi_results.py`` registers it (and its entry in the UI's navigation). It shows, per
colour, each month the warehouse serves (rows read, kept, rejected, anomaly flags), the loads that
were staged but not published, and the trips-per-day chart of a chosen month, all read from the
profile tables (``include.observing.results``) through the connection ``postgres_default`` and the
Variable ``pg_schema``, like the DAGs.

Airflow does not authenticate plugin apps (a mounted app inherits none of the core API's
dependencies), so every route but the icon requires what the UI's own run pages require: an
authenticated user (the UI's ``_token`` cookie or a bearer token) allowed to read DAG runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import timezone
from pathlib import Path
from typing import Annotated, Any

import psycopg
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from include.destinations.postgres import DEFAULT_SCHEMA, checked_identifier
from include.observing.results import (
    ColourResults,
    MonthLoad,
    monthly_revenue,
    read_profile,
    read_results,
)
from include.source.families import TAXIS
from include.source.months import Month

POSTGRES_CONN_ID = "postgres_default"

ICON = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#2e8b57"
 stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M3 3v18h18"/>
<rect x="7" y="12" width="3" height="6"/><rect x="12" y="7" width="3" height="11"/>
<rect x="17" y="10" width="3" height="8"/></svg>"""

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["number"] = lambda value: "-" if value is None else f"{value:,.0f}"
# The session's time zone is the server's: say UTC and mean it.
_templates.filters["utc"] = lambda moment: f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class Warehouse:
    """The schema to read and an open connection to the warehouse, for one request."""

    conn: psycopg.Connection
    schema_name: str


def warehouse() -> Iterator[Warehouse]:
    """Connect through ``postgres_default``; the schema comes from the Variable ``pg_schema``."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import Variable

    try:
        schema_name = checked_identifier(
            Variable.get("pg_schema", default=DEFAULT_SCHEMA), "Variable pg_schema"
        )
    except ValueError as error:
        raise HTTPException(500, str(error)) from error
    with PostgresHook(POSTGRES_CONN_ID).get_conn() as conn:
        yield Warehouse(conn, schema_name)


WarehouseDep = Annotated[Warehouse, Depends(warehouse)]


def _month(taxi: str, month: str) -> Month:
    """The requested colour and month, or a 400 naming what is wrong."""
    if taxi not in TAXIS:
        raise HTTPException(400, f"taxi {taxi!r} is not one of: {', '.join(TAXIS)}")
    try:
        return Month.parse(month)
    except ValueError as error:
        raise HTTPException(400, str(error)) from error


def chart_url(profile: MonthLoad) -> str:
    """Relative to the app's root, so it works under any base URL or proxy prefix."""
    query = "" if profile.published else f"?run_id={profile.run_id}"
    return f"chart/{profile.taxi}/{profile.month}.png{query}"


def profile_json(load: MonthLoad) -> dict[str, Any]:
    """A load as the JSON API answers it: its profile's fields, and what became of it."""
    return {
        **{name: value for name, value in asdict(load.profile).items() if name != "taxi"},
        "dropped_by_rule": load.dropped_by_rule,
        "run_id": load.run_id,
        "staged_at": load.staged_at.isoformat(),
        "published_at": load.published_at.isoformat() if load.published_at else None,
        "anomalies": None
        if load.anomalies is None
        else [{**asdict(flag), "days": [day.isoformat() for day in flag.days]} for flag in load.anomalies],
        "flagged_days": [day.isoformat() for day in load.flagged_days],
        "review": None if load.review is None else {**asdict(load.review), "at": load.review.at.isoformat()},
        "chart": chart_url(load),
    }


def _chosen(
    results: list[ColourResults], taxi: str | None, month: str | None, run_id: str | None
) -> MonthLoad | None:
    """The load the page charts: the one asked for, else the newest month of the first colour with one."""
    for colour in results:
        for profile in colour.months + colour.not_published:
            if taxi is None and month is None:
                if profile.published:
                    return profile
            elif (profile.taxi, str(profile.month)) == (taxi, month) and (
                profile.run_id == run_id if run_id else profile.published
            ):
                return profile
    return None


router = APIRouter(dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))])


@router.get("/", response_class=HTMLResponse)
def results_page(
    warehouse: WarehouseDep,
    taxi: Annotated[str | None, Query()] = None,
    month: Annotated[str | None, Query()] = None,
    run_id: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """Every colour's months and unpublished loads, and the chart of one month."""
    if taxi is not None or month is not None:
        _month(taxi or "", month or "")
    results = read_results(warehouse.conn, warehouse.schema_name)
    page = _templates.get_template("results.html").render(
        schema_name=warehouse.schema_name,
        results=results,
        revenue=monthly_revenue(warehouse.conn, warehouse.schema_name),
        chosen=_chosen(results, taxi, month, run_id),
        asked=(taxi, month, run_id) if taxi else None,
        chart_url=chart_url,
    )
    return HTMLResponse(page)


@router.get("/api/results")
def results_json(warehouse: WarehouseDep) -> dict[str, Any]:
    """The same as the page, as JSON."""
    return {
        "schema": warehouse.schema_name,
        "colours": [
            {
                "taxi": colour.taxi,
                "table": colour.table,
                "table_exists": colour.table_exists,
                "months": [profile_json(profile) for profile in colour.months],
                "not_published": [profile_json(profile) for profile in colour.not_published],
            }
            for colour in read_results(warehouse.conn, warehouse.schema_name)
        ],
        "monthly_revenue": None
        if (revenue := monthly_revenue(warehouse.conn, warehouse.schema_name)) is None
        else [{**asdict(row), "month": str(row.month)} for row in revenue],
    }


@router.get("/chart/{taxi}/{month}.png", response_class=Response)
def month_chart(
    warehouse: WarehouseDep, taxi: str, month: str, run_id: Annotated[str | None, Query()] = None
) -> Response:
    """The trips-per-day chart of the month's served load (or of ``run_id``), flagged days marked."""
    profile = read_profile(warehouse.conn, warehouse.schema_name, taxi, _month(taxi, month), run_id)
    if profile is None:
        which = f"run {run_id!r}" if run_id else "a published load"
        raise HTTPException(404, f"{taxi} {month} has no profile of {which} in {warehouse.schema_name}")
    return Response(profile.chart_png(), media_type="image/png", headers={"Cache-Control": "no-cache"})


app = FastAPI(title="NYC taxi results", docs_url=None, redoc_url=None, openapi_url=None)
app.include_router(router)


@app.get("/icon.svg", include_in_schema=False)
def icon() -> Response:
    """The navigation icon: public, like the UI's own static files."""
    return Response(ICON, media_type="image/svg+xml")
