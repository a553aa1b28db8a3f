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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.source.families import TaxiSchema
from include.source.months import Month
from include.source.transform import CleaningReport

SAMPLE_ROWS = 20_000
QUANTILES = {"p05": 0.05, "p50": 0.5, "p95": 0.95}
# The numeric columns whose quantiles are profiled, where a family has them, plus the trip time.
QUANTILE_COLUMNS = ("fare_amount", "trip_distance")
TRIP_MINUTES = "trip_minutes"
_MICROS_PER_DAY = 86_400_000_000
_EPOCH = date(1970, 1, 1)
_MAX_DAY_SPAN = 4096
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
    # Columns the file's era always has that it lacked or left empty (include.source.month_file).
    missing_columns: list[str] = field(default_factory=list)

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
        found |= {f"missing_column.{column}": 1.0 for column in self.missing_columns}
        found |= {f"{column}.{q}": value for column, qs in self.quantiles.items() for q, value in qs.items()}
        return {name: value for name, value in found.items() if value is not None and math.isfinite(value)}

    def as_json_columns(self) -> dict[str, str]:
        """The dictionary and list fields as JSON text, for a jsonb column each."""
        return {
            name: json.dumps(value, sort_keys=True)
            for name, value in asdict(self).items()
            if isinstance(value, dict | list)
        }


@dataclass
class Profiler:
    """Watches the kept batches of one file go by and builds its ``MonthProfile`` at the end."""

    schema: TaxiSchema
    month: Month
    rows: int = 0
    nulls: Counter[str] = field(default_factory=Counter)
    days: Counter[date] = field(default_factory=Counter)
    # The bottom-k sample: each kept row's key and values. New candidates pile up in lists until
    # twice SAMPLE_ROWS and are then cut back to the SAMPLE_ROWS smallest keys, not on every batch.
    _keys: list[np.ndarray] = field(default_factory=list)
    _samples: dict[str, list[np.ndarray]] = field(default_factory=dict)
    _sampled_rows: int = 0
    # Keys at or above this cannot be among the SAMPLE_ROWS smallest: the largest key kept at the
    # last cut. Lagging behind it only lets more candidates in; the cut keeps the same rows.
    _threshold: float = math.inf

    def __post_init__(self) -> None:
        # Seeded by the month, so profiling the same file twice gives the same profile.
        self._random = np.random.default_rng(self.month.year * 100 + self.month.month)
        self._sampled = [c for c in QUANTILE_COLUMNS if self.schema.has(c)] + [TRIP_MINUTES]
        self._samples = {name: [] for name in self._sampled}
        pickup, dropoff = self.schema.pickup_column, self.schema.dropoff_column
        self._sample_columns = [*(c for c in QUANTILE_COLUMNS if c in self._sampled), pickup, dropoff]

    def observe(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Pass the batches through unchanged, profiling each on the way."""
        for batch in batches:
            self._add(batch)
            yield batch

    def _add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            self.nulls[name] += column.null_count
        self._count_days(batch.column(self.schema.pickup_column))
        self._sample(batch)

    def _count_days(self, pickup: pa.Array) -> None:
        """Trips per pickup day, counted on the raw microseconds (floored to days, as a date cast)."""
        if pickup.null_count:
            pickup = pc.drop_null(pickup)
        days = pickup.cast(pa.int64()).to_numpy() // _MICROS_PER_DAY
        if not len(days):
            return
        first = int(days.min())
        # A month's pickups span a few weeks, so counting by offset beats sorting; strays from
        # years away would make the offsets huge, and then the days are sorted instead.
        if int(days.max()) - first < _MAX_DAY_SPAN:
            counts = np.bincount(days - first)
            found = np.flatnonzero(counts)
            pairs = zip((found + first).tolist(), counts[found].tolist(), strict=True)
        else:
            pairs = zip(*(part.tolist() for part in np.unique(days, return_counts=True)), strict=True)
        for day, count in pairs:
            self.days[_EPOCH + timedelta(days=day)] += count

    def _sample(self, batch: pa.RecordBatch) -> None:
        keys = self._random.random(batch.num_rows)
        chosen = np.flatnonzero(keys < self._threshold)
        if not len(chosen):
            return
        picked = batch.select(self._sample_columns).take(pa.array(chosen))
        for c in QUANTILE_COLUMNS:
            if c in self._sampled:
                self._samples[c].append(picked.column(c).to_numpy(zero_copy_only=False).astype(float))
        minutes = pc.divide(
            pc.cast(
                pc.subtract(
                    picked.column(self.schema.dropoff_column), picked.column(self.schema.pickup_column)
                ),
                pa.int64(),
            ),
            60_000_000.0,
        )
        self._samples[TRIP_MINUTES].append(minutes.to_numpy(zero_copy_only=False).astype(float))
        self._keys.append(keys[chosen])
        self._sampled_rows += len(chosen)
        if self._sampled_rows >= (SAMPLE_ROWS if math.isinf(self._threshold) else 2 * SAMPLE_ROWS):
            self._cut()

    def _cut(self) -> None:
        """Keep the ``SAMPLE_ROWS`` rows with the smallest keys."""
        keys = np.concatenate(self._keys) if self._keys else np.empty(0)
        samples = {
            name: np.concatenate(arrays) if arrays else np.empty(0) for name, arrays in self._samples.items()
        }
        if len(keys) > SAMPLE_ROWS:
            keep = np.argpartition(keys, SAMPLE_ROWS - 1)[:SAMPLE_ROWS]
            keys, samples = keys[keep], {name: array[keep] for name, array in samples.items()}
        if len(keys) >= SAMPLE_ROWS:
            self._threshold = float(keys.max())
        self._keys, self._samples, self._sampled_rows = (
            [keys],
            {k: [v] for k, v in samples.items()},
            len(keys),
        )

    def profile(
        self,
        report: CleaningReport,
        rows_rejected: int,
        source_url: str,
        missing_columns: Sequence[str] = (),
    ) -> MonthProfile:
        """The profile of everything observed, with the cleaning report of the same stream."""
        self._cut()
        quantiles = {}
        for name, [values] in self._samples.items():
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
            missing_columns=list(missing_columns),
        )
