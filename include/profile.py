"""A month's profile, gathered while its rows stream past: what the checks and the anomaly test read.

Re-reading a loaded month costs as much as loading it (seven million rows for a yellow month), so
everything the checks need is counted on the way in, batch by batch, in bounded memory: rows per
pickup day, nulls per column, and quantiles of fare, distance and trip time from a uniform sample
(bottom-k: each row draws a random key and the ``SAMPLE_ROWS`` smallest keys are kept), which puts
the quantiles within about half a percentile of the exact ones.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.months import Month
from include.schema import TaxiSchema
from include.transform import CleaningReport

SAMPLE_ROWS = 20_000
QUANTILES = {"p05": 0.05, "p50": 0.5, "p95": 0.95}
# The numeric columns whose quantiles are profiled, where a family has them, plus the trip time.
QUANTILE_COLUMNS = ("fare_amount", "trip_distance")
TRIP_MINUTES = "trip_minutes"
# A day of the month with fewer trips than this share of the month's median day is a low day.
LOW_DAY_SHARE = 0.5


@dataclass(frozen=True)
class MonthProfile:
    """What one file of one month held, after the cleaning rules: flat, so it is stored as one row."""

    taxi: str
    month: str
    source_url: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_outside_month: int
    dropped_by_rule: dict[str, int]
    null_fraction: dict[str, float]
    trips_per_day: dict[str, int]
    quantiles: dict[str, dict[str, float]]

    def low_trip_days(self) -> list[str]:
        """Days of the month with under half the trips of its median day with trips (none counts)."""
        month = Month.parse(self.month)
        first, last = month.first_day.toordinal(), month.last_day.toordinal()
        days = [date.fromordinal(day).isoformat() for day in range(first, last + 1)]
        counts = [self.trips_per_day.get(day, 0) for day in days]
        busy = [count for count in counts if count]
        median = float(np.median(busy)) if busy else 0.0
        return [day for day, count in zip(days, counts, strict=True) if count < LOW_DAY_SHARE * median]

    def features(self) -> dict[str, float]:
        """Every number the anomaly test compares with earlier months, by name."""
        read = max(self.rows_read, 1)
        found: dict[str, float] = {
            "rows": float(self.rows_loaded),
            "share_rejected": self.rows_rejected / max(self.rows_read + self.rows_rejected, 1),
            "share_outside_month": self.rows_outside_month / max(self.rows_loaded, 1),
            "low_trip_days": float(len(self.low_trip_days())),
        }
        found |= {f"share_dropped.{rule}": count / read for rule, count in self.dropped_by_rule.items()}
        found |= {f"null_fraction.{column}": share for column, share in self.null_fraction.items()}
        found |= {f"{column}.{q}": value for column, qs in self.quantiles.items() for q, value in qs.items()}
        return {name: value for name, value in found.items() if value is not None and math.isfinite(value)}

    def as_json_columns(self) -> dict[str, str]:
        """The dictionary fields as JSON text, for a jsonb column each."""
        return {
            name: json.dumps(value, sort_keys=True)
            for name, value in asdict(self).items()
            if isinstance(value, dict)
        }


@dataclass
class Profiler:
    """Watches the kept batches of one file go by and builds its ``MonthProfile`` at the end."""

    schema: TaxiSchema
    month: Month
    rows: int = 0
    nulls: Counter[str] = field(default_factory=Counter)
    days: Counter[date] = field(default_factory=Counter)
    _keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    _samples: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Seeded by the month, so profiling the same file twice gives the same profile.
        self._random = np.random.default_rng(self.month.year * 100 + self.month.month)
        self._sampled = [c for c in QUANTILE_COLUMNS if self.schema.has(c)] + [TRIP_MINUTES]

    def observe(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Pass the batches through unchanged, profiling each on the way."""
        for batch in batches:
            self._add(batch)
            yield batch

    def _add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            self.nulls[name] += column.null_count
        pickup = batch.column(self.schema.pickup_column)
        counts = pc.value_counts(pc.cast(pickup, pa.date32()))
        for day, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        ):
            if day is not None:
                self.days[day] += count
        self._sample(batch)

    def _sample(self, batch: pa.RecordBatch) -> None:
        keys = self._random.random(batch.num_rows)
        if len(self._keys) >= SAMPLE_ROWS:
            chosen = np.flatnonzero(keys < self._keys.max())
        else:
            chosen = np.arange(batch.num_rows)
        if not len(chosen):
            return
        picked = batch.take(pa.array(chosen))
        values = {
            c: picked.column(c).to_numpy(zero_copy_only=False).astype(float)
            for c in QUANTILE_COLUMNS
            if c in self._sampled
        }
        minutes = pc.divide(
            pc.cast(
                pc.subtract(
                    picked.column(self.schema.dropoff_column), picked.column(self.schema.pickup_column)
                ),
                pa.int64(),
            ),
            60_000_000.0,
        )
        values[TRIP_MINUTES] = minutes.to_numpy(zero_copy_only=False).astype(float)
        self._keys = np.concatenate([self._keys, keys[chosen]])
        for name, array in values.items():
            self._samples[name] = np.concatenate([self._samples.get(name, np.empty(0)), array])
        if len(self._keys) > SAMPLE_ROWS:
            keep = np.argpartition(self._keys, SAMPLE_ROWS - 1)[:SAMPLE_ROWS]
            self._keys = self._keys[keep]
            self._samples = {name: array[keep] for name, array in self._samples.items()}

    def profile(self, report: CleaningReport, rows_rejected: int, source_url: str) -> MonthProfile:
        """The profile of everything observed, with the cleaning report of the same stream."""
        quantiles = {}
        for name, values in self._samples.items():
            finite = values[np.isfinite(values)]
            if len(finite):
                quantiles[name] = {q: round(float(np.quantile(finite, p)), 4) for q, p in QUANTILES.items()}
        return MonthProfile(
            taxi=self.schema.taxi,
            month=str(self.month),
            source_url=source_url,
            rows_read=report.rows_read,
            rows_loaded=self.rows,
            rows_rejected=rows_rejected,
            rows_outside_month=report.outside_month,
            dropped_by_rule=dict(report.dropped),
            null_fraction={
                name: round(self.nulls[name] / max(self.rows, 1), 6) for name in self.schema.names
            },
            trips_per_day={day.isoformat(): count for day, count in sorted(self.days.items())},
            quantiles=quantiles,
        )
