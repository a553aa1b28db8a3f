"""The measured methods, each run in a fresh interpreter: ``python -m bench.methods NAME PARAMS``.

A fresh process per run keeps one method's imports and allocations out of another's peak RSS.
Each method's setup (imports, connection strings) runs before the clock starts; the work it
returns is what is timed. The child prints its row count, seconds and peak RSS as one JSON line.

Peak RSS is the largest process's high-water mark: this interpreter's own ``VmHWM`` (the peak of
its image since ``exec``), or a child's ``ru_maxrss`` for ``psql``. The parent's ``wait4`` would
not do: a forked child inherits the parent's high-water mark, so every method would show at
least the benchmark runner's own memory.

PARAMS is a JSON object: ``input`` (the CSV file), and ``uri`` and ``schema`` for the Postgres
methods or ``output`` (the Parquet file) for the Parquet ones; ``psql_copy`` takes the client's
path, the URI and the ``\\copy`` statement.
"""

from __future__ import annotations

import json
import re
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

from include.months import Month

TAXI = "green"
MONTH = Month(2020, 10)
TABLE = "green_taxi_trips"
COURSE_CHUNKSIZE = 100_000

Work = Callable[[], int]


def psql_copy(params: dict[str, str]) -> Work:
    """The practical limit: ``psql \\copy`` of a CSV that already holds the cleaned rows.

    Timed from starting ``psql`` to its exit, so it includes connecting, as ours does.
    """
    import subprocess

    command = [params["psql"], "-X", "-v", "ON_ERROR_STOP=1", "-d", params["uri"], "-c", params["statement"]]

    def work() -> int:
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return int(re.fullmatch(r"COPY (\d+)", output.strip())[1])

    return work


def ours_postgres(params: dict[str, str]) -> Work:
    """What ``taxi_api_to_postgres.extract_load`` runs once the file is downloaded."""
    import psycopg

    from include.flows.taxi_api_to_postgres import load_month_to_postgres
    from include.sources import MonthRequest

    request = MonthRequest(TAXI, MONTH)

    def work() -> int:
        with psycopg.connect(params["uri"]) as conn:
            return load_month_to_postgres(conn, Path(params["input"]), request, params["schema"]).rows_loaded

    return work


def course_postgres(params: dict[str, str]) -> Work:
    """The course's ingestion: the whole file into a DataFrame, then ``to_sql`` in chunks of 100,000.

    It applies the same two cleaning rules and adds ``source_month``, so it loads exactly the rows
    ours loads and the throughputs compare like for like.
    """
    import pandas as pd
    import sqlalchemy

    from include.postgres import SOURCE_MONTH_COLUMN
    from include.schema import SNAKE_CASE_RENAMES, schema_for

    schema = schema_for(TAXI)
    timestamps = [column.source_name for column in schema.columns if column.kind == "timestamp"]
    engine = sqlalchemy.create_engine(params["uri"].replace("postgresql://", "postgresql+psycopg://", 1))

    def work() -> int:
        frame = pd.read_csv(params["input"], parse_dates=timestamps)
        frame = frame[frame[schema.pickup_column].notna() & (frame["passenger_count"] != 0)]
        frame = frame.rename(columns=SNAKE_CASE_RENAMES).assign(**{SOURCE_MONTH_COLUMN: MONTH.first_day})
        frame.to_sql(
            TABLE,
            engine,
            schema=params["schema"],
            if_exists="replace",
            index=False,
            chunksize=COURSE_CHUNKSIZE,
            method=None,
        )
        return len(frame)

    return work


def ours_parquet(params: dict[str, str]) -> Work:
    """The Parquet step of ``taxi_api_to_gcs``: stream, clean and write the month as one file."""
    from include.extract import iter_batches
    from include.parquet import write_parquet
    from include.schema import schema_for
    from include.transform import MONTHLY_RULES, CleaningReport, clean

    schema = schema_for(TAXI)

    def work() -> int:
        batches = clean(iter_batches(Path(params["input"]), schema), schema, MONTHLY_RULES, CleaningReport())
        return write_parquet(batches, schema.arrow_schema, Path(params["output"]))

    return work


def plain_parquet(params: dict[str, str]) -> Work:
    """The plainest pyarrow conversion: read the whole CSV with inferred types, write it as Parquet."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    def work() -> int:
        table = pacsv.read_csv(params["input"])
        pq.write_table(table, params["output"])
        return table.num_rows

    return work


METHODS: dict[str, Callable[[dict[str, str]], Work]] = {
    "psql_copy": psql_copy,
    "ours_postgres": ours_postgres,
    "course_postgres": course_postgres,
    "ours_parquet": ours_parquet,
    "plain_parquet": plain_parquet,
}


def peak_rss_mb() -> float:
    """The larger of this process's peak RSS since ``exec`` and its largest child's."""
    status = Path("/proc/self/status").read_text()
    own_kb = int(re.search(r"^VmHWM:\s*(\d+) kB", status, re.MULTILINE)[1])
    return max(own_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def main(argv: list[str]) -> None:
    name, params = argv[1], json.loads(argv[2])
    work = METHODS[name](params)
    started = time.perf_counter()
    rows = work()
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main(sys.argv)
