"""Wait for a month's file to be published, in the triggerer, so waiting holds no worker slot.

The TLC publishes a month about two months after it ends, so the run of the latest month usually
starts before its file exists: that is a file not published *yet*, worth waiting for. The wait
runs in the triggerer (one coroutine asking the source every ``source_poke_seconds``, 30 minutes
unless that Variable says otherwise), and gives up ``source_wait_seconds`` after the run was due,
failing with the URL. On a fixed archive (the
course's mirror), or for a month long past, a missing file will never come, so it fails at once.

Under a scheduler ``wait_for_file`` starts in the triggerer (``start_from_trigger``): a file already
published costs a HEAD request there and no task process, one fewer per family-month; only a
failure resumes the task on a worker, to fail it with the URL. Where no scheduler decides
(``airflow dags test``), the task runs on a worker and defers to the same trigger.

Our own operator and trigger rather than the HTTP provider's ``HttpSensor``: its trigger sends
GET (the whole file, for a published month), needs an HTTP connection per source, and on a
server error retries in a loop without waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, StartTriggerArgs, TaskSuccessEvent, TriggerEvent

from include.errors import SourceNotPublishedError, TransientDownloadError

if TYPE_CHECKING:
    from include.source.sources import RunPlan

log = logging.getLogger(__name__)

# How long a run waits for a late file unless the Variable source_wait_seconds says otherwise:
# a quarter, since the TLC publishes about two months after the month ends.
DEFAULT_WAIT = timedelta(days=90)
DEFAULT_POKE = timedelta(minutes=30)


# The XCom of plan_month holding a family's FileWait, which its wait_for_file reads.
def file_wait_key(taxi: str) -> str:
    return f"file_wait.{taxi}"


@dataclass(frozen=True)
class FileWait:
    """What waiting for one family's file of a run needs, decided once by the run's ``plan_month``."""

    request: dict[str, str]  # include.source.sources.MonthRequest, as a dict
    may_appear: bool  # a missing file may still be published: a live source and a recent month
    poke_seconds: float
    wait_seconds: float
    give_up_at: str  # ISO: wait_seconds after the run was due, the same for every try

    @classmethod
    def parse(cls, value: dict | str) -> FileWait:
        """From the XCom, or from the JSON the triggerer renders it as."""
        return cls(**(json.loads(value) if isinstance(value, str) else value))

    @property
    def url(self) -> str:
        return self.request["url"]

    @property
    def waited(self) -> str:
        return str(timedelta(seconds=round(self.wait_seconds)))


def plan_file_waits(plan: RunPlan, run_after: datetime) -> dict[str, FileWait]:
    """Per family of the run: its file's request and how long to wait for it (the Variables)."""
    from airflow.sdk import Variable

    from include.source.months import Month
    from include.source.sources import MonthRequest, base_url, source_named

    source, month = source_named(plan.source), Month.parse(plan.month)
    wait = float(Variable.get("source_wait_seconds", default=DEFAULT_WAIT.total_seconds()))
    poke = float(Variable.get("source_poke_seconds", default=DEFAULT_POKE.total_seconds()))
    may_appear = source.may_still_appear(month, run_after.date())
    give_up_at = (run_after + timedelta(seconds=wait)).isoformat()
    return {
        taxi: FileWait(
            MonthRequest.of(source, base_url(source), taxi, month).to_dict(),
            may_appear,
            poke,
            wait,
            give_up_at,
        )
        for taxi in plan.taxis
    }


