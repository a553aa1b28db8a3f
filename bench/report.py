"""What a benchmark run found: per-method results, the verdict on each target of issue 7, the table.

Ratios compare median seconds on the same input (``limit seconds / method seconds``), so 1.0 means
as fast as the limit and 10 means ten times faster than the course's method. For the Postgres
methods this is the rows/s ratio, as they load the same rows; the Parquet methods read the same
file but ours writes only the rows the cleaning keeps, so seconds are the fair comparison there.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

# The methods the targets compare, by key.
OURS_POSTGRES = "ours_postgres_x1"
PSQL_COPY = "psql_copy"
COURSE = "course_to_sql"
OURS_PARQUET = "ours_parquet"
PLAIN_PARQUET = "plain_parquet"


def scaled_key(factor: int) -> str:
    """The key of ours loading the month repeated ``factor`` times (``OURS_POSTGRES`` for 1)."""
    return f"ours_postgres_x{factor}"


# Issue 7's targets.
MIN_RATIO_TO_COPY = 0.8
MIN_RATIO_TO_COURSE = 10.0
MIN_PARQUET_RATIO = 0.7
MAX_RSS_GROWTH_MB = 50.0
MAX_RSS_MB = 400.0
MAX_DAG_PARSE_SECONDS = 1.0


@dataclass
class MethodResult:
    """Every run of one method on one input, and the methods it is compared with."""

    key: str
    label: str
    rows: int
    seconds: list[float]
    peak_rss_mb: list[float]
    limit_key: str | None = None
    course_key: str | None = None

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.median_seconds

    @property
    def max_rss_mb(self) -> float:
        """The highest peak of all runs: memory is judged by the worst run, not a typical one."""
        return max(self.peak_rss_mb)


def speedup(results: dict[str, MethodResult], key: str, baseline_key: str) -> float:
    """How many times faster ``key`` ran than ``baseline_key`` on the same input."""
    return results[baseline_key].median_seconds / results[key].median_seconds


def ratio(results: dict[str, MethodResult], key: str, baseline_key: str | None) -> float | None:
    """``speedup`` against a baseline, or None for a method that has no such baseline."""
    return None if baseline_key is None else speedup(results, key, baseline_key)


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, with the measured value it was judged on."""

    name: str
    value: float
    target: float
    passed: bool
    detail: str


def evaluate(results: dict[str, MethodResult], factors: tuple[int, ...], dag_parse: dict) -> list[Target]:
    """Judge every target of issue 7 on one run's results; ``factors`` are the memory sizes."""
    to_copy = speedup(results, OURS_POSTGRES, PSQL_COPY)
    to_course = speedup(results, OURS_POSTGRES, COURSE)
    parquet = speedup(results, OURS_PARQUET, PLAIN_PARQUET)
    memory_keys = [scaled_key(factor) for factor in factors]
    peaks = [results[key].max_rss_mb for key in memory_keys]
    growth = max(peaks) - peaks[0]
    heavy = {
        name: file["heavy_modules"] for name, file in dag_parse["files"].items() if file["heavy_modules"]
    }
    by_size = ", ".join(
        f"{results[key].max_rss_mb:.0f} MB at {results[key].rows:,} rows" for key in memory_keys
    )
    return [
        Target(
            "postgres_vs_copy",
            to_copy,
            MIN_RATIO_TO_COPY,
            to_copy >= MIN_RATIO_TO_COPY,
            f"API -> Postgres at {to_copy:.2f}x the speed of psql \\copy (target >= {MIN_RATIO_TO_COPY}x)",
        ),
        Target(
            "postgres_vs_course",
            to_course,
            MIN_RATIO_TO_COURSE,
            to_course >= MIN_RATIO_TO_COURSE,
            f"API -> Postgres at {to_course:.1f}x the speed of pandas to_sql "
            f"(target >= {MIN_RATIO_TO_COURSE:g}x)",
        ),
        Target(
            "parquet_vs_plain",
            parquet,
            MIN_PARQUET_RATIO,
            parquet >= MIN_PARQUET_RATIO,
            f"API -> Parquet at {parquet:.2f}x the speed of plain pyarrow (target >= {MIN_PARQUET_RATIO}x)",
        ),
        Target(
            "load_memory_flat",
            growth,
            MAX_RSS_GROWTH_MB,
            growth < MAX_RSS_GROWTH_MB and max(peaks) < MAX_RSS_MB,
            f"load peak RSS {by_size}: grows {growth:.0f} MB "
            f"(target: grows < {MAX_RSS_GROWTH_MB:g} MB, stays < {MAX_RSS_MB:g} MB)",
        ),
        Target(
            "dag_parse",
            dag_parse["seconds"],
            MAX_DAG_PARSE_SECONDS,
            dag_parse["seconds"] < MAX_DAG_PARSE_SECONDS and not heavy and not dag_parse["import_errors"],
            f"dags/ parses in {dag_parse['seconds']:.3f} s ({len(dag_parse['dag_ids'])} DAGs), "
            f"heavy top-level imports: {heavy or 'none'}, import errors: {len(dag_parse['import_errors'])} "
            f"(target < {MAX_DAG_PARSE_SECONDS:g} s, none, none)",
        ),
    ]


def _format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown_table(results: dict[str, MethodResult]) -> str:
    """The results as a Markdown table, ready to paste into the README."""
    lines = [
        "| method | runs | rows | median s | rows/s | peak RSS MB | speed vs limit | speed vs course |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results.values():
        lines.append(
            f"| {result.label} | {len(result.seconds)} | {result.rows:,} | {result.median_seconds:.3f} "
            f"| {result.rows_per_second:,.0f} | {result.max_rss_mb:.0f} "
            f"| {_format_ratio(ratio(results, result.key, result.limit_key))} "
            f"| {_format_ratio(ratio(results, result.key, result.course_key))} |"
        )
    return "\n".join(lines)


def method_json(results: dict[str, MethodResult], result: MethodResult) -> dict:
    """One method's row of ``latest.json``: the table's values plus every run's raw numbers."""
    return {
        "key": result.key,
        "label": result.label,
        "runs": len(result.seconds),
        "rows": result.rows,
        "median_seconds": result.median_seconds,
        "rows_per_second": result.rows_per_second,
        "peak_rss_mb": result.max_rss_mb,
        "ratio_to_limit": ratio(results, result.key, result.limit_key),
        "ratio_to_course": ratio(results, result.key, result.course_key),
        "limit": result.limit_key,
        "seconds": result.seconds,
        "peak_rss_mb_per_run": result.peak_rss_mb,
    }
