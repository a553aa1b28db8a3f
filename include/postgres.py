"""Load TLC record batches into Postgres with COPY, replacing a month atomically.

``COPY ... FROM STDIN`` is the fastest way into Postgres, an order of magnitude faster than
row-wise ``INSERT``s (what pandas ``to_sql`` sends). The rows go in COPY's binary format, encoded
from the Arrow columns with vectorised operations: Postgres stores the values as they come
instead of parsing text, which takes it about half the time of the same rows as CSV. Each month's
rows carry the month of the file they came from (``source_month``), so a rerun deletes exactly
that month, including the stray rows whose pickup time lies outside it, and the delete and the
COPY share one transaction: readers see the old month until the new one is complete, and a failed
load leaves the old rows in place.

The functions take a plain psycopg connection (what ``PostgresHook.get_conn()`` returns), so they
run the same inside an Airflow task and in a test.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from include.extract import Rejects
from include.months import Month
from include.schema import SOURCE_MONTH_COLUMN, TaxiSchema

DEFAULT_SCHEMA = "ny_taxi"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def checked_identifier(value: str, what: str) -> str:
    """Accept only plain lower-case SQL identifiers from configuration, naming what was rejected.

    Identifiers are quoted with ``psycopg.sql.Identifier`` as well; refusing anything unusual up
    front gives a clear error instead of a table with a surprising name.
    """
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid name: use lower-case letters, digits and "
            "underscores, starting with a letter or underscore (at most 63 characters)"
        )
    return value


def monthly_table_name(taxi: str) -> str:
    """The table the monthly flow loads a colour into, e.g. ``yellow_taxi_trips``."""
    return f"{taxi}_taxi_trips"


def _table(schema_name: str, table: str) -> sql.Identifier:
    return sql.Identifier(checked_identifier(schema_name, "schema"), checked_identifier(table, "table"))


# Arrow type → Postgres type, for every type a table of ours holds.
_POSTGRES_TYPES: dict[pa.DataType, str] = {
    pa.int64(): "bigint",
    pa.float64(): "double precision",
    pa.timestamp("us"): "timestamp",  # TLC times are New York wall-clock times without an offset
    pa.string(): "text",
    pa.date32(): "date",
}


def _create_table_sql(schema_name: str, table: str, columns: pa.Schema, index_column: str) -> sql.Composed:
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(field.name), sql.SQL(_POSTGRES_TYPES[field.type]))
        for field in columns
    )
    return sql.SQL(
        "CREATE SCHEMA IF NOT EXISTS {schema};"
        " CREATE TABLE IF NOT EXISTS {table} ({definitions});"
        " CREATE INDEX IF NOT EXISTS {index} ON {table} ({index_column})"
    ).format(
        schema=sql.Identifier(schema_name),
        table=_table(schema_name, table),
        definitions=definitions,
        index=sql.Identifier(f"{table}_{index_column}_idx"),
        index_column=sql.Identifier(index_column),
    )


@contextmanager
def _locked_transaction(conn: psycopg.Connection, lock_name: str) -> Iterator[psycopg.Cursor]:
    """A transaction holding an advisory lock, so two runs for the same target take turns."""
    conn.autocommit = True  # every ``transaction()`` below is then a real BEGIN ... COMMIT
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_name,))
        yield cursor


def ensure_table(
    conn: psycopg.Connection, schema_name: str, table: str, columns: pa.Schema, index_column: str
) -> None:
    """Create the schema, and the table with ``columns`` and an index on ``index_column``, if missing.

    An existing table is left alone: even ``CREATE INDEX IF NOT EXISTS`` waits for a lock that
    conflicts with writes, so it would make a load of one month wait for another month's load.
    """
    with _locked_transaction(conn, f"ddl:{schema_name}.{table}") as cursor:
        cursor.execute("SELECT to_regclass(%s)", (sql.Identifier(schema_name, table).as_string(conn),))
        if cursor.fetchone()[0] is None:
            cursor.execute(_create_table_sql(schema_name, table, columns, index_column))


# COPY's binary format: a signature, then per row the field count and each field as its length and
# big-endian value (length -1 for NULL), then a -1 trailer. Times count from 2000-01-01.
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_NULL_FIELD = pa.scalar(struct.pack(">i", -1), pa.binary())
_POSTGRES_EPOCH_US = 946_684_800_000_000
_POSTGRES_EPOCH_DAYS = 10_957


def _as_binary(values: np.ndarray) -> pa.Array:
    """Each element's bytes, as laid out in ``values``, as one binary value."""
    array = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(values.dtype.itemsize), len(values), [None, pa.py_buffer(values)]
    )
    return array.cast(pa.binary())


def _fixed_width_fields(values: np.ndarray, layout: str) -> pa.Array:
    """Each value as one field: its byte length, then the value, both big-endian."""
    fields = np.empty(len(values), dtype=[("length", ">i4"), ("value", layout)])
    fields["length"] = np.dtype(layout).itemsize
    fields["value"] = values
    return _as_binary(fields)


