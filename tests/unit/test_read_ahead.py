"""``read_ahead``: the month's batches come in order from a thread of their own, errors included."""

from __future__ import annotations

import threading

import pytest

from include.source.month_file import read_ahead


def test_items_come_in_order_from_another_thread():
    threads = []

    def numbers():
        for number in range(50):
            threads.append(threading.current_thread())
            yield number

    assert list(read_ahead(numbers(), depth=2)) == list(range(50))
    assert threading.current_thread() not in threads


def test_an_error_comes_after_the_items_before_it():
    def failing():
        yield 1
        yield 2
        raise ValueError("bad row")

    seen = []
    with pytest.raises(ValueError, match="bad row"):
        for item in read_ahead(failing()):
            seen.append(item)
    assert seen == [1, 2]


def test_stopping_early_closes_the_source_and_ends_the_thread():
    closed = threading.Event()
    produced = []

    def endless():
        try:
            number = 0
            while True:
                produced.append(number)
                yield number
                number += 1
        finally:
            closed.set()

    stream = read_ahead(endless(), depth=1)
    assert next(stream) == 0
    stream.close()
    assert closed.is_set()
    assert len(produced) <= 3  # the thread ran at most the queue's depth and one item ahead
    assert not any(thread.name == "read-ahead" for thread in threading.enumerate())
