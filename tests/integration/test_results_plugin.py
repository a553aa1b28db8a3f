"""The results plugin in Airflow's own API app: registered from ``plugins/``, authenticated like the UI,
reading profile rows from the real test Postgres.

The app is ``airflow.api_fastapi.app.create_app()``, what ``airflow api-server`` serves, built in
this process with the SimpleAuthManager and a user of the Viewer role; requests carry the JWT the
way the UI's iframe does, in the ``_token`` cookie. What the page and the endpoints show is
compared with the profile table, read with SQL of the test's own.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient

from include.observing.chart import BAR_COLOUR, FLAG_COLOUR, FLAG_SHADE, HEIGHT_PX, WIDTH_PX
from local_stack.postgres import PostgresServer
from local_stack.stack import REPO
from tests.png import bars, mask, pixels
from tests.profiles import create_profile_table, insert_profile, load_rows, month_days

pytestmark = pytest.mark.integration

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
VIEWER, PASSWORD = "viewer", "viewer-password"

JULY, AUGUST, SEPTEMBER, OCTOBER = (date(2020, month, 1) for month in (7, 8, 9, 10))
ROWS_FLAG = {
    "feature": "rows",
    "value": 35612,
    "low": 111703.0,
    "high": 446812.0,
    "action": "warn",
    "days": ["2020-10-10", "2020-10-11"],
}
FARE_FLAG = {"feature": "fare_amount_p50", "value": 19.5, "low": 8.0, "high": 12.5, "action": "warn"}
REFUSED_FLAG = {
    "feature": "rows",
    "value": 12,
    "low": 1000.0,
    "high": 5000.0,
    "action": "fail",
    "days": ["2020-10-20"],
}


@pytest.fixture(scope="module")
def api(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Airflow's API app with this repository's plugins, and a logged-in viewer's cookie."""
    from airflow.api_fastapi.app import create_app, purge_cached_app

    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps({VIEWER: PASSWORD}))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__CORE__AUTH_MANAGER", SIMPLE_AUTH_MANAGER)
        env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"{VIEWER}:viewer")
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        purge_cached_app()
        with TestClient(create_app()) as client:
            token = client.post("/auth/token", json={"username": VIEWER, "password": PASSWORD})
            assert token.status_code == 201, token.text
            client.cookies.set("_token", token.json()["access_token"])
            yield client
        purge_cached_app()


@pytest.fixture
def warehouse(api: TestClient, postgres: PostgresServer, pg_schema: str, monkeypatch) -> str:
    """The test's schema as the plugin's warehouse: ``postgres_default`` and ``pg_schema``."""
    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_DEFAULT", postgres.uri)
    monkeypatch.setenv("AIRFLOW_VAR_PG_SCHEMA", pg_schema)
    return pg_schema


@pytest.fixture
def profiles(warehouse: str, pg_conn) -> str:
    """Green loads in every state; yellow's table empty; no fhv table. Times are hours after T0."""
    for taxi in ("green", "yellow"):
        create_profile_table(pg_conn, warehouse, taxi)

    def green(month: date, run_id: str, staged: float, published: float | None, **values) -> None:
        insert_profile(
            pg_conn,
            warehouse,
            "green",
            month,
            run_id,
            staged_hours=staged,
            published_hours=published,
            **values,
        )

    # July: a load refused before the one that was published; the refusal is history.
    green(JULY, "july_refused", 0, None, rows_read=900, anomalies=[REFUSED_FLAG])
    green(JULY, "july", 1, 2, rows_read=3200, rows_rejected=1, anomalies=[])
    # August: never published; only refused loads.
    green(AUGUST, "august_refused", 10, None, rows_read=50, anomalies=[{**REFUSED_FLAG, "days": []}])
    # September: published, not checked for anomalies yet.
    green(SEPTEMBER, "september", 20, 21, rows_read=3300, rows_outside_month=4, anomalies=None)
    # October: published twice (the second is served, with flags), then a rerun refused.
    green(OCTOBER, "october_first", 30, 31, rows_read=3100, anomalies=[])
    green(
        OCTOBER,
        "october_second",
        40,
        41,
        rows_read=3150,
        rows_rejected=7,
        rows_outside_month=9,
        dropped_by_rule={"missing_pickup_time": 0, "no_passengers": 259},
        trips_per_day=month_days(OCTOBER, 100, skip=(11,)),
        anomalies=[ROWS_FLAG, FARE_FLAG],
    )
    green(OCTOBER, "october_refused", 50, None, rows_read=60, anomalies=[REFUSED_FLAG])
    return warehouse


