"""The trigger a late file is waited for with, against a real HTTP server whose file appears later."""

import asyncio
import shutil
import threading
import time
from datetime import datetime, timedelta, timezone

from include.source.sensors import SourceFileTrigger
from local_stack.tlc_server import serve_in_thread
from tests.samples import GREEN_2024_01_PARQUET


def first_event(trigger: SourceFileTrigger) -> dict:
    async def run():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(run())


def test_fires_once_the_file_appears(tmp_path):
    (tmp_path / "trip-data").mkdir()
    server, url = serve_in_thread(tmp_path)
    target = tmp_path / "trip-data" / GREEN_2024_01_PARQUET.name
    threading.Timer(1.5, shutil.copy, (GREEN_2024_01_PARQUET, target)).start()
    try:
        started = time.monotonic()
        give_up = (datetime.now(timezone.utc) + timedelta(seconds=30)).isoformat()
        event = first_event(SourceFileTrigger(f"{url}/trip-data/{target.name}", 0.2, give_up))
        assert event["published"] is True and event["request"] == {}
        assert 1.5 <= time.monotonic() - started < 10
    finally:
        server.shutdown()


def test_gives_up_at_the_deadline_with_the_last_status(tmp_path):
    server, url = serve_in_thread(tmp_path)
    try:
        give_up = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
        started = time.monotonic()
        event = first_event(
            SourceFileTrigger(f"{url}/trip-data/green_tripdata_2026-11.parquet", 0.2, give_up)
        )
        assert (event["published"], event["status"], event["waited"]) == (False, 404, "0:00:01")
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()


def test_serializes_to_what_the_triggerer_rebuilds_it_from():
    trigger = SourceFileTrigger("http://x/a.parquet", 60.0, "2026-12-01T00:00:00+00:00", {"taxi": "green"})
    path, kwargs = trigger.serialize()
    assert path == "include.source.sensors.SourceFileTrigger"
    assert SourceFileTrigger(**kwargs).serialize() == (path, kwargs)
