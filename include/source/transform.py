"""Cleaning rules and transformations applied to TLC record batches.

Every rule is named and documented, and each batch reports how many rows each rule dropped, so a
learner can see in the task log why a month has fewer rows than its file. Rules are checked in
order and a row is counted against the first rule it breaks.

Cleaning rules of the monthly flows (``taxi_api_to_postgres``, ``taxi_api_to_gcs``):
  * ``missing_pickup_time`` - no pickup time: the trip cannot be placed in a month or a day.
  * ``no_passengers`` - ``passenger_count`` is 0. An empty ``passenger_count`` is kept: it means
    the count was not recorded (common for street-hail apps), not that nobody rode. FHV files
    have no passenger count, so the rule does not apply to them.

Rules of the course's green-taxi pipeline (``green_taxi_etl``), stricter on purpose:
  * ``passengers_not_positive`` - ``passenger_count`` is empty or not above 0.
  * ``distance_not_positive`` - ``trip_distance`` is empty or not above 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from include.source.families import SOURCE_MONTH_COLUMN, TaxiSchema
from include.source.months import Month


@dataclass(frozen=True)
class CleaningRule:
    """A named condition on one column; rows for which ``breaks`` is true are dropped.

    A rule applies only to families that have its column (FHV files have no passenger count).
    """

    name: str
    column: str | None
    breaks: Callable[[pa.RecordBatch, TaxiSchema], pa.ChunkedArray | pa.Array]

    def applies_to(self, schema: TaxiSchema) -> bool:
        return self.column is None or schema.has(self.column)


def _missing_pickup_time(batch: pa.RecordBatch, schema: TaxiSchema) -> pa.Array:
    return pc.is_null(batch.column(schema.pickup_column))


def _no_passengers(batch: pa.RecordBatch, schema: TaxiSchema) -> pa.Array:
    return pc.equal(batch.column("passenger_count"), 0)


def _not_positive(column: str) -> Callable[[pa.RecordBatch, TaxiSchema], pa.Array]:
    def breaks(batch: pa.RecordBatch, schema: TaxiSchema) -> pa.Array:
        return pc.invert(pc.fill_null(pc.greater(batch.column(column), 0), False))

    return breaks


MONTHLY_RULES: tuple[CleaningRule, ...] = (
    CleaningRule("missing_pickup_time", None, _missing_pickup_time),
    CleaningRule("no_passengers", "passenger_count", _no_passengers),
)

GREEN_ETL_RULES: tuple[CleaningRule, ...] = (
    CleaningRule("passengers_not_positive", "passenger_count", _not_positive("passenger_count")),
    CleaningRule("distance_not_positive", "trip_distance", _not_positive("trip_distance")),
)


@dataclass
class CleaningReport:
    """Rows read, rows kept, and rows dropped per rule, summed over every batch of a file."""

    rows_read: int = 0
    rows_kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    # Kept rows whose pickup lies outside the file's month: reported, not dropped (see MonthCheck).
    outside_month: int = 0

    def describe(self) -> str:
        by_rule = ", ".join(f"{name}: {count}" for name, count in self.dropped.items()) or "none"
        return (
            f"read {self.rows_read} rows, kept {self.rows_kept}, dropped by rule: {by_rule}; "
            f"{self.outside_month} kept rows have a pickup outside the month"
        )


def apply_rules(
    batch: pa.RecordBatch, schema: TaxiSchema, rules: Iterable[CleaningRule], report: CleaningReport
) -> pa.RecordBatch:
    """Drop the rows that break any rule, counting each dropped row against its first broken rule."""
    report.rows_read += batch.num_rows
    keep = None  # every row, until a rule breaks
    for rule in rules:
        # An unknown (null) outcome never breaks a rule: rules say explicitly what null means.
        broken = pc.fill_null(rule.breaks(batch, schema), False)
        if keep is not None:
            broken = pc.and_(keep, broken)
        dropped = pc.sum(broken).as_py() or 0
        report.dropped[rule.name] += dropped
        if dropped:
            keep = pc.invert(broken) if keep is None else pc.and_not(keep, broken)
    kept = batch if keep is None else batch.filter(keep)
    report.rows_kept += kept.num_rows
    return kept


def clean(
    batches: Iterable[pa.RecordBatch],
    schema: TaxiSchema,
    rules: Iterable[CleaningRule],
    report: CleaningReport,
    month: Month | None = None,
) -> Iterator[pa.RecordBatch]:
    """Apply ``rules`` to a stream of batches lazily, filling ``report`` as the stream is consumed.

    With ``month`` (the file's month), kept rows with a pickup outside it are counted too.
    """
    rules = tuple(rule for rule in rules if rule.applies_to(schema))
    for rule in rules:
        report.dropped.setdefault(rule.name, 0)
    for batch in batches:
        kept = apply_rules(batch, schema, rules, report)
        if month is not None:
            pickup = kept.column(schema.pickup_column)
            outside = pc.or_(pc.less(pickup, month.start), pc.greater_equal(pickup, month.end))
            report.outside_month += pc.sum(outside).as_py() or 0
        yield kept


def add_pickup_date(batch: pa.RecordBatch, pickup_column: str, date_column: str) -> pa.RecordBatch:
    """Append the calendar date of the pickup time, the key the daily partitions are laid out by."""
    pickup_date = pc.cast(batch.column(pickup_column), pa.date32())
    return batch.append_column(date_column, pickup_date)


def with_source_month(batches: Iterable[pa.RecordBatch], month: Month) -> Iterator[pa.RecordBatch]:
    """Append ``source_month``, the first day of the file's month, to every row: what a rerun of
    the file replaces, and what every destination is partitioned by."""
    field = pa.field(SOURCE_MONTH_COLUMN, pa.date32(), nullable=False)
    for batch in batches:
        yield batch.append_column(field, pa.repeat(pa.scalar(month.first_day, pa.date32()), batch.num_rows))
