"""The trigger a month's file is waited for with, against a real HTTP server whose file appears later."""

import asyncio
import json
import shutil
import threading
import time
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from airflow.triggers.base import TaskSuccessEvent

from include.source.sensors import FileWait, SourceFileTrigger, WaitForMonthFile, file_wait_key
from local_stack.tlc_server import serve_in_thread
from tests.samples import GREEN_2024_01_PARQUET


def file_wait(url: str, *, may_appear: bool = True, wait_seconds: float = 30) -> dict:
    give_up = datetime.now(timezone.utc) + timedelta(seconds=wait_seconds)
    request = {"taxi": "green", "month": "2024-01", "source": "tlc", "url": url}
    return asdict(FileWait(request, may_appear, 0.2, wait_seconds, give_up.isoformat()))


def first_event(trigger: SourceFileTrigger):
    async def run():
        async for event in trigger.run():
            return event

    return asyncio.run(run())


def test_fires_once_the_file_appears(tmp_path):
    (tmp_path / "trip-data").mkdir()
    server, url = serve_in_thread(tmp_path)
    target = tmp_path / "trip-data" / GREEN_2024_01_PARQUET.name
    threading.Timer(1.5, shutil.copy, (GREEN_2024_01_PARQUET, target)).start()
    try:
        started = time.monotonic()
        wait = file_wait(f"{url}/trip-data/{target.name}")
        event = first_event(SourceFileTrigger(wait)).payload
        assert event["published"] is True and event["file_wait"] == wait
        assert 1.5 <= time.monotonic() - started < 10
    finally:
        server.shutdown()


def test_started_by_the_scheduler_a_published_file_ends_the_task_in_the_triggerer(tmp_path):
    (tmp_path / "trip-data").mkdir()
    shutil.copy(GREEN_2024_01_PARQUET, tmp_path / "trip-data" / GREEN_2024_01_PARQUET.name)
    server, url = serve_in_thread(tmp_path)
    try:
        wait = file_wait(f"{url}/trip-data/{GREEN_2024_01_PARQUET.name}")
        # As the triggerer hands it over: the XCom rendered as JSON.
        event = first_event(SourceFileTrigger(json.dumps(wait), end_task=True))
        assert isinstance(event, TaskSuccessEvent)
    finally:
        server.shutdown()


def test_gives_up_at_the_deadline_with_the_last_status(tmp_path):
    server, url = serve_in_thread(tmp_path)
    try:
        started = time.monotonic()
        wait = file_wait(f"{url}/trip-data/green_tripdata_2026-11.parquet", wait_seconds=1)
        event = first_event(SourceFileTrigger(wait, end_task=True)).payload
        assert (event["published"], event["status"], event["waited"]) == (False, 404, "0:00:01")
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()


def test_a_file_that_cannot_appear_any_more_is_asked_once(tmp_path):
    server, url = serve_in_thread(tmp_path)
    try:
        started = time.monotonic()
        wait = file_wait(f"{url}/trip-data/green_tripdata_2019-01.parquet", may_appear=False)
        event = first_event(SourceFileTrigger(wait, end_task=True)).payload
        assert (event["published"], event["status"]) == (False, 404)
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()


def test_serializes_to_what_the_triggerer_rebuilds_it_from():
    trigger = SourceFileTrigger(file_wait("http://x/a.parquet"), end_task=True)
    path, kwargs = trigger.serialize()
    assert path == "include.source.sensors.SourceFileTrigger"
    assert SourceFileTrigger(**kwargs).serialize() == (path, kwargs)


def test_the_scheduler_starts_the_wait_in_the_triggerer_with_the_plans_xcom():
    operator = WaitForMonthFile(task_id="wait_for_file", taxi="green", file_wait={})
    assert operator.start_from_trigger is True
    args = operator.start_trigger_args
    assert args.trigger_cls == "include.source.sensors.SourceFileTrigger"
    assert args.next_method == "execute_complete"
    assert args.trigger_kwargs["end_task"] is True
    pulled = f"ti.xcom_pull(task_ids='plan_month', key='{file_wait_key('green')}', map_indexes=-1) | tojson"
    assert args.trigger_kwargs["file_wait"] == f"{{{{ {pulled} }}}}"
