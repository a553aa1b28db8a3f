import logging
import re

from include.observing.progress import Progress


def test_describes_done_rate_and_time_left():
    progress = Progress("Loading f.csv.gz", total_bytes=48_000_000)
    line = progress.describe(12_000_000, 600_000, elapsed=10.0)
    assert (
        line == "Loading f.csv.gz: 12.0 of 48.0 MB, 600,000 rows (60,000 rows/s), 1.2 MB/s, about 30 s left"
    )


def test_without_a_total_there_is_no_estimate():
    assert Progress("Downloading u", total_bytes=0).describe(5_000_000, None, elapsed=2.0) == (
        "Downloading u: 5.0 MB, 2.5 MB/s"
    )


def test_logs_at_most_once_per_interval(caplog):
    progress = Progress("Reading f", total_bytes=100, every_seconds=3600)
    with caplog.at_level(logging.INFO, logger="include.observing.progress"):
        for done in range(100):
            progress.update(done)
    assert caplog.records == []


def test_finish_logs_the_totals_and_average_rates(caplog):
    with caplog.at_level(logging.INFO, logger="include.observing.progress"):
        Progress("Reading f", total_bytes=2_000_000, every_seconds=3600).finish(2_000_000, 1_000)
    [line] = [record.getMessage() for record in caplog.records]
    assert re.fullmatch(
        r"Reading f: done, 2\.0 of 2\.0 MB, 1,000 rows \([\d,]+ rows/s\), [\d.]+ MB/s in [\d.]+ s", line
    )
