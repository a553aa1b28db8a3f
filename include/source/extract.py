"""Read a TLC file, CSV (the course's mirror) or Parquet (the TLC), as Arrow record batches with
the family's declared schema.

Both formats are read in bounded memory: CSV block by block, Parquet row group by row group.
Types come from ``include.source.families``, never from the file: a CSV column is parsed as its declared
type, a Parquet column cast to it (the TLC stores zone ids as ``int32``, flags as
``large_string``), so every month of a family comes out identical whatever the source.

Columns are matched by name ignoring case and a leading byte-order mark, and by the older
spellings the schema lists; every match that needed that is reported. A declared column the file
does not have (a column the TLC added later) comes out as nulls and is reported; a column the
file has and the schema does not declare is reported and left out. Only a missing pickup time
fails the file.

Files that are not what they claim to be (empty, not gzip or Parquet, truncated, a column whose
values do not convert) fail at once with the file's name. CSV rows that cannot be read are not
dropped silently: with a ``Rejects`` collector, a row with a value that does not parse as its
column's type, or with the wrong number of fields, is set aside with its line number and the
reason, and the rest of the file is read. More than ``MAX_REJECTED_FRACTION`` of such rows means
the file itself is wrong (a shifted column, a new layout), so the read fails at the end of the
stream, before a loader commits.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from include.errors import InvalidFileError
from include.observing.progress import EVERY_SECONDS, Progress
from include.source.families import TaxiSchema

log = logging.getLogger(__name__)

# Arrow's streaming reader reads up to 32 blocks ahead of the consumer (ARROW-12090), so the block
# size bounds memory: 128 KiB keeps the read-ahead under 4 MB whatever the month's size. The
# blocks are then combined into batches of BATCH_ROWS, so the steps after reading stay cheap.
BLOCK_BYTES = 128 << 10
# Rows per batch handed on (see ``iter_batches``): about 3 MB of Arrow data for a yellow month.
BATCH_ROWS = 16_000
MAX_REJECTED_FRACTION = 0.01
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_BYTE_ORDER_MARK = "\ufeff"
# Parquet is read a batch of BATCH_ROWS at a time, in 1 MiB reads, one column after another: on the
# TLC's row groups (up to ~1M rows) pyarrow's defaults (the whole row group pre-buffered, columns
# decoded in threads, 64Ki-row batches) held 256 MB more at 20 million rows than at 25,000; these
# hold 34 MB more, and use less CPU (bench/fhvhv.py).
PARQUET_READ_BYTES = 1 << 20


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
            raise InvalidFileError(
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
    """Fail naming the file when it is empty, or not the gzip or Parquet data its name says."""
    with path.open("rb") as source:
        head = source.read(64)
    if not head:
        raise InvalidFileError(f"{path.name} is empty (0 bytes)")
    expected = {
        ".gz": (_GZIP_MAGIC, "gzip-compressed", "gzip"),
        ".parquet": (_PARQUET_MAGIC, "a Parquet file", "Parquet"),
    }
    magic, what, format_name = expected.get(path.suffix, (b"", "", ""))
    if not head.startswith(magic):
        looks_like = "an HTML page" if head.lstrip().startswith(b"<") else f"not {format_name} data"
        raise InvalidFileError(
            f"{path.name} is not {what}: it starts with {head[:40]!r}, {looks_like}; "
            "the server sent something other than the TLC file"
        )


def read_header(path: Path) -> list[str]:
    """The column names on the first line of a plain or gzip-compressed CSV file, without a BOM."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as source:
            line = source.readline().rstrip("\r\n")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise InvalidFileError(f"{path.name}: cannot read the header line: {error}") from error
    if not line.removeprefix(_BYTE_ORDER_MARK):
        raise InvalidFileError(f"{path.name} has no header line")
    [names] = csv.reader(io.StringIO(line.removeprefix(_BYTE_ORDER_MARK)))
    return [name.strip() for name in names]


@dataclass(frozen=True)
class ColumnMatch:
    """How a file's columns map to the declared ones."""

    file_name: str
    header: list[str]
    # Declared name -> the file's column, for every declared column the file has.
    matched: dict[str, str]
    # Declared columns the file lacks (they load as nulls), and file columns not declared (left out).
    missing: list[str]
    extra: list[str]
    # (the file's spelling, the declared column) where case or an older spelling had to be matched.
    respelled: list[tuple[str, str]]

    def report(self) -> None:
        if self.respelled:
            pairs = ", ".join(f"{found} → {name}" for found, name in self.respelled)
            log.info("%s: matched column(s) by case or an older spelling: %s", self.file_name, pairs)
        if self.missing:
            # Usual for older months (the TLC added columns over the years), so not a warning.
            log.info("%s: no column(s) %s in the file; they load as nulls", self.file_name, self.missing)
        if self.extra:
            log.warning("%s: ignoring column(s) not in the declared schema: %s", self.file_name, self.extra)


