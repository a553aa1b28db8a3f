"""The watcher's decisions (include/source/watch.py) against the real local TLC server.

Each test serves a folder of its own in the mirror's layout and changes the files in it the way the
TLC does: a month's file replaced by a corrected one, a month published late, a file taken down.
"""

from __future__ import annotations

import asyncio
import os
from datetime import date

import httpx
import pytest

from include.source.download import FileVersion
from include.source.months import Month
from include.source.sources import SOURCES, SourceSettings
from include.source.watch import SourceChangeTrigger, ask, decide, watched_files
from local_stack.tlc_server import SAMPLES, serve_in_thread

MIRROR = SOURCES["mirror"]
TODAY = date(2026, 12, 7)
SAMPLE = SAMPLES / "green" / "green_tripdata_2020-10.csv.gz"


@pytest.fixture
def served(tmp_path):
    """A TLC stand-in over an empty folder: its folder and base URL."""
    server, url = serve_in_thread(tmp_path)
    yield tmp_path, url
    server.shutdown()


def _publish(folder, taxi: str, month: Month, body: bytes) -> str:
    path = folder / MIRROR.file_path.format(taxi=taxi, month=month)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return str(path)


def _index(month: Month) -> int:
    return month.year * 12 + month.month


def _asked(url: str, known=None):
    async def go():
        async with httpx.AsyncClient() as client:
            return await ask(client, url, known)

    return asyncio.run(go())


def _headers(url: str) -> FileVersion:
    response = httpx.head(url)
    return FileVersion(
        response.headers["ETag"], response.headers["Last-Modified"], int(response.headers["Content-Length"])
    )


def test_an_unchanged_file_costs_one_conditional_request_answered_304(served):
    folder, base = served
    _publish(folder, "green", Month(2020, 11), SAMPLE.read_bytes())
    url = MIRROR.url(base, "green", Month(2020, 11))

    first = _asked(url)
    assert first.status == "present" and first.version == _headers(url)
    change, known = decide(False, None, first)
    assert change == "first_seen"  # recorded, not announced

    again = _asked(url, known)
    assert again.status == "not_modified"
    assert decide(True, known, again) == ("unchanged", known)


def test_a_replaced_file_is_a_change_with_the_new_validators(served):
    folder, base = served
    month = Month(2020, 11)
    path = _publish(folder, "green", month, SAMPLE.read_bytes())
    url = MIRROR.url(base, "green", month)
    _, known = decide(False, None, _asked(url))

    corrected = SAMPLE.read_bytes()[:-100]  # a different file under the same name
    _publish(folder, "green", month, corrected)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))  # a later Last-Modified

    change, now = decide(True, known, _asked(url, known))
    assert change == "changed"
    assert now == _headers(url).__dict__ and now["size"] == len(corrected) != known["size"]


def test_a_file_replaced_with_the_same_size_is_still_a_change(served):
    folder, base = served
    month = Month(2020, 11)
    body = SAMPLE.read_bytes()
    path = _publish(folder, "green", month, body)
    url = MIRROR.url(base, "green", month)
    _, known = decide(False, None, _asked(url))

    _publish(folder, "green", month, body[::-1])
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))

    change, now = decide(True, known, _asked(url, known))
    assert change == "changed" and now["size"] == known["size"] and now["etag"] != known["etag"]


def test_a_month_that_appears_after_a_404_is_new_and_a_file_taken_down_is_gone(served):
    folder, base = served
    month = Month(2020, 12)
    url = MIRROR.url(base, "fhv", month)

    absent = _asked(url)
    assert absent.status == "absent"
    change, known = decide(False, None, absent)
    assert (change, known) == ("first_seen", None)
    assert decide(True, known, _asked(url, known)) == ("unchanged", None)

    path = _publish(folder, "fhv", month, SAMPLE.read_bytes())
    change, known = decide(True, None, _asked(url, None))
    assert change == "new" and known == _headers(url).__dict__
    # On a live source, a month a scheduled run may still be waiting for is that run's to load.
    assert decide(True, None, _asked(url, None), awaited=True)[0] == "awaited"

    os.remove(path)
    assert decide(True, known, _asked(url, known)) == ("gone", None)


