"""The benchmark's inputs, all made from the real green 2020-10 file shipped in ``data/tlc``.

Bigger months are the real rows repeated behind the one header, so a 10x month has the same value
distribution, cleaning outcome and compression ratio as the real one, only more of it. The
``psql \\copy`` baseline reads the cleaned month as CSV: exactly the rows and columns ours sends.
"""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from bench.methods import MONTH, TAXI
from include.extract import iter_batches
from include.postgres import SOURCE_MONTH_COLUMN
from include.schema import schema_for
from include.transform import MONTHLY_RULES, CleaningReport, clean

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "data" / "tlc" / "green" / "green_tripdata_2020-10.csv.gz"


def scaled_month(folder: Path, factor: int, first_rows: int | None) -> Path:
    """The source's first ``first_rows`` data rows (all if None) repeated ``factor`` times, gzipped.

    The real file itself is returned when nothing changes, so the 1x full-size run reads the very
    file the DAG would download. Files are rewritten on every run: they take seconds and can never
    be stale.
    """
    if factor == 1 and first_rows is None:
        return SOURCE
    suffix = f"_first{first_rows}" if first_rows is not None else ""
    target = folder / f"{SOURCE.name.removesuffix('.csv.gz')}{suffix}_x{factor}.csv.gz"
    with gzip.open(SOURCE, "rb") as source:
        header = source.readline()
        body = b"".join(itertools.islice(source, first_rows))
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(target, "wb") as sink:
        sink.write(header)
        for _ in range(factor):
            sink.write(body)
    return target


def cleaned_csv(month_file: Path, target: Path) -> int:
    """Write the rows ours keeps from ``month_file`` as header-less CSV in the table's column order.

    The cleaning is include's own and the CSV is pyarrow's, as in the COPY stream ours sends, so
    ``psql \\copy`` of this file costs Postgres what ours costs it, minus reading and cleaning.
    Returns the number of rows written.
    """
    schema = schema_for(TAXI)
    columns = schema.arrow_schema.append(pa.field(SOURCE_MONTH_COLUMN, pa.date32()))
    source_month = pa.scalar(MONTH.first_day, pa.date32())
    report = CleaningReport()
    options = pacsv.WriteOptions(include_header=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    with pacsv.CSVWriter(target, columns, write_options=options) as writer:
        for batch in clean(iter_batches(month_file, schema), schema, MONTHLY_RULES, report):
            writer.write_batch(
                batch.append_column(columns.field(-1), pa.repeat(source_month, batch.num_rows))
            )
    return report.rows_kept