def match_columns(file_name: str, header: list[str], schema: TaxiSchema) -> ColumnMatch:
    """Match a file's column names to the schema's, ignoring case; fail if a required one is absent."""
    by_folded = {name.removeprefix(_BYTE_ORDER_MARK).strip().casefold(): name for name in header}
    matched, missing, respelled = {}, [], []
    for column in schema.columns:
        found = next(
            (by_folded[s.casefold()] for s in column.source_names if s.casefold() in by_folded), None
        )
        if found is None:
            missing.append(column.name)
            continue
        matched[column.name] = found
        if found not in column.source_names:
            respelled.append((found, column.name))
    absent = [c.source_name for c in schema.columns if c.required and c.name in missing]
    if absent:
        raise InvalidFileError(f"{file_name}: missing column(s) {', '.join(absent)}; header is {header}")
    extra = [name for name in header if name not in matched.values()]
    return ColumnMatch(file_name, list(header), matched, missing, extra, respelled)


def _conformed(batch: pa.RecordBatch, match: ColumnMatch, declared: pa.Schema) -> pa.RecordBatch:
    """The batch with the declared columns in order, snake_case names, and nulls for missing ones.

    ``declared`` is the schema's ``arrow_schema``, built once per file rather than per batch.
    """
    arrays = [
        batch.column(match.matched[field.name])
        if field.name in match.matched
        else pa.nulls(batch.num_rows, field.type)
        for field in declared
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=declared)


@dataclass
class _Pending:
    """Conformed CSV blocks waiting to be combined into one batch of at least ``rows`` rows."""

    rows: int
    blocks: list[pa.RecordBatch] = field(default_factory=list)
    count: int = 0

    def add(self, block: pa.RecordBatch) -> bool:
        """Keep ``block``; True once there are enough rows for a batch."""
        self.blocks.append(block)
        self.count += block.num_rows
        return self.count >= self.rows

    def take(self) -> pa.RecordBatch:
        blocks, self.blocks, self.count = self.blocks, [], 0
        return blocks[0] if len(blocks) == 1 else pa.concat_batches(blocks)


def iter_batches(
    path: Path,
    schema: TaxiSchema,
    rejects: Rejects | None = None,
    block_bytes: int = BLOCK_BYTES,
    progress_every_seconds: float = EVERY_SECONDS,
    batch_rows: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the file's rows as record batches with exactly the schema's columns, types and order.

    CSV blocks are combined into batches of at least ``batch_rows`` rows (``BATCH_ROWS`` by
    default): each step after reading costs a fixed overhead per batch, so small blocks keep the
    reader's read-ahead small while large batches keep the steps after it cheap.

    ``.parquet`` files are read as Parquet, anything else as CSV (gzip-compressed for ``.gz``).
    For CSV without ``rejects``, the first unreadable value fails the read with the file name,
    the column and the row in the message. With it, such rows are set aside into ``rejects`` and
    the read goes on; ``Rejects.check`` runs at the end. The batches are read as fast as the
    caller takes them, so the progress lines (rows, rate, time left) measure the whole load.
    """
    check_file(path)
    progress = Progress(f"Reading {path.name}", path.stat().st_size, progress_every_seconds)
    if path.suffix == ".parquet":
        yield from _parquet_batches(path, schema, progress)
        return
    match = match_columns(path.name, read_header(path), schema)
    match.report()
    rows, declared, pending = 0, schema.arrow_schema, _Pending(batch_rows or BATCH_ROWS)
    try:
        with pa.OSFile(str(path)) as raw:
            for block in _typed_batches(raw, path.suffix == ".gz", match, schema, block_bytes):
                rows += block.num_rows
                progress.update(raw.tell(), rows)
                if pending.add(_conformed(block, match, declared)):
                    yield pending.take()
        if pending.blocks:
            yield pending.take()
    except pa.ArrowInvalid as error:
        if rejects is None:
            raise InvalidFileError(f"{path.name}: {error}") from error
        # The fast typed reader stops at the first bad row; the rest is read as text and checked
        # value by value, which is slower but only ever runs for such files.
        log.warning("%s: %s; setting unreadable rows aside from here on", path.name, error)
        if pending.blocks:
            yield pending.take()
        for batch in _checked_batches(path, match, schema, block_bytes, rows, rejects):
            rows += batch.num_rows
            yield batch
    except OSError as error:
        raise InvalidFileError(f"{path.name} is truncated or corrupt: {error}") from error
    progress.finish(path.stat().st_size, rows)
    if rejects is not None:
        if rejects.rows:
            log.warning("%s", rejects.describe())
        rejects.check(rows)


def _parquet_batches(path: Path, schema: TaxiSchema, progress: Progress) -> Iterator[pa.RecordBatch]:
    """A Parquet file's row groups as batches, each column cast to its declared type."""
    try:
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_READ_BYTES)
    except (pa.ArrowInvalid, OSError) as error:
        raise InvalidFileError(f"{path.name} is truncated or corrupt: {error}") from error
    match = match_columns(path.name, parquet.schema_arrow.names, schema)
    match.report()
    conformed_schema = schema.arrow_schema
    declared = {field.name: field.type for field in conformed_schema}
    total, rows = parquet.metadata.num_rows, 0
    try:
        for batch in parquet.iter_batches(
            batch_size=BATCH_ROWS, columns=list(match.matched.values()), use_threads=False
        ):
            columns = {}
            for name, found in match.matched.items():
                values = batch.column(found)
                try:
                    columns[found] = values.cast(declared[name])
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                    raise InvalidFileError(
                        f"{path.name}: column {found} holds {values.type} values that do not convert "
                        f"to the declared {declared[name]}: {error}"
                    ) from error
            rows += batch.num_rows
            progress.update(int(path.stat().st_size * rows / max(total, 1)), rows)
            yield _conformed(pa.RecordBatch.from_pydict(columns), match, conformed_schema)
    except (pa.ArrowInvalid, OSError) as error:
        raise InvalidFileError(f"{path.name} is truncated or corrupt: {error}") from error
    progress.finish(path.stat().st_size, rows)


