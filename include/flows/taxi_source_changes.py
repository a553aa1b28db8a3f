"""The task bodies of ``taxi_source_changes``: from the source's change events to one reload per month.

Each asset event of ``nyc_taxi_source_files`` names one family's month whose file appeared or
changed (the watcher's payload, ``include.source.watch``), or, made by hand (the UI's or the REST
API's "create asset event"), just ``{"taxi": ..., "month": ...}``. They become one reload per
month: a run of each monthly DAG with ``{"month": ..., "taxis": [...]}``, whose run id names the
files' versions. An event seen twice (a triggerer restarted before it recorded what it announced,
or an event read by two runs) gives the same run id, which is not run again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from include.source.families import TAXIS

RUN_ID_PREFIX = "source_change"


def changes_of(extras: Iterable[Mapping[str, Any] | None]) -> list[dict[str, Any]]:
    """The changes the events name, oldest first: the watcher's payload, or an event's extra itself."""
    changes = []
    for extra in extras:
        change = (extra or {}).get("payload", extra) or {}
        if change.get("taxi") in TAXIS and change.get("month"):
            changes.append(dict(change))
    return changes


def reloads(changes: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One reload per month, its families in the declared order, for ``TriggerDagRunOperator.expand_kwargs``.

    The run id is the month and a digest of each family's newest version, so the same change
    announced twice is one run, and a file corrected again later is another.
    """
    newest: dict[str, dict[str, Mapping[str, Any]]] = {}
    for change in changes:  # oldest first: a later event of the same file wins
        newest.setdefault(str(change["month"]), {})[change["taxi"]] = change
    planned = []
    for month, by_taxi in sorted(newest.items()):
        taxis = [taxi for taxi in TAXIS if taxi in by_taxi]
        versions = [
            [taxi, *(by_taxi[taxi].get(key) for key in ("url", "etag", "last_modified", "size"))]
            for taxi in taxis
        ]
        digest = hashlib.sha256(json.dumps(versions).encode()).hexdigest()[:12]
        planned.append(
            {
                "trigger_run_id": f"{RUN_ID_PREFIX}__{month}__{digest}",
                "conf": {"month": month, "taxis": taxis},
            }
        )
    return planned