def _binary_fields(column: pa.Array) -> pa.Array:
    """A column as binary COPY fields, for the column types of ``_POSTGRES_TYPES``."""
    kind = column.type
    if kind == pa.string():
        text = column.fill_null("").cast(pa.binary())
        lengths = pc.binary_length(text).to_numpy().astype(">i4")
        fields = pc.binary_join_element_wise(_as_binary(lengths), text, b"")
    elif kind == pa.timestamp("us"):
        micros = pc.subtract(column.cast(pa.int64()).fill_null(0), _POSTGRES_EPOCH_US)
        fields = _fixed_width_fields(micros.to_numpy(), ">i8")
    elif kind == pa.date32():
        days = pc.subtract(column.cast(pa.int32()).fill_null(0), _POSTGRES_EPOCH_DAYS)
        fields = _fixed_width_fields(days.to_numpy(), ">i4")
    elif kind == pa.int64():
        fields = _fixed_width_fields(column.fill_null(0).to_numpy(), ">i8")
    elif kind == pa.float64():
        fields = _fixed_width_fields(column.fill_null(0.0).to_numpy(), ">f8")
    else:
        raise TypeError(f"no binary COPY encoding for Arrow type {kind}")
    return pc.if_else(pc.is_valid(column), fields, _NULL_FIELD) if column.null_count else fields


def _binary_chunks(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[int, memoryview]]:
    """Each batch as one block of binary COPY rows: a view of one Arrow buffer, not a copy."""
    for batch in batches:
        field_count = pa.scalar(struct.pack(">h", batch.num_columns), pa.binary())
        rows = pc.binary_join_element_wise(field_count, *map(_binary_fields, batch.columns), b"")
        offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)
        start, end = offsets[rows.offset], offsets[rows.offset + len(rows)]
        yield batch.num_rows, memoryview(rows.buffers()[2])[start:end]


def copy_batches(
    cursor: psycopg.Cursor, target: sql.Composable, columns: list[str], batches: Iterable[pa.RecordBatch]
) -> int:
    """Stream record batches into ``target`` with one binary COPY; return the number of rows.

    The table's column types must be the ones ``_POSTGRES_TYPES`` gives the batches' Arrow types, as
    in the tables ``ensure_table`` creates: binary COPY does not convert, it rejects a mismatch.
    """
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    rows = 0
    with cursor.copy(statement) as copy:
        copy.write(_COPY_SIGNATURE)
        for count, chunk in _binary_chunks(batches):
            copy.write(chunk)
            rows += count
        copy.write(_COPY_TRAILER)
    return rows


def _with_source_month(batches: Iterable[pa.RecordBatch], month: Month) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield batch.append_column(
            SOURCE_MONTH_COLUMN, pa.repeat(pa.scalar(month.first_day, pa.date32()), batch.num_rows)
        )


