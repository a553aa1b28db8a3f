"""The "Taxi results" view: the results app (``include/observing/results_app.py``) mounted in the
api-server at ``/taxi-results``, and an entry in the UI's navigation that shows it inside the UI.

Airflow imports every file of ``plugins/`` in every component, task runs included, so this one
imports nothing heavy: the app (FastAPI routes, psycopg, matplotlib on demand) is imported only
when the api-server asks the plugin for its apps.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/taxi-results"


class TaxiResultsPlugin(AirflowPlugin):
    name = "taxi_results"
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Taxi results",
            # Relative, without a leading slash: resolved against the UI's base URL.
            "href": f"{URL_PREFIX.lstrip('/')}/",
            "icon": f"{URL_PREFIX.lstrip('/')}/icon.svg",
            # Shown inside the UI, at /plugin/taxi-results, as a top-level button of the navigation.
            "url_route": "taxi-results",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        from include.observing.results_app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "Taxi results"}]
