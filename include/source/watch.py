"""Watch the source: an asset watcher's trigger that notices a month's file appear or change.

``SourceChangeTrigger`` runs in the triggerer. Every ``interval`` seconds it asks the source, with
one conditional HEAD per family and month in the configured bounds (``If-None-Match`` /
``If-Modified-Since``: an unchanged file costs a 304 and no body), and emits one event per file
that appeared or changed, its payload naming the taxi, month, URL and the new validators (ETag,
Last-Modified, size). The asset it watches, ``nyc_taxi_source_files``
(``include.flows.assets.source_files``), schedules ``taxi_source_changes``, which reloads exactly
those months.

What it knows about each file (its validators, or that it was absent) is kept in the watched
asset's state store (Airflow 3.3's ``asset_state_store``, in the metadata database), one key per
family: a restarted triggerer starts from there, so it neither misses a change made while it was
down nor announces one twice (see ``SETTLE_SECONDS``). The first time a file is asked about, it is
only recorded: what the source had before the watcher ran is the scheduled runs' to load.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from include.source.months import Month

if TYPE_CHECKING:
    import httpx

    # Imported where used: the DAG file that builds this trigger must not import requests.
    from include.source.download import FileVersion
    from include.source.sources import SourceSettings

# How long after emitting its events the watcher records the new validators: the triggerer writes
# events to the metadata database about once a second, so by then they are stored. A restart in
# between announces the change again, which the reload's run id absorbs (taxi_source_changes).
SETTLE_SECONDS = 5.0
# Requests in flight at once: polite to the source, quick enough for hundreds of months.
CONCURRENT_REQUESTS = 4

# What a file was when last asked: its validators, None when it was absent (HTTP 404).
Known = dict[str, Any] | None
Change = Literal["first_seen", "unchanged", "new", "changed", "gone", "awaited", "unreachable"]
ANNOUNCED: frozenset[str] = frozenset({"new", "changed"})


@dataclass(frozen=True)
class Answer:
    """What the source said about one file: ``present`` (with its version), ``not_modified`` (304),
    ``absent`` (404) or ``unreachable`` (a network error or any other status: ask again next time)."""

    status: Literal["present", "not_modified", "absent", "unreachable"]
    version: FileVersion | None = None
    detail: str = ""


def version_of(known: Known) -> FileVersion | None:
    from include.source.download import FileVersion

    return FileVersion(**known) if known else None


async def ask(client: httpx.AsyncClient, url: str, known: Known) -> Answer:
    """One HEAD for ``url``, conditional on the version last seen (if any)."""
    import httpx

    from include.source.download import FileVersion

    version = version_of(known)
    headers = version.conditional_headers() if version else {}
    try:
        response = await client.head(url, headers=headers)
    except httpx.HTTPError as error:
        return Answer("unreachable", detail=f"{type(error).__name__}: {error}")
    if response.status_code == 304:
        return Answer("not_modified")
    if response.status_code == 404:
        return Answer("absent")
    if response.status_code != 200:
        return Answer("unreachable", detail=f"HTTP {response.status_code}")
    size = response.headers.get("Content-Length")
    return Answer(
        "present",
        FileVersion(
            response.headers.get("ETag"), response.headers.get("Last-Modified"), int(size) if size else None
        ),
    )


def decide(asked_before: bool, known: Known, answer: Answer, awaited: bool = False) -> tuple[Change, Known]:
    """What an answer means, and what to remember about the file from now on.

    ``asked_before`` is False for a file never asked about (it is recorded, not announced).
    ``awaited``: a scheduled run may still be waiting for this month (a live source's latest
    months), so its first appearance is that run's to load, not the watcher's.
    """
    if answer.status == "unreachable":
        return "unreachable", known
    if answer.status == "not_modified":
        return "unchanged", known
    if answer.status == "absent":
        if not asked_before:
            return "first_seen", None
        return ("unchanged" if known is None else "gone"), None
    current = asdict(answer.version)
    if not asked_before:
        return "first_seen", current
    if known is None:
        return ("awaited" if awaited else "new"), current
    # A server that ignores conditional requests answers 200 for an unchanged file too.
    return ("unchanged" if current == known else "changed"), current


def watched_files(settings: SourceSettings, base_url: str, today: date) -> list[tuple[str, Month, str]]:
    """``(taxi, month, url)`` of every family's months in the bounds, up to the latest the source can have."""
    latest = settings.latest_month(today)
    files = []
    for taxi, first in settings.source.first_months.items():
        month = max(first, settings.first_month)
        while month <= latest:
            files.append((taxi, month, settings.source.url(base_url, taxi, month)))
            month = month.next
    return files


