"""What a benchmark run found: per-method results, the verdict on each target, the Markdown table.

Ratios compare medians of runs interleaved on the same machine in the same run: ``wall x`` is the
method's wall time over its baseline's (1.25 means 25% longer), ``speed x`` the inverse (how many
times the baseline's speed). CPU is the method's client processes; Postgres's own CPU is apart.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

# Issue 19's targets, and issue 7's for the GCS path (kept: no regression).
MAX_DAG_WALL_RATIO = 1.25
MIN_LOAD_SPEED_RATIO = 1.5
MAX_DAG_RSS_GROWTH_MB = 20.0
MAX_LOAD_RSS_MB = 300.0
MIN_GCS_SPEED_RATIO = 0.7
MAX_DAG_PARSE_SECONDS = 1.0
# Issue 27 (and issue 24's edit-run loop): what our DAG adds to Airflow's two-task floor, per
# family-month under `airflow dags test`: at most 2 s on the sample month, and on the full-size
# month at most 0.8x the plain pipe's time for the same file.
MAX_OWN_SECONDS_SAMPLE = 2.0
MAX_OWN_RATIO_FULL = 0.8

# The methods the targets compare, by key.
DAG_BIG = "dag_postgres"
DAG_SMALL = "dag_postgres_small"
DAG_FLOOR = "dag_floor"  # a two-task no-op DAG: what any run costs under `airflow dags test`
PIPE = "pipe"
LOAD = "load"
GCS_DAG = "dag_gcs"
GCS_STAGE = "gcs_stage"
GCS_PLAIN = "gcs_plain"
# dbt build of the warehouse models (issue 25) on what the DAG runs above loaded.
DBT_BIG = "dbt_build"
DBT_SMALL = "dbt_build_small"


@dataclass
class MethodResult:
    """Every run of one method on one input, and the method it is compared with."""

    key: str
    label: str
    baseline: str | None = None
    rows: int = 0
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    server_cpu_seconds: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_seconds)

    @property
    def server_cpu(self) -> float:
        return statistics.median(self.server_cpu_seconds)

    @property
    def peak(self) -> float:
        """The highest peak of all runs: memory is judged by the worst run, not a typical one."""
        return max(self.peak_rss_mb)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.wall


def wall_ratio(results: dict[str, MethodResult], key: str, baseline: str) -> float:
    return results[key].wall / results[baseline].wall


@dataclass(frozen=True)
class Target:
    """One target, with the measured value it was judged on."""

    name: str
    value: float
    target: float
    passed: bool
    detail: str


def evaluate(results: dict[str, MethodResult], dag_parse: dict) -> list[Target]:
    """Judge every target whose methods ran (all of them, unless ``bench.run --only`` chose some)."""
    targets = []
    if {DAG_BIG, PIPE} <= results.keys():
        dag = wall_ratio(results, DAG_BIG, PIPE)
        detail = (
            f"the whole DAG run takes {dag:.2f}x the plain pipe's wall time on "
            f"{results[DAG_BIG].rows:,} rows ({1 / dag:.2f}x its speed; target <= {MAX_DAG_WALL_RATIO}x)"
        )
        if DAG_FLOOR in results:
            budget = MAX_DAG_WALL_RATIO * results[PIPE].wall - results[DAG_FLOOR].wall
            floor = wall_ratio(results, DAG_FLOOR, PIPE)
            detail += (
                f"; Airflow's floor, a no-op two-task DAG run, takes {floor:.2f}x "
                f"the pipe's time, which leaves the DAG's own work {budget:.1f} s within the target"
            )
            if LOAD in results:
                detail += f", and the load function alone takes {results[LOAD].wall:.1f} s"
        targets.append(Target("dag_vs_pipe", dag, MAX_DAG_WALL_RATIO, dag <= MAX_DAG_WALL_RATIO, detail))
    if {DAG_SMALL, DAG_FLOOR} <= results.keys():
        own = results[DAG_SMALL].wall - results[DAG_FLOOR].wall
        targets.append(
            Target(
                "own_overhead_sample",
                own,
                MAX_OWN_SECONDS_SAMPLE,
                own <= MAX_OWN_SECONDS_SAMPLE,
                f"our DAG run of one family-month of {results[DAG_SMALL].rows:,} rows takes "
                f"{results[DAG_SMALL].wall:.1f} s, {own:.1f} s beyond Airflow's two-task floor "
                f"({results[DAG_FLOOR].wall:.1f} s; the edit-run loop; "
                f"target <= {MAX_OWN_SECONDS_SAMPLE:g} s); in CPU time, "
                f"{results[DAG_SMALL].cpu - results[DAG_FLOOR].cpu:.1f} s beyond the floor's",
            )
        )
    if {DAG_BIG, DAG_FLOOR, PIPE} <= results.keys():
        own = results[DAG_BIG].wall - results[DAG_FLOOR].wall
        ratio = own / results[PIPE].wall
        targets.append(
            Target(
                "own_overhead_full",
                ratio,
                MAX_OWN_RATIO_FULL,
                ratio <= MAX_OWN_RATIO_FULL,
                f"beyond Airflow's two-task floor our DAG run of {results[DAG_BIG].rows:,} rows takes "
                f"{own:.1f} s, {ratio:.2f}x the plain pipe's {results[PIPE].wall:.1f} s "
                f"(target <= {MAX_OWN_RATIO_FULL}x); in CPU time, "
                f"{results[DAG_BIG].cpu - results[DAG_FLOOR].cpu:.1f} s beyond the floor's",
            )
        )
    if {LOAD, PIPE} <= results.keys():
        load_speed = 1 / wall_ratio(results, LOAD, PIPE)
        targets.append(
            Target(
                "load_vs_pipe",
                load_speed,
                MIN_LOAD_SPEED_RATIO,
                load_speed >= MIN_LOAD_SPEED_RATIO,
                f"the load function alone runs at {load_speed:.2f}x the plain pipe's speed "
                f"(target >= {MIN_LOAD_SPEED_RATIO}x)",
            )
        )
    if {DAG_BIG, DAG_SMALL} <= results.keys():
        big, small = results[DAG_BIG], results[DAG_SMALL]
        growth = big.peak - small.peak
        targets.append(
            Target(
                "dag_memory_flat",
                growth,
                MAX_DAG_RSS_GROWTH_MB,
                growth < MAX_DAG_RSS_GROWTH_MB,
                f"the DAG run's largest process peaks at {small.peak:.0f} MB on {small.rows:,} rows and "
                f"{big.peak:.0f} MB on {big.rows:,}: grows {growth:.0f} MB "
                f"(target < {MAX_DAG_RSS_GROWTH_MB:g} MB)",
            )
        )
    if LOAD in results:
        load = results[LOAD]
        targets.append(
            Target(
                "load_memory",
                load.peak,
                MAX_LOAD_RSS_MB,
                load.peak < MAX_LOAD_RSS_MB,
                f"the load function alone peaks at {load.peak:.0f} MB on {load.rows:,} rows "
                f"(target < {MAX_LOAD_RSS_MB:g} MB)",
            )
        )
    if {GCS_STAGE, GCS_PLAIN} <= results.keys():
        gcs_speed = 1 / wall_ratio(results, GCS_STAGE, GCS_PLAIN)
        targets.append(
            Target(
                "gcs_vs_plain",
                gcs_speed,
                MIN_GCS_SPEED_RATIO,
                gcs_speed >= MIN_GCS_SPEED_RATIO,
                f"the GCS load alone (stage) runs at {gcs_speed:.2f}x the speed of plain pyarrow "
                f"CSV -> Parquet + one upload (target >= {MIN_GCS_SPEED_RATIO}x, issue 7's)",
            )
        )
    heavy = {
        name: file["heavy_modules"] for name, file in dag_parse["files"].items() if file["heavy_modules"]
    }
    targets.append(
        Target(
            "dag_parse",
            dag_parse["seconds"],
            MAX_DAG_PARSE_SECONDS,
            dag_parse["seconds"] < MAX_DAG_PARSE_SECONDS and not heavy and not dag_parse["import_errors"],
            f"dags/ parses in {dag_parse['seconds']:.3f} s ({len(dag_parse['dag_ids'])} DAGs), "
            f"heavy top-level imports: {heavy or 'none'}, import errors: {len(dag_parse['import_errors'])} "
            f"(target < {MAX_DAG_PARSE_SECONDS:g} s, none, none)",
        )
    )
    return targets


def _ratio(results: dict[str, MethodResult], result: MethodResult) -> tuple[str, str]:
    if result.baseline in (None, result.key) or result.baseline not in results:
        return "-", "-"
    ratio = wall_ratio(results, result.key, result.baseline)
    return f"{ratio:.2f}", f"{1 / ratio:.2f}"


def markdown_table(results: dict[str, MethodResult]) -> str:
    """The results as a Markdown table, ready to paste into bench/README.md."""
    lines = [
        "| method | runs | rows | wall s | rows/s | CPU s | Postgres CPU s | peak RSS MB | vs "
        "| wall x | speed x |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for result in results.values():
        wall_x, speed_x = _ratio(results, result)
        baseline = result.baseline if result.baseline not in (None, result.key) else "-"
        lines.append(
            f"| {result.label} | {len(result.seconds)} | {result.rows:,} | {result.wall:.2f} "
            f"| {result.rows_per_second:,.0f} | {result.cpu:.2f} | {result.server_cpu:.2f} "
            f"| {result.peak:.0f} | {baseline} | {wall_x} | {speed_x} |"
        )
    return "\n".join(lines)


def method_json(results: dict[str, MethodResult], result: MethodResult) -> dict:
    """One method's row of ``latest.json``: the table's values plus every run's raw numbers."""
    wall_x, speed_x = _ratio(results, result)
    return {
        "key": result.key,
        "label": result.label,
        "runs": len(result.seconds),
        "rows": result.rows,
        "median_seconds": result.wall,
        "rows_per_second": result.rows_per_second,
        "median_cpu_seconds": result.cpu,
        "median_postgres_cpu_seconds": result.server_cpu,
        "peak_rss_mb": result.peak,
        "baseline": result.baseline,
        "wall_ratio": None if wall_x == "-" else float(wall_x),
        "speed_ratio": None if speed_x == "-" else float(speed_x),
        "seconds": result.seconds,
        "cpu_seconds": result.cpu_seconds,
        "postgres_cpu_seconds": result.server_cpu_seconds,
        "peak_rss_mb_per_run": result.peak_rss_mb,
    }
