"""A downloaded month file as every monthly flow loads it: read, cleaned and profiled in one stream.

Reading (``include.extract``), the cleaning rules (``include.transform``) and the profile
(``include.profile``) are separate concerns; this is the one way the flows chain them, so the
Postgres and the GCS flows load exactly the same rows and judge them by the same profile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from include.extract import Rejects, iter_batches
from include.profile import MonthProfile, Profiler
from include.sources import MonthRequest
from include.transform import MONTHLY_RULES, CleaningReport, clean

log = logging.getLogger(__name__)


@dataclass
class MonthFile:
    """The rows of one month file, as record batches consumed once, and what was seen of them."""

    path: Path
    request: MonthRequest
    report: CleaningReport = field(default_factory=CleaningReport)
    rejects: Rejects = field(init=False)
    profiler: Profiler = field(init=False)

    def __post_init__(self) -> None:
        self.rejects = Rejects(self.path.name)
        self.profiler = Profiler(self.request.schema, self.request.month)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The kept rows, with the family's declared columns (snake_case, no ``source_month``)."""
        schema, month = self.request.schema, self.request.month
        read = iter_batches(self.path, schema, self.rejects)
        yield from self.profiler.observe(clean(read, schema, MONTHLY_RULES, self.report, month))
        log.info("%s: %s", self.path.name, self.report.describe())

    def profile(self) -> MonthProfile:
        """The profile of the rows streamed so far: call it once ``batches`` is exhausted."""
        return self.profiler.profile(self.report, len(self.rejects.rows), self.request.url)