def _csv_read_options(match: ColumnMatch, **options) -> pacsv.ReadOptions:
    """The header is read by ``read_header``: Arrow gets clean names, without a byte-order mark."""
    return pacsv.ReadOptions(column_names=match.header, skip_rows=1, **options)


def _typed_batches(
    raw: pa.NativeFile, gzipped: bool, match: ColumnMatch, schema: TaxiSchema, block_bytes: int
) -> pacsv.CSVStreamingReader:
    declared = {field.name: field.type for field in schema.arrow_schema}
    return pacsv.open_csv(
        pa.CompressedInputStream(raw, "gzip") if gzipped else raw,
        read_options=_csv_read_options(match, block_size=block_bytes),
        convert_options=pacsv.ConvertOptions(
            column_types={found: declared[name] for name, found in match.matched.items()},
            include_columns=list(match.matched.values()),
            strings_can_be_null=True,
        ),
    )


def _checked_batches(
    path: Path, match: ColumnMatch, schema: TaxiSchema, block_bytes: int, skip_rows: int, rejects: Rejects
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
        read_options=_csv_read_options(match, block_size=block_bytes, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=set_aside),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(match.matched.values(), pa.string()),
            include_columns=list(match.matched.values()),
            strings_can_be_null=True,
        ),
    )
    start = 0
    for text in reader:
        end = start + text.num_rows
        if end > skip_rows:
            text = text.slice(max(skip_rows - start, 0))
            first = max(start, skip_rows)
            lines = _line_numbers(first, text.num_rows, malformed_lines)
            yield _converted(text, match, schema, lines, rejects)
        start = end


def _line_numbers(first_row: int, count: int, malformed_lines: list[int]) -> np.ndarray:
    """File line numbers of parsed rows ``first_row...``: row 0 is line 2, malformed lines skipped."""
    lines = np.arange(first_row, first_row + count) + 2
    for skipped in sorted(malformed_lines):
        lines[lines >= skipped] += 1
    return lines


def _converted(
    text: pa.RecordBatch, match: ColumnMatch, schema: TaxiSchema, lines: np.ndarray, rejects: Rejects
) -> pa.RecordBatch:
    """Convert a batch of text columns to the schema's types, setting aside rows that do not convert."""
    readable = np.ones(text.num_rows, dtype=bool)
    reasons: dict[int, list[str]] = {}
    columns = []
    for target in schema.arrow_schema:
        if target.name not in match.matched:
            columns.append(pa.nulls(text.num_rows, target.type))
            continue
        values = text.column(match.matched[target.name])
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
