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


VALIDATORS = ("etag", "last_modified", "size")


def changes_of(events: Iterable[tuple[Mapping[str, Any] | None, str]]) -> list[dict[str, Any]]:
    """The changes named by ``(extra, timestamp)`` of each event, oldest first: the watcher's
    payload, or the extra itself of an event made by hand, which names no version: its time
    stands for one, so each such event is a reload of its own."""
    changes = []
    for extra, timestamp in events:
        change = dict((extra or {}).get("payload", extra) or {})
        if change.get("taxi") in TAXIS and change.get("month"):
            if not any(change.get(key) for key in VALIDATORS):
                change["requested_at"] = timestamp
            changes.append(change)
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
            [taxi, *(by_taxi[taxi].get(key) for key in ("url", *VALIDATORS, "requested_at"))]
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