def _served(pg_conn, schema_name: str) -> list[tuple]:
    """What each month serves, by the test's own SQL: the latest published profile per month."""
    return pg_conn.execute(
        f"""SELECT DISTINCT ON (source_month) to_char(source_month, 'YYYY-MM'), run_id, rows_read,
                   rows_loaded, rows_rejected, rows_outside_month, dropped_by_rule, anomalies
            FROM "{schema_name}".green_tripdata_profile WHERE published_at IS NOT NULL
            ORDER BY source_month DESC, published_at DESC"""
    ).fetchall()


def _not_published(pg_conn, schema_name: str) -> list[tuple]:
    """Unpublished loads staged after what their month serves (or of a month never published)."""
    table = f'"{schema_name}".green_tripdata_profile'
    return pg_conn.execute(
        f"""SELECT to_char(source_month, 'YYYY-MM'), run_id, rows_read, rows_loaded, rows_rejected
            FROM {table} p WHERE published_at IS NULL AND staged_at > COALESCE(
                (SELECT s.staged_at FROM {table} s WHERE s.source_month = p.source_month
                 AND s.published_at IS NOT NULL ORDER BY s.published_at DESC LIMIT 1), '-infinity')
            ORDER BY source_month DESC, staged_at DESC"""
    ).fetchall()


def _flags(anomalies: list[dict] | None) -> list[dict] | None:
    """Flags as the JSON endpoint writes them: ``days`` always present."""
    return None if anomalies is None else [{"days": [], **flag} for flag in anomalies]


def test_the_json_shows_what_each_month_serves_and_the_loads_not_published(api, profiles, pg_conn):
    response = api.get("/taxi-results/api/results")
    assert response.status_code == 200, response.text
    body = response.json()
    colours = {colour["taxi"]: colour for colour in body["colours"]}

    assert body["schema"] == profiles
    assert list(colours) == ["yellow", "green", "fhv", "fhvhv"]  # every declared family, in order
    green = colours["green"]
    assert [
        (
            m["month"],
            m["run_id"],
            m["rows_read"],
            m["rows_loaded"],
            m["rows_rejected"],
            m["rows_outside_month"],
            m["dropped_by_rule"],
            m["anomalies"],
        )
        for m in green["months"]
    ] == [(*row[:7], _flags(row[7])) for row in _served(pg_conn, profiles)]
    assert [m["run_id"] for m in green["months"]] == ["october_second", "september", "july"]
    assert [
        (m["month"], m["run_id"], m["rows_read"], m["rows_loaded"], m["rows_rejected"])
        for m in green["not_published"]
    ] == _not_published(pg_conn, profiles)
    assert [m["run_id"] for m in green["not_published"]] == ["october_refused", "august_refused"]

    october = green["months"][0]
    assert october["flagged_days"] == ["2020-10-10", "2020-10-11"]
    assert october["chart"] == "chart/green/2020-10.png"
    assert green["not_published"][0]["chart"] == "chart/green/2020-10.png?run_id=october_refused"
    assert colours["yellow"] == {
        "taxi": "yellow",
        "table": f"{profiles}.yellow_tripdata_profile",
        "table_exists": True,
        "months": [],
        "not_published": [],
    }
    assert colours["fhv"]["table_exists"] is False


def test_the_page_shows_the_same_rows_flags_and_the_chart_of_the_newest_month(
    api, profiles, pg_conn, monkeypatch
):
    monkeypatch.setenv("PGTZ", "America/New_York")  # the app's session: times still shown in UTC
    response = api.get("/taxi-results/")
    assert response.status_code == 200, response.text
    page = response.text
    rows = load_rows(page)

    served = [row for row in rows if row["data-published"] == "true"]
    assert [
        (
            row["data-month"],
            row["data-run-id"],
            row["rows-read"],
            row["rows-loaded"],
            row["rows-rejected"],
            row["rows-outside-month"],
        )
        for row in served
    ] == [
        (month, run_id, f"{read:,}", f"{loaded:,}", f"{rejected:,}", f"{outside:,}")
        for month, run_id, read, loaded, rejected, outside, *_ in _served(pg_conn, profiles)
    ]
    refused = [row for row in rows if row["data-published"] == "false"]
    assert [(row["data-month"], row["data-run-id"]) for row in refused] == [
        row[:2] for row in _not_published(pg_conn, profiles)
    ]

    october, september, july = served
    assert october["dropped"] == "missing_pickup_time: 0, no_passengers: 259"
    assert "warn anomaly: rows 35,612, expected 111,703 to 446,812; 2 days flagged" in october["anomalies"]
    assert "warn anomaly: fare_amount_p50 20, expected 8 to 12" in october["anomalies"]
    assert september["anomalies"] == "not checked yet"
    assert july["anomalies"] == "none"
    assert october["state"] == "published 2026-11-02 23:00 UTC october_second"  # T0 + 41 hours
    assert "fail anomaly: rows 12, expected 1,000 to 5,000" in refused[0]["anomalies"]
    assert "not published" in refused[0]["state"]

    assert f"<code>{profiles}.fhv_tripdata_profile</code> does not exist" in page
    assert "No month published yet." in page  # yellow's empty table
    # With nothing chosen, the chart is the newest month of the first colour that has one.
    assert '<img src="chart/green/2020-10.png"' in page
    assert "Flagged days, in red: 2020-10-10, 2020-10-11." in page


