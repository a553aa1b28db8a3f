"""Read a TLC CSV file as Arrow record batches with the colour's explicit schema.

The file is parsed block by block, so memory stays bounded by the block size whatever the month's
size. Types come from ``include.schema``, never from inference, so a month whose ``ehail_fee`` is
empty reads with the same types as a month where it is filled.

Files that are not what they claim to be (empty, not gzip, truncated, missing a column) fail at
once with the file's name. Rows that cannot be read are not dropped silently: with a ``Rejects``
collector, a row with a value that does not parse as its column's type, or with the wrong number
of fields, is set aside with its line number and the reason, and the rest of the file is read.
More than ``MAX_REJECTED_FRACTION`` of such rows means the file itself is wrong (a shifted
column, a new layout), so the read fails at the end of the stream, before a loader commits.
"""

from __future__ import annotations

import csv
import gzip
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from include.progress import EVERY_SECONDS, Progress
from include.schema import TaxiSchema

log = logging.getLogger(__name__)

# Arrow's streaming reader reads up to 32 blocks ahead of the consumer (ARROW-12090), so the block
# size bounds memory: 512 KiB keeps the read-ahead under 16 MB whatever the month's size, and the
# small first block starts the COPY to Postgres sooner, so reading and loading overlap.
BLOCK_BYTES = 512 << 10
MAX_REJECTED_FRACTION = 0.01
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class RejectedRow:
    """A row that could not be read: its line in the file (the header is line 1), why, and its text."""

    line: int
    reason: str
    text: str


@dataclass
class Rejects:
    """The rows of one file set aside while reading it, filled as the stream is consumed."""

    file_name: str
    rows: list[RejectedRow] = field(default_factory=list)
    max_fraction: float = MAX_REJECTED_FRACTION

    def in_line_order(self) -> list[RejectedRow]:
        return sorted(self.rows, key=lambda row: row.line)

    def describe(self) -> str:
        if not self.rows:
            return f"{self.file_name}: every row was readable"
        first = self.in_line_order()[0]
        return (
            f"{self.file_name}: set aside {len(self.rows)} unreadable row(s); "
            f"first at line {first.line}: {first.reason}"
        )

    def check(self, rows_read: int) -> None:
        """Fail when the rejected rows are more than ``max_fraction`` of all rows of the file."""
        total = rows_read + len(self.rows)
        if total and len(self.rows) / total > self.max_fraction:
            first = self.in_line_order()[0]
            raise ValueError(
                f"{self.file_name}: {len(self.rows)} of {total} rows could not be read, more than the "
                f"{self.max_fraction:.0%} allowed; first at line {first.line}: {first.reason}"
            )

    def write_csv(self, path: Path) -> None:
        """The rejected rows as CSV (``line,reason,text``), for a rejects file next to the data."""
        with path.open("w", newline="", encoding="utf-8") as sink:
            writer = csv.writer(sink)
            writer.writerow(["line", "reason", "text"])
            writer.writerows((row.line, row.reason, row.text) for row in self.in_line_order())


def check_file(path: Path) -> None:
    """Fail naming the file when it is empty or, for ``.gz``, not gzip (e.g. an HTML error page)."""
    with path.open("rb") as source:
        head = source.read(64)
    if not head:
        raise ValueError(f"{path.name} is empty (0 bytes)")
    if path.suffix == ".gz" and not head.startswith(_GZIP_MAGIC):
        looks_like = "an HTML page" if head.lstrip().startswith(b"<") else "not gzip data"
        raise ValueError(
            f"{path.name} is not gzip-compressed: it starts with {head[:40]!r}, {looks_like}; "
            "the server sent something other than the TLC file"
        )


