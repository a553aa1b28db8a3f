"""Read a TLC CSV file as Arrow record batches with the colour's explicit schema.

The file is parsed block by block, so memory stays bounded by the block size whatever the month's
size. Types come from ``include.schema``, never from inference, so a month whose ``ehail_fee`` is
empty reads with the same types as a month where it is filled.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from include.schema import TaxiSchema

log = logging.getLogger(__name__)

# Arrow's streaming reader reads up to 32 blocks ahead of the consumer (ARROW-12090), so the block
# size bounds memory: 512 KiB keeps the read-ahead under 16 MB whatever the month's size, and the
# small first block starts the COPY to Postgres sooner, so reading and loading overlap.
BLOCK_BYTES = 512 << 10


def read_header(path: Path) -> list[str]:
    """The column names on the first line of a plain or gzip-compressed CSV file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as source:
        return [name.strip().strip('"') for name in source.readline().rstrip("\r\n").split(",")]


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


def iter_batches(path: Path, schema: TaxiSchema, block_bytes: int = BLOCK_BYTES) -> Iterator[pa.RecordBatch]:
    """Yield the file's rows as record batches with exactly the schema's columns, types and order.

    A value that does not parse as its column's type fails the read with the file name, the
    column and the row in the message (pyarrow's ``ArrowInvalid`` is a ``ValueError``).
    """
    check_header(path, schema)
    try:
        yield from pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=block_bytes),
            convert_options=pacsv.ConvertOptions(
                column_types=schema.arrow_schema,
                include_columns=schema.source_names,
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as error:
        raise ValueError(f"{path.name}: {error}") from error


def read_csv_batches(
    path: Path, columns: pa.Schema, block_bytes: int = BLOCK_BYTES
) -> Iterator[pa.RecordBatch]:
    """Yield a header-less CSV (what ``COPY ... TO STDOUT`` writes) as batches of ``columns``."""
    yield from pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_bytes, column_names=columns.names),
        convert_options=pacsv.ConvertOptions(column_types=columns, strings_can_be_null=True),
    )