class WaitForMonthFile(BaseOperator):
    """For one taxi family of a monthly run (``file_wait``, its ``FileWait`` from ``plan_month``):
    succeed once the source has the file. The tasks after it read the request from the plan: on the
    scheduler's path the task ends in the triggerer, which stores no return value the way a task does."""

    template_fields = ("file_wait",)
    ui_color = "#e8f4fd"
    start_from_trigger = True

    def __init__(self, *, taxi: str, file_wait: Any, plan_task_id: str = "plan_month", **kwargs):
        super().__init__(**kwargs)
        self.taxi = taxi
        self.file_wait = file_wait
        self.file_url: str | None = None  # set once the file is found published, for its lineage
        # The scheduler hands this to the triggerer, which renders the XCom into it.
        # map_indexes=-1: one XCom, which the triggerer can fetch (it cannot fetch a sequence).
        pulled = f"ti.xcom_pull(task_ids='{plan_task_id}', key='{file_wait_key(taxi)}', map_indexes=-1)"
        rendered = f"{{{{ {pulled} | tojson }}}}"
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=SourceFileTrigger.CLASSPATH,
            trigger_kwargs={"file_wait": rendered, "end_task": True},
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )

    def execute(self, context) -> None:
        from include.source.download import current_version

        wait = FileWait.parse(self.file_wait)
        try:
            current_version(wait.url)
            log.info("%s is published", wait.url)
            self.file_url = wait.url
            return
        except SourceNotPublishedError:
            if not wait.may_appear:
                raise
        log.info(
            "%s is not published yet: waiting until %s, asking every %s",
            wait.url,
            wait.give_up_at,
            timedelta(seconds=wait.poke_seconds),
        )
        self.defer(trigger=SourceFileTrigger(asdict(wait)), method_name="execute_complete")

    def execute_complete(self, context, event: dict) -> None:
        from include.source.download import raise_for_status

        wait = FileWait.parse(event["file_wait"])
        if event["published"]:
            log.info("%s was published after a wait of %s", wait.url, event["waited"])
            self.file_url = wait.url
            return
        if event.get("error"):
            raise TransientDownloadError(f"asking {wait.url} failed: {event['error']}")
        if wait.may_appear:
            raise SourceNotPublishedError(
                f"{wait.url} was not published within {wait.waited} (HTTP {event.get('status')})"
            )
        raise_for_status(wait.url, event["status"])
        raise SourceNotPublishedError(f"{wait.url} is not published (HTTP {event['status']})")

    def get_openlineage_facets_on_complete(self, task_instance):
        """For the OpenLineage provider: the file this wait found published (see ``observing.lineage``)."""
        from include.observing import lineage

        return lineage.operator_lineage(inputs=[lineage.source_file(self.file_url)] if self.file_url else [])


class SourceFileTrigger(BaseTrigger):
    """Ask a file's URL with HEAD every ``poke_seconds`` until it answers 200 or ``give_up_at`` passes
    (``file_wait``: a ``FileWait``, or the JSON the triggerer renders it as).

    A file that may not appear any more (``may_appear`` false) is asked once, or a few times if the
    server cannot be reached. With ``end_task`` (the task started here), a published file ends the
    task as a success; otherwise, and on any failure, the event resumes the task: ``published``,
    ``waited``, ``status`` or ``error``, and ``file_wait`` back.
    """

    # The triggerer renders file_wait: it takes the field names from the task's template_fields
    # that are also keys of start_trigger_args.trigger_kwargs, and sets them on the instance.
    CLASSPATH = "include.source.sensors.SourceFileTrigger"

    def __init__(self, file_wait: dict | str, end_task: bool = False):
        super().__init__()
        self.file_wait, self.end_task = file_wait, end_task

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (self.CLASSPATH, {"file_wait": self.file_wait, "end_task": self.end_task})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        wait = FileWait.parse(self.file_wait)
        deadline = datetime.fromisoformat(wait.give_up_at)

        def resume(published: bool, **extra) -> TriggerEvent:
            return TriggerEvent(
                {"published": published, "file_wait": asdict(wait), "waited": wait.waited, **extra}
            )

        unreachable = 0
        async with httpx.AsyncClient(follow_redirects=True, timeout=30) as client:
            while True:
                try:
                    status = (await client.head(wait.url)).status_code
                except httpx.HTTPError as error:
                    status = None
                    unreachable += 1
                    self.log.warning("asking %s failed: %s", wait.url, error)
                    if not wait.may_appear and unreachable >= UNREACHABLE_TRIES:
                        yield resume(False, error=str(error) or type(error).__name__)
                        return
                if status == 200:
                    self.log.info("%s is published", wait.url)
                    yield TaskSuccessEvent() if self.end_task else resume(True)
                    return
                if not wait.may_appear:
                    if status is not None:  # it will not appear: fail at once, as the download would
                        yield resume(False, status=status)
                        return
                    await asyncio.sleep(UNREACHABLE_PAUSE_SECONDS)
                    continue
                if datetime.now(timezone.utc) >= deadline:
                    yield resume(False, status=status)
                    return
                await asyncio.sleep(
                    min(wait.poke_seconds, max((deadline - datetime.now(timezone.utc)).total_seconds(), 0))
                )


# A fixed archive's server that cannot be reached is asked this often, this far apart, before the
# task fails (and Airflow's retries take over), as the download's own retries do.
UNREACHABLE_TRIES = 4
UNREACHABLE_PAUSE_SECONDS = 2.0
