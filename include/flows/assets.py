"""The assets the DAGs publish and consume: Airflow 3's asset-aware scheduling across DAGs."""

from __future__ import annotations

import os

from airflow.sdk import Asset, AssetWatcher

from include.source.sources import SourceSettings

# The taxi Parquet in GCS. Each event's extra names what was written: taxi, month, bucket, objects.
TAXI_PARQUET = Asset(name="nyc_taxi_parquet", group="nyc_taxi")

# How often the watcher asks the source unless AIRFLOW_VAR_WATCH_SOURCE_SECONDS says otherwise:
# the TLC publishes monthly and corrects rarely; each poll is one request per family and month.
DEFAULT_WATCH_SECONDS = 6 * 3600


def watching_source(environ: os._Environ | dict[str, str] = os.environ) -> bool:
    """Whether the watcher is on: the environment variable AIRFLOW_VAR_WATCH_SOURCE, off by default."""
    return (environ.get("AIRFLOW_VAR_WATCH_SOURCE") or "off").strip().lower() in ("on", "true", "1", "yes")


def source_files(settings: SourceSettings, environ: os._Environ | dict[str, str] = os.environ) -> Asset:
    """The source's files in the bounds, with the watcher that emits an event when one appears or
    changes (``include.source.watch``) if AIRFLOW_VAR_WATCH_SOURCE is on.

    Read when the DAG file is parsed, from the environment only, like the schedules' bounds: the
    watcher's arguments are part of the DAG's shape. Each event's extra has ``payload``: the
    change, taxi, month, url and the new validators (etag, last_modified, size).
    """
    from include.source.watch import SourceChangeTrigger

    watchers = []
    if watching_source(environ):
        source = settings.source
        base_url = environ.get(f"AIRFLOW_VAR_{source.base_url_variable.upper()}") or source.default_base_url
        interval = float(environ.get("AIRFLOW_VAR_WATCH_SOURCE_SECONDS") or DEFAULT_WATCH_SECONDS)
        trigger = SourceChangeTrigger(
            source.name,
            str(settings.first_month),
            str(settings.last_month) if settings.last_month else None,
            base_url,
            interval,
        )
        watchers.append(AssetWatcher(name="taxi_source_watcher", trigger=trigger))
    return Asset(name="nyc_taxi_source_files", group="nyc_taxi", watchers=watchers)