REJECTS_COLUMNS = pa.schema(
    [
        pa.field(SOURCE_MONTH_COLUMN, pa.date32(), False),
        pa.field("source_file", pa.string()),
        pa.field("line_number", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("row_text", pa.string()),
    ]
)


def rejects_table_name(table: str) -> str:
    """Where the unreadable rows of ``table``'s source files are kept, e.g. ``green_taxi_trips_rejects``."""
    return f"{table}_rejects"


def _rejects_batches(rejects: Rejects, month: Month) -> Iterator[pa.RecordBatch]:
    rows = rejects.in_line_order()
    yield pa.RecordBatch.from_pydict(
        {
            SOURCE_MONTH_COLUMN: [month.first_day] * len(rows),
            "source_file": [rejects.file_name] * len(rows),
            "line_number": [row.line for row in rows],
            "reason": [row.reason for row in rows],
            "row_text": [row.text for row in rows],
        },
        schema=REJECTS_COLUMNS,
    )


def replace_month(
    conn: psycopg.Connection,
    schema_name: str,
    table: str,
    taxi_schema: TaxiSchema,
    month: Month,
    batches: Iterable[pa.RecordBatch],
    rejects: Rejects | None = None,
) -> int:
    """Replace the rows of ``month`` in the table with ``batches`` in one transaction.

    The batches must have the taxi schema's source columns in order. With ``rejects`` (filled
    while ``batches`` is read), the month's rows in the rejects table are replaced in the same
    transaction. The advisory lock makes two concurrent loads of the same month run one after
    the other, so the result is one copy.
    """
    columns = taxi_schema.snake_case_arrow_schema.append(pa.field(SOURCE_MONTH_COLUMN, pa.date32(), False))
    ensure_table(conn, schema_name, table, columns, SOURCE_MONTH_COLUMN)
    tables = [(_table(schema_name, table), columns.names, _with_source_month(batches, month))]
    if rejects is not None:
        rejects_table = rejects_table_name(table)
        ensure_table(conn, schema_name, rejects_table, REJECTS_COLUMNS, SOURCE_MONTH_COLUMN)
        # A generator: read after the month's rows, once ``rejects`` is complete.
        rejected = _rejects_batches(rejects, month)
        tables.append((_table(schema_name, rejects_table), REJECTS_COLUMNS.names, rejected))
    with _locked_transaction(conn, f"month:{schema_name}.{table}:{month}") as cursor:
        counts = []
        for target, names, rows in tables:
            cursor.execute(
                sql.SQL("DELETE FROM {} WHERE {} = %s").format(target, sql.Identifier(SOURCE_MONTH_COLUMN)),
                (month.first_day,),
            )
            counts.append(copy_batches(cursor, target, names, rows))
        return counts[0]


def replace_table(
    conn: psycopg.Connection,
    schema_name: str,
    table: str,
    columns: pa.Schema,
    index_column: str,
    batches: Iterable[pa.RecordBatch],
) -> int:
    """Replace the whole table's rows with ``batches`` in one transaction (TRUNCATE then COPY).

    TRUNCATE is transactional in Postgres: until the COPY commits, readers wait and then see the
    new rows, and a failure rolls back to the old ones.
    """
    ensure_table(conn, schema_name, table, columns, index_column)
    target = _table(schema_name, table)
    with _locked_transaction(conn, f"table:{schema_name}.{table}") as cursor:
        cursor.execute(sql.SQL("TRUNCATE {}").format(target))
        return copy_batches(cursor, target, columns.names, batches)


def copy_day_to_csv(
    conn: psycopg.Connection, schema_name: str, table: str, pickup_column: str, day: date, path: Path
) -> None:
    """Stream one pickup day's rows out of ``table`` into a CSV file with COPY, in table column order."""
    query = sql.SQL(
        "COPY (SELECT * FROM {table} WHERE {pickup} >= %s AND {pickup} < %s ORDER BY {pickup})"
        " TO STDOUT (FORMAT csv)"
    ).format(table=_table(schema_name, table), pickup=sql.Identifier(pickup_column))
    start = datetime.combine(day, datetime.min.time())
    with (
        conn.cursor() as cursor,
        path.open("wb") as sink,
        cursor.copy(query, (start, start + timedelta(days=1))) as copy,
    ):
        for chunk in copy:
            sink.write(chunk)


@dataclass(frozen=True)
class MonthCheck:
    """What the check task measures on a loaded month."""

    month: Month
    rows: int
    null_pickups: int
    outside_month: int

    def problems(self, max_outside_fraction: float) -> list[str]:
        """Everything wrong with the month, empty when it passes.

        The TLC files contain a few trips whose pickup lies outside the file's month (clock errors,
        late submissions); they are kept and counted, and only too many of them is an error.
        """
        found = []
        if self.rows == 0:
            found.append(f"month {self.month} has no rows")
        if self.null_pickups:
            found.append(f"{self.null_pickups} rows of {self.month} have no pickup time")
        if self.rows and self.outside_month / self.rows > max_outside_fraction:
            found.append(
                f"{self.outside_month} of {self.rows} rows of {self.month} have a pickup outside the "
                f"month, more than the allowed {max_outside_fraction:.1%}"
            )
        return found


def check_month(
    conn: psycopg.Connection, schema_name: str, table: str, pickup_column: str, month: Month
) -> MonthCheck:
    """Count the month's rows, its rows without a pickup time, and its pickups outside the month."""
    query = sql.SQL(
        "SELECT count(*), count(*) FILTER (WHERE {pickup} IS NULL),"
        " count(*) FILTER (WHERE {pickup} < %(start)s OR {pickup} >= %(end)s)"
        " FROM {table} WHERE {source_month} = %(month)s"
    ).format(
        pickup=sql.Identifier(pickup_column),
        table=_table(schema_name, table),
        source_month=sql.Identifier(SOURCE_MONTH_COLUMN),
    )
    with conn.cursor() as cursor:
        cursor.execute(query, {"start": month.start, "end": month.end, "month": month.first_day})
        rows, null_pickups, outside = cursor.fetchone()
    return MonthCheck(month, rows, null_pickups, outside)


def trips_per_day(
    conn: psycopg.Connection, schema_name: str, table: str, pickup_column: str, month: Month | None = None
) -> dict[date, int]:
    """Rows per pickup day, of one ``source_month`` or of the whole table: what the charts draw."""
    where = sql.SQL("WHERE {} = %s").format(sql.Identifier(SOURCE_MONTH_COLUMN)) if month else sql.SQL("")
    query = sql.SQL("SELECT {pickup}::date AS day, count(*) FROM {table} {where} GROUP BY day").format(
        pickup=sql.Identifier(pickup_column), table=_table(schema_name, table), where=where
    )
    with conn.cursor() as cursor:
        cursor.execute(query, (month.first_day,) if month else ())
        return {day: count for day, count in cursor.fetchall() if day is not None}