def test_a_server_that_cannot_answer_changes_nothing_known(served):
    known = {"etag": '"x"', "last_modified": None, "size": 1}
    unreachable = _asked("http://127.0.0.1:9/green/green_tripdata_2020-11.csv.gz", known)
    assert unreachable.status == "unreachable"
    assert decide(True, known, unreachable) == ("unreachable", known)


def test_the_watched_files_are_every_familys_months_in_the_bounds():
    settings = SourceSettings.from_values("mirror", "2020-11", "2020-12")
    files = watched_files(settings, "http://tlc", TODAY)
    assert [(taxi, str(month)) for taxi, month, _ in files] == [
        (taxi, month) for taxi in MIRROR.first_months for month in ("2020-11", "2020-12")
    ]
    assert files[0][2] == MIRROR.url("http://tlc", files[0][0], Month(2020, 11))
    # A live source: up to the month before today, from each family's first month.
    live = watched_files(SourceSettings.from_values("tlc"), "http://tlc", TODAY)
    first = SOURCES["tlc"].first_months
    assert len(live) == sum(_index(Month(2026, 11)) - _index(first[taxi]) + 1 for taxi in first)
    assert max(month for _, month, _ in live) == Month(2026, 11)


def test_the_trigger_announces_exactly_the_new_and_changed_files(served):
    """Three polls of the trigger's own loop: a baseline, then a correction and a late month."""
    folder, base = served
    november, december = Month(2020, 11), Month(2020, 12)
    for taxi in MIRROR.first_months:
        _publish(folder, taxi, november, SAMPLE.read_bytes())
    trigger = SourceChangeTrigger("mirror", str(november), str(december), base, interval=0.0)

    async def polls():
        async with httpx.AsyncClient() as client:
            events, known = await trigger.poll(client, trigger.settings, {}, TODAY)
            assert events == []  # the baseline announces nothing
            unchanged, same = await trigger.poll(client, trigger.settings, known, TODAY)
            assert (unchanged, same) == ([], known)

            path = _publish(folder, "green", november, SAMPLE.read_bytes()[:-10])
            stat = os.stat(path)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))
            _publish(folder, "fhv", december, SAMPLE.read_bytes())
            return known, *(await trigger.poll(client, trigger.settings, known, TODAY))

    known, events, after = asyncio.run(polls())
    green = MIRROR.url(base, "green", november)
    fhv = MIRROR.url(base, "fhv", december)
    assert sorted((e["change"], e["taxi"], e["month"]) for e in events) == [
        ("changed", "green", "2020-11"),
        ("new", "fhv", "2020-12"),
    ]
    by_url = {event["url"]: event for event in events}
    assert {k: by_url[green][k] for k in ("etag", "last_modified", "size")} == _headers(green).__dict__
    assert by_url[green]["previous"] == known["green"][green]
    assert by_url[fhv]["previous"] is None
    assert after["fhv"][fhv] == _headers(fhv).__dict__


def test_the_watcher_is_off_unless_the_environment_turns_it_on():
    from include.flows.assets import DEFAULT_WATCH_SECONDS, source_files

    settings = SourceSettings.from_values("mirror", "2020-11", "2020-12")
    assert source_files(settings, {}).watchers == []
    assert source_files(settings, {"AIRFLOW_VAR_WATCH_SOURCE": "off"}).watchers == []

    on = {"AIRFLOW_VAR_WATCH_SOURCE": "on", "AIRFLOW_VAR_MIRROR_BASE_URL": "http://tlc"}
    (watcher,) = source_files(settings, on).watchers
    assert watcher.trigger.serialize()[1] == {
        "source": "mirror",
        "first_month": "2020-11",
        "last_month": "2020-12",
        "base_url": "http://tlc",
        "interval": float(DEFAULT_WATCH_SECONDS),
    }
    (faster,) = source_files(settings, {**on, "AIRFLOW_VAR_WATCH_SOURCE_SECONDS": "60"}).watchers
    assert faster.trigger.interval == 60.0
