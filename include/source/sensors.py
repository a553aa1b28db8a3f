"""Wait for a month's file to be published, deferred, so waiting holds no worker slot.

The TLC publishes a month about two months after it ends, so the run of the latest month usually
starts before its file exists: that is a file not published *yet*, worth waiting for. The wait
runs in the triggerer (one coroutine asking the source every ``source_poke_seconds``, 30 minutes
unless that Variable says otherwise), and gives up after the Variable ``source_wait_seconds``,
failing with the URL. On a fixed archive (the
course's mirror), or for a month long past, a missing file will never come, so it fails at once.

Our own operator and trigger rather than the HTTP provider's ``HttpSensor``: its trigger sends
GET (the whole file, for a published month), needs an HTTP connection per source, and on a
server error retries in a loop without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from include.errors import SourceNotPublishedError

log = logging.getLogger(__name__)

# How long a run waits for a late file unless the Variable source_wait_seconds says otherwise:
# a quarter, since the TLC publishes about two months after the month ends.
DEFAULT_WAIT = timedelta(days=90)
DEFAULT_POKE = timedelta(minutes=30)


class WaitForMonthFile(BaseOperator):
    """For one taxi family of a monthly run (``plan``, ``include.source.sources.RunPlan`` as a dict):
    return the file's request (``MonthRequest`` as a dict) once the source has the file."""

    template_fields = ("plan",)
    ui_color = "#e8f4fd"

    def __init__(self, *, taxi: str, plan: Any, **kwargs):
        super().__init__(**kwargs)
        self.taxi = taxi
        self.plan = plan
        self.file_url: str | None = None  # set once the file is found published, for its lineage

    def execute(self, context) -> dict:
        from airflow.sdk import Variable

        from include.source.download import current_version
        from include.source.months import Month
        from include.source.sources import MonthRequest, RunPlan, base_url, source_named

        plan = RunPlan(**self.plan)
        source, month = source_named(plan.source), Month.parse(plan.month)
        request = MonthRequest.of(source, base_url(source), self.taxi, month)
        try:
            current_version(request.url)
            log.info("%s is published", request.url)
            self.file_url = request.url
            return request.to_dict()
        except SourceNotPublishedError:
            if not source.may_still_appear(month, context["dag_run"].run_after.date()):
                raise
        wait = timedelta(
            seconds=float(Variable.get("source_wait_seconds", default=DEFAULT_WAIT.total_seconds()))
        )
        poke = timedelta(
            seconds=float(Variable.get("source_poke_seconds", default=DEFAULT_POKE.total_seconds()))
        )
        give_up_at = datetime.now(timezone.utc) + wait
        log.info("%s is not published yet: waiting until %s, asking every %s", request.url, give_up_at, poke)
        # What the resumed task needs travels in the event: `airflow dags test` (3.3.2) resumes a
        # deferred task with the trigger's event only, dropping the kwargs given to defer().
        self.defer(
            trigger=SourceFileTrigger(
                request.url, poke.total_seconds(), give_up_at.isoformat(), request.to_dict()
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event: dict) -> dict:
        request, waited = event["request"], event["waited"]
        if event["published"]:
            log.info("%s was published after a wait of %s", request["url"], waited)
            self.file_url = request["url"]
            return request
        raise SourceNotPublishedError(f"{request['url']} was not published within {waited} (HTTP 404)")

    def get_openlineage_facets_on_complete(self, task_instance):
        """For the OpenLineage provider: the file this wait found published (see ``observing.lineage``)."""
        from include.observing import lineage

        return lineage.operator_lineage(inputs=[lineage.source_file(self.file_url)] if self.file_url else [])


class SourceFileTrigger(BaseTrigger):
    """Ask a URL with HEAD every ``interval`` seconds until it answers 200 or ``give_up_at`` passes.

    The event says which (``published``), how long was waited, and carries ``request``, the
    deferring task's request, back to it.
    """

    def __init__(self, url: str, interval: float, give_up_at: str, request: dict | None = None):
        super().__init__()
        self.url, self.interval, self.give_up_at, self.request = url, interval, give_up_at, request or {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "include.source.sensors.SourceFileTrigger",
            {
                "url": self.url,
                "interval": self.interval,
                "give_up_at": self.give_up_at,
                "request": self.request,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        started = datetime.now(timezone.utc)
        deadline = datetime.fromisoformat(self.give_up_at)

        def event(published: bool, **extra) -> TriggerEvent:
            waited = str(timedelta(seconds=round((deadline - started).total_seconds())))
            return TriggerEvent({"published": published, "request": self.request, "waited": waited, **extra})

        async with httpx.AsyncClient(follow_redirects=True, timeout=30) as client:
            while True:
                try:
                    status = (await client.head(self.url)).status_code
                except httpx.HTTPError as error:
                    status = None
                    self.log.warning(
                        "asking %s failed: %s; asking again in %.0f s", self.url, error, self.interval
                    )
                if status == 200:
                    yield event(True)
                    return
                if datetime.now(timezone.utc) >= deadline:
                    yield event(False, status=status)
                    return
                await asyncio.sleep(
                    min(self.interval, max((deadline - datetime.now(timezone.utc)).total_seconds(), 0))
                )