class SourceChangeTrigger(BaseEventTrigger):
    """Poll the source's files in the bounds every ``interval`` seconds; emit an event per file that
    appeared or changed. The arguments are fixed when the DAG file is parsed (like the schedules'
    bounds), so changing them makes a new watcher; its knowledge stays with the asset."""

    def __init__(
        self,
        source: str,
        first_month: str,
        last_month: str | None,
        base_url: str,
        interval: float,
    ):
        super().__init__()
        self.source, self.first_month, self.last_month = source, first_month, last_month
        self.base_url, self.interval = base_url, interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "include.source.watch.SourceChangeTrigger",
            {
                "source": self.source,
                "first_month": self.first_month,
                "last_month": self.last_month,
                "base_url": self.base_url,
                "interval": self.interval,
            },
        )

    @property
    def settings(self) -> SourceSettings:
        from include.source.sources import SourceSettings

        return SourceSettings.from_values(self.source, self.first_month, self.last_month)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        settings = self.settings
        known = await self._load(settings.source.first_months)
        async with httpx.AsyncClient(follow_redirects=True, timeout=30) as client:
            while True:
                events, known_now = await self.poll(
                    client, settings, known, datetime.now(timezone.utc).date()
                )
                for payload in events:
                    self.log.info("%s %s %s: %s", *(payload[k] for k in ("change", "taxi", "month", "url")))
                    yield TriggerEvent(payload)
                if known_now != known:
                    if events:
                        await asyncio.sleep(SETTLE_SECONDS)
                    await self._save(known, known_now)
                    known = known_now
                await asyncio.sleep(self.interval)

    async def poll(
        self,
        client: httpx.AsyncClient,
        settings: SourceSettings,
        known: dict[str, dict[str, Known]],
        today: date,
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Known]]]:
        """One round of questions: the events to emit, and what is known afterwards."""
        files = watched_files(settings, self.base_url, today)
        limit = asyncio.Semaphore(CONCURRENT_REQUESTS)

        async def asked(taxi: str, url: str) -> Answer:
            async with limit:
                return await ask(client, url, known.get(taxi, {}).get(url))

        answers = await asyncio.gather(*(asked(taxi, url) for taxi, _, url in files))
        updated = {taxi: dict(versions) for taxi, versions in known.items()}
        events, counts = [], {}
        for (taxi, month, url), answer in zip(files, answers, strict=True):
            family = known.get(taxi, {})
            change, now = decide(
                url in family, family.get(url), answer, settings.source.may_still_appear(month, today)
            )
            counts[change] = counts.get(change, 0) + 1
            if change == "unreachable":  # nothing learnt: not even that it was asked
                self.log.warning("could not ask %s (%s); asking again next time", url, answer.detail)
                continue
            updated.setdefault(taxi, {})[url] = now
            if change in ANNOUNCED:
                previous = family.get(url)
                events.append(
                    {
                        "change": change,
                        "taxi": taxi,
                        "month": str(month),
                        "url": url,
                        **now,
                        "previous": previous,
                    }
                )
        self.log.info("asked %d file(s) of %s: %s", len(files), settings.source.name, counts)
        return events, updated

    # --- what is known, in the watched asset's state store (one key per family) -----------------

    async def _load(self, taxis) -> dict[str, dict[str, Known]]:
        if self.asset_state_store is None:  # run outside a triggerer (a test): start from nothing
            return {}
        return {
            taxi: dict(await self.asset_state_store.aget(f"versions:{taxi}", default={}) or {})
            for taxi in taxis
        }

    async def _save(self, before: dict[str, dict[str, Known]], after: dict[str, dict[str, Known]]) -> None:
        if self.asset_state_store is None:
            return
        for taxi, versions in after.items():
            if versions != before.get(taxi):
                await self.asset_state_store.aset(f"versions:{taxi}", versions)
