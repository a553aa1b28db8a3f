"""From the source's change events to the reloads (include/flows/taxi_source_changes.py)."""

from __future__ import annotations

from include.flows.taxi_source_changes import changes_of, reloads


def _event(taxi: str, month: str, etag: str, change: str = "changed") -> dict:
    """An event's extra as the triggerer stores it: the watcher's payload under ``payload``."""
    url = f"http://tlc/{taxi}/{taxi}_tripdata_{month}.csv.gz"
    payload = {"change": change, "taxi": taxi, "month": month, "url": url, "etag": etag}
    return {"from_trigger": True, "payload": {**payload, "last_modified": "Mon", "size": 1, "previous": None}}


def test_one_reload_per_month_with_its_changed_families_in_the_declared_order():
    events = [
        (_event("green", "2020-12", '"a"'), "t1"),
        (_event("yellow", "2020-12", '"b"', "new"), "t2"),
        (_event("fhv", "2020-11", '"c"'), "t3"),
    ]
    planned = reloads(changes_of(events))
    assert [reload["conf"] for reload in planned] == [
        {"month": "2020-11", "taxis": ["fhv"]},
        {"month": "2020-12", "taxis": ["yellow", "green"]},
    ]
    assert all(
        reload["trigger_run_id"].startswith(f"source_change__{reload['conf']['month']}__")
        for reload in planned
    )


def test_the_same_change_read_twice_is_the_same_run_and_a_later_correction_another():
    once = reloads(changes_of([(_event("green", "2020-11", '"a"'), "t1")]))
    twice = reloads(
        changes_of([(_event("green", "2020-11", '"a"'), "t1"), (_event("green", "2020-11", '"a"'), "t2")])
    )
    corrected = reloads(
        changes_of([(_event("green", "2020-11", '"a"'), "t1"), (_event("green", "2020-11", '"z"'), "t2")])
    )
    assert once == twice
    assert corrected[0]["conf"] == once[0]["conf"]
    assert corrected[0]["trigger_run_id"] != once[0]["trigger_run_id"]


def test_an_event_made_by_hand_reloads_its_month_each_time_and_unknown_families_are_ignored():
    by_hand = {"taxi": "green", "month": "2020-11"}
    first = reloads(changes_of([(by_hand, "2026-12-07T10:00:00+00:00")]))
    again = reloads(changes_of([(by_hand, "2026-12-07T11:00:00+00:00")]))
    assert first[0]["conf"] == again[0]["conf"] == {"month": "2020-11", "taxis": ["green"]}
    assert first[0]["trigger_run_id"] != again[0]["trigger_run_id"]
    assert changes_of([({"taxi": "purple", "month": "2020-11"}, "t"), (None, "t"), ({}, "t")]) == []