def read_header(path: Path) -> list[str]:
    """The column names on the first line of a plain or gzip-compressed CSV file."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as source:
            line = source.readline().rstrip("\r\n")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name}: cannot read the header line: {error}") from error
    if not line:
        raise ValueError(f"{path.name} has no header line")
    return [name.strip().strip('"') for name in line.split(",")]


def check_header(path: Path, schema: TaxiSchema) -> None:
    """Fail naming the file and the columns when a declared column is absent; warn on extra ones.

    Extra columns (the TLC added ``airport_fee`` to later yellow files) are not part of the declared
    schema, so they are left out of every destination rather than changing its shape.
    """
    header = read_header(path)
    missing = [name for name in schema.source_names if name not in header]
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {', '.join(missing)}; header is {header}")
    extra = [name for name in header if name not in schema.source_names]
    if extra:
        log.warning("%s: ignoring column(s) not in the %s schema: %s", path.name, schema.colour, extra)


def iter_batches(
    path: Path,
    schema: TaxiSchema,
    rejects: Rejects | None = None,
    block_bytes: int = BLOCK_BYTES,
    progress_every_seconds: float = EVERY_SECONDS,
) -> Iterator[pa.RecordBatch]:
    """Yield the file's rows as record batches with exactly the schema's columns, types and order.

    Without ``rejects``, the first unreadable value fails the read with the file name, the column
    and the row in the message (pyarrow's ``ArrowInvalid`` is a ``ValueError``). With it, such rows
    are set aside into ``rejects`` and the read goes on; ``Rejects.check`` runs at the end. The
    batches are read as fast as the caller takes them, so the progress lines (rows, rate, time
    left) measure the whole load.
    """
    check_file(path)
    check_header(path, schema)
    progress = Progress(f"Reading {path.name}", path.stat().st_size, progress_every_seconds)
    rows = 0
    try:
        with pa.OSFile(str(path)) as raw:
            for batch in _typed_batches(raw, path.suffix == ".gz", schema, block_bytes):
                rows += batch.num_rows
                progress.update(raw.tell(), rows)
                yield batch
    except pa.ArrowInvalid as error:
        if rejects is None:
            raise ValueError(f"{path.name}: {error}") from error
        # The fast typed reader stops at the first bad row; the rest is read as text and checked
        # value by value, which is slower but only ever runs for such files.
        log.warning("%s: %s; setting unreadable rows aside from here on", path.name, error)
        for batch in _checked_batches(path, schema, block_bytes, rows, rejects):
            rows += batch.num_rows
            yield batch
    except OSError as error:
        raise ValueError(f"{path.name} is truncated or corrupt: {error}") from error
    progress.finish(path.stat().st_size, rows)
    if rejects is not None:
        if rejects.rows:
            log.warning("%s", rejects.describe())
        rejects.check(rows)


def _typed_batches(
    raw: pa.NativeFile, gzipped: bool, schema: TaxiSchema, block_bytes: int
) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        pa.CompressedInputStream(raw, "gzip") if gzipped else raw,
        read_options=pacsv.ReadOptions(block_size=block_bytes),
        convert_options=pacsv.ConvertOptions(
            column_types=schema.arrow_schema,
            include_columns=schema.source_names,
            strings_can_be_null=True,
        ),
    )


def _checked_batches(
    path: Path, schema: TaxiSchema, block_bytes: int, skip_rows: int, rejects: Rejects
) -> Iterator[pa.RecordBatch]:
    """Read the file as text from row ``skip_rows`` on, setting aside rows that do not convert."""
    malformed_lines: list[int] = []

    def set_aside(row: pacsv.InvalidRow) -> str:
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        rejects.rows.append(RejectedRow(row.number, reason, row.text))
        malformed_lines.append(row.number)
        return "skip"

    reader = pacsv.open_csv(
        path,
        # Single-threaded, so each malformed row comes with its line number.
        read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=set_aside),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(schema.source_names, pa.string()),
            include_columns=schema.source_names,
            strings_can_be_null=True,
        ),
    )
    start = 0
    for text in reader:
        end = start + text.num_rows
        if end > skip_rows:
            text = text.slice(max(skip_rows - start, 0))
            first = max(start, skip_rows)
            yield _converted(text, schema, _line_numbers(first, text.num_rows, malformed_lines), rejects)
        start = end


def _line_numbers(first_row: int, count: int, malformed_lines: list[int]) -> np.ndarray:
    """File line numbers of parsed rows ``first_row...``: row 0 is line 2, malformed lines skipped."""
    lines = np.arange(first_row, first_row + count) + 2
    for skipped in sorted(malformed_lines):
        lines[lines >= skipped] += 1
    return lines


def _converted(
    text: pa.RecordBatch, schema: TaxiSchema, lines: np.ndarray, rejects: Rejects
) -> pa.RecordBatch:
    """Convert a batch of text columns to the schema's types, setting aside rows that do not convert."""
    readable = np.ones(text.num_rows, dtype=bool)
    reasons: dict[int, list[str]] = {}
    columns = []
    for target in schema.arrow_schema:
        values = text.column(target.name)
        try:
            columns.append(pc.cast(values, target.type))
            continue
        except pa.ArrowInvalid:
            pass
        converted = []
        for i, value in enumerate(values.to_pylist()):
            try:
                converted.append(None if value is None else pa.scalar(value).cast(target.type).as_py())
            except pa.ArrowInvalid:
                converted.append(None)
                readable[i] = False
                reasons.setdefault(i, []).append(f"{target.name}: {value!r} is not a valid {target.type}")
        columns.append(pa.array(converted, target.type))
    for i in np.flatnonzero(~readable):
        row_text = ",".join("" if v is None else v for v in text.slice(i, 1).to_pylist()[0].values())
        rejects.rows.append(RejectedRow(int(lines[i]), "; ".join(reasons[i]), row_text))
    batch = pa.RecordBatch.from_arrays(columns, schema=schema.arrow_schema)
    return batch if readable.all() else batch.filter(pa.array(readable))


def read_csv_batches(
    path: Path, columns: pa.Schema, block_bytes: int = BLOCK_BYTES
) -> Iterator[pa.RecordBatch]:
    """Yield a header-less CSV (what ``COPY ... TO STDOUT`` writes) as batches of ``columns``."""
    yield from pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_bytes, column_names=columns.names),
        convert_options=pacsv.ConvertOptions(column_types=columns, strings_can_be_null=True),
    )