def test_a_chosen_load_is_charted_even_when_it_was_not_published(api, profiles):
    page = api.get(
        "/taxi-results/", params={"taxi": "green", "month": "2020-10", "run_id": "october_refused"}
    )
    assert page.status_code == 200
    assert '<img src="chart/green/2020-10.png?run_id=october_refused"' in page.text
    assert "Flagged days, in red: 2020-10-20." in page.text

    missing = api.get("/taxi-results/", params={"taxi": "green", "month": "2020-08"})
    assert "No published load of green 2020-08." in missing.text
    assert api.get("/taxi-results/", params={"taxi": "purple", "month": "2020-08"}).status_code == 400


def test_the_chart_marks_the_flagged_days_of_the_load_it_draws(api, profiles):
    response = api.get("/taxi-results/chart/green/2020-10.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    served = pixels(response.content)
    assert served.shape == (HEIGHT_PX, WIDTH_PX, 3)
    # Oct 10 has trips and is flagged: one red bar. Oct 11 is flagged but had no trips: shaded only.
    assert len(bars(served, FLAG_COLOUR)) == 1
    assert len(bars(served, BAR_COLOUR)) == 29
    assert mask(served, FLAG_SHADE).any()

    refused = pixels(
        api.get("/taxi-results/chart/green/2020-10.png", params={"run_id": "october_refused"}).content
    )
    assert len(bars(refused, FLAG_COLOUR)) == 1 and len(bars(refused, BAR_COLOUR)) == 30
    assert bars(refused, FLAG_COLOUR)[0][0] > bars(served, FLAG_COLOUR)[0][0], "Oct 20 lies right of Oct 10"

    unchecked = pixels(api.get("/taxi-results/chart/green/2020-09.png").content)
    assert not mask(unchecked, FLAG_COLOUR).any() and len(bars(unchecked, BAR_COLOUR)) == 30


def test_a_chart_of_a_load_that_does_not_exist_is_a_404_and_a_bad_request_a_400(api, profiles):
    never_published = api.get("/taxi-results/chart/green/2020-08.png")
    assert never_published.status_code == 404
    assert "no profile of a published load" in never_published.json()["detail"]
    assert (
        api.get("/taxi-results/chart/green/2020-08.png", params={"run_id": "august_refused"}).status_code
        == 200
    )
    assert api.get("/taxi-results/chart/fhv/2020-08.png").status_code == 404  # no fhv table at all
    assert api.get("/taxi-results/chart/purple/2020-08.png").status_code == 400
    assert "2020-13" in api.get("/taxi-results/chart/green/2020-13.png").json()["detail"]


def test_every_route_but_the_icon_needs_a_logged_in_user(api, profiles):
    anonymous, forged = TestClient(api.app), TestClient(api.app)
    forged.cookies.set("_token", "not-a-token")
    for path in ("/taxi-results/", "/taxi-results/api/results", "/taxi-results/chart/green/2020-10.png"):
        assert anonymous.get(path).status_code == 401, path
        assert forged.get(path).status_code == 403, path
    icon = anonymous.get("/taxi-results/icon.svg")
    assert icon.status_code == 200 and icon.text.startswith("<svg")
    # A bearer token (the REST API's way) is accepted too.
    bearer = {"Authorization": f"Bearer {api.cookies['_token']}"}
    assert anonymous.get("/taxi-results/api/results", headers=bearer).status_code == 200


def test_a_crafted_schema_name_is_refused_before_any_sql(api, profiles, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_PG_SCHEMA", 'ny_taxi"; DROP SCHEMA ny_taxi CASCADE; --')
    response = api.get("/taxi-results/api/results")
    assert response.status_code == 500
    assert "Variable pg_schema" in response.json()["detail"]


def test_the_plugin_is_registered_from_the_plugins_folder(api):
    response = api.get("/api/v2/plugins")
    assert response.status_code == 200, response.text
    [plugin] = [plugin for plugin in response.json()["plugins"] if plugin["name"] == "taxi_results"]
    assert plugin["source"] == "$PLUGINS_FOLDER/taxi_results.py"
    assert [(app["name"], app["url_prefix"]) for app in plugin["fastapi_apps"]] == [
        ("Taxi results", "/taxi-results")
    ]
    [view] = plugin["external_views"]
    assert (view["href"], view["url_route"], view["destination"]) == ("taxi-results/", "taxi-results", "nav")
    assert (REPO / "plugins" / "taxi_results.py").is_file()


def test_a_review_shows_beside_its_load_and_a_table_made_before_reviews_still_reads(api, profiles, pg_conn):
    table = f'"{profiles}".green_tripdata_profile'
    rejected = {
        "decision": "reject",
        "by": "ada",
        "by_id": "ada",
        "at": "2026-11-03T10:00:00+00:00",
        "reason": "truncated file",
        "timed_out": False,
        "anomalies": [REFUSED_FLAG],
        "chart": None,
    }
    approved_by_default = {**rejected, "decision": "approve", "by": None, "by_id": None, "reason": None}
    approved_by_default |= {"timed_out": True, "at": "2026-11-02T23:00:00+00:00"}
    for run_id, review in (("october_refused", rejected), ("october_second", approved_by_default)):
        pg_conn.execute(f"UPDATE {table} SET review = %s WHERE run_id = %s", (json.dumps(review), run_id))

    rows = {row["data-run-id"]: row for row in load_rows(api.get("/taxi-results/").text)}
    assert "rejected by ada 2026-11-03 10:00 UTC : truncated file" in rows["october_refused"]["state"]
    assert (
        "no answer to the review: approved by default 2026-11-02 23:00 UTC" in rows["october_second"]["state"]
    )
    assert "review" not in rows["july"]["state"]
    green = next(c for c in api.get("/taxi-results/api/results").json()["colours"] if c["taxi"] == "green")
    reviews = {load["run_id"]: load["review"] for load in green["months"] + green["not_published"]}
    assert reviews["october_refused"] == {
        "decision": "reject",
        "by": "ada",
        "at": "2026-11-03T10:00:00+00:00",
        "reason": "truncated file",
        "timed_out": False,
    }
    assert reviews["october_second"]["timed_out"] is True and reviews["july"] is None

    # A profile table made before reviews existed reads as loads without one, until its next load.
    pg_conn.execute(f"ALTER TABLE {table} DROP COLUMN review")
    assert api.get("/taxi-results/").status_code == 200
    green = next(c for c in api.get("/taxi-results/api/results").json()["colours"] if c["taxi"] == "green")
    assert {load["review"] for load in green["months"] + green["not_published"]} == {None}


def test_the_monthly_revenue_per_service_is_shown_once_the_models_built_it(api, profiles, pg_conn):
    assert api.get("/taxi-results/api/results").json()["monthly_revenue"] is None
    assert "Not built yet" in api.get("/taxi-results/").text

    # The mart's columns the view reads, as dbt's dm_monthly_zone_revenue has them.
    mart = f'"{profiles}".dm_monthly_zone_revenue'
    pg_conn.execute(
        f"CREATE TABLE {mart} (pickup_location_id bigint, revenue_month date, service_type text,"
        " trips bigint, revenue_monthly_total_amount double precision)"
    )
    rows = [
        (74, OCTOBER, "green", 120, 2100.5),
        (75, OCTOBER, "green", 80, 1300.25),
        (236, OCTOBER, "yellow", 50, 900.0),
        (74, SEPTEMBER, "green", 10, 150.0),
    ]
    with pg_conn.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {mart} VALUES (%s, %s, %s, %s, %s)", rows)

    expected_rows = pg_conn.execute(
        f"SELECT to_char(revenue_month, 'YYYY-MM'), service_type, sum(trips)::int,"
        f" sum(revenue_monthly_total_amount) FROM {mart} GROUP BY 1, 2 ORDER BY 1 DESC, 2"
    ).fetchall()
    revenue = api.get("/taxi-results/api/results").json()["monthly_revenue"]
    assert [(r["month"], r["service_type"], r["trips"], r["total_amount"]) for r in revenue] == expected_rows
    page = api.get("/taxi-results/").text
    assert 'data-service="green" data-month="2020-10"' in page and "3,401" in page  # 2100.5 + 1300.25
