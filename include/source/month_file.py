"""A downloaded month file as every monthly flow loads it: read, cleaned and profiled in one stream.

Reading (``include.source.extract``), the cleaning rules (``include.source.transform``) and the profile
(``include.checks.profile``) are separate concerns; this is the one way the flows chain them, so the
Postgres and the GCS flows load exactly the same rows and judge them by the same profile.

The stream runs in a thread of its own, a few batches ahead of the consumer (``read_ahead``):
while the consumer encodes a batch and waits for Postgres or a Parquet writer to take it, the
next ones are already being decompressed, parsed, cleaned and profiled. pyarrow and numpy
release the GIL in their kernels, so on two cores the stages overlap instead of taking turns.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import pyarrow as pa

from include.checks.profile import MonthProfile, Profiler
from include.errors import InvalidFileError
from include.source.extract import Rejects, iter_batches
from include.source.families import family_named
from include.source.sources import MonthRequest
from include.source.transform import MONTHLY_RULES, CleaningReport, clean, with_source_month

log = logging.getLogger(__name__)

# Batches the reading thread may hold ready besides the one it works on: enough to ride out a slow
# moment of either side, few enough that memory does not depend on the month's size (a batch is
# a few MB, see include.source.extract.BATCH_ROWS).
READ_AHEAD_BATCHES = 1

Item = TypeVar("Item")


class _End:
    """What the reading thread puts last: the error that ended the stream, if any."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def read_ahead(items: Iterable[Item], depth: int = READ_AHEAD_BATCHES) -> Iterator[Item]:
    """Iterate ``items`` in a thread of its own, at most ``depth`` items ahead of the consumer.

    The items come in order; an error in the thread is raised in the consumer, after the items
    before it. When the consumer stops early (an error, a timeout, ``close()``), the thread stops
    at its next item and closes ``items``. Our own few lines: the standard library's executors
    run calls, not generators, and have no bound on what is produced ahead.
    """
    ready: queue.Queue[Item | _End] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def hand_over(item: Item | _End) -> bool:
        while not stopped.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not hand_over(item):
                    return
            hand_over(_End())
        except BaseException as error:  # handed to the consumer, who raises it
            hand_over(_End(error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while not isinstance(item := ready.get(), _End):
            yield item
        if item.error is not None:
            raise item.error
    finally:
        stopped.set()
        thread.join()


# What a file whose era's columns are absent or empty does: fail the file, or load it with the
# columns named in its profile, where the anomaly test flags them (Variable ``missing_columns``).
MissingColumns = Literal["fail", "flag"]
MISSING_COLUMNS_ACTIONS: tuple[MissingColumns, ...] = ("fail", "flag")


@dataclass
class MonthFile:
    """The rows of one month file, as record batches consumed once, and what was seen of them."""

    path: Path
    request: MonthRequest
    missing_columns: MissingColumns = "fail"
    report: CleaningReport = field(default_factory=CleaningReport)
    # The columns of the file's era it lacked or left empty, known once the batches are consumed.
    empty_columns: tuple[str, ...] = field(default=(), init=False)
    rejects: Rejects = field(init=False)
    profiler: Profiler = field(init=False)

    def __post_init__(self) -> None:
        self.rejects = Rejects(self.path.name)
        self.profiler = Profiler(self.request.schema, self.request.month)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The kept rows as every destination stores them (the family's ``table_schema``: declared
        columns plus ``source_month``), read, cleaned and profiled ahead of the caller in a thread
        of their own. Every destination gets ``source_month`` here, and only here."""
        schema, month = self.request.schema, self.request.month
        read = iter_batches(self.path, schema, self.rejects)
        kept = self.profiler.observe(clean(read, schema, MONTHLY_RULES, self.report, month))
        yield from read_ahead(with_source_month(kept, month))
        log.info("%s: %s", self.path.name, self.report.describe())
        self._check_era_columns()

    def _check_era_columns(self) -> None:
        """Fail (or flag) a file without values in a column its era always has: a column the file
        lacks loads as nulls, so both show as a column with no value in any kept row."""
        family, month, rows = family_named(self.request.taxi), self.request.month, self.profiler.rows
        if not rows:
            return  # no rows at all: the audit's has_rows check says so
        self.empty_columns = tuple(c for c in family.always_in(month) if self.profiler.nulls[c] == rows)
        if not self.empty_columns:
            return
        what = (
            f"{self.path.name}: no value in column(s) {', '.join(self.empty_columns)}, which every "
            f"{family.name} file of {month} has (include/source/families.py); the file lacks them or "
            "leaves them empty"
        )
        if self.missing_columns == "fail":
            raise InvalidFileError(f"{what}: the month is not loaded")
        log.warning("%s: loaded, and flagged for the anomaly test (Variable missing_columns=flag)", what)

    def profile(self) -> MonthProfile:
        """The profile of the rows streamed so far: call it once ``batches`` is exhausted."""
        return self.profiler.profile(
            self.report, len(self.rejects.rows), self.request.url, self.empty_columns
        )
