"""The binary COPY encoder against a real Postgres: what goes in comes back out, value for value."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from psycopg import sql

from include.destinations import binary_copy
from include.destinations.postgres import copy_batches, ensure_table

pytestmark = pytest.mark.integration

COLUMNS = pa.schema(
    [
        pa.field("count", pa.int64()),
        pa.field("amount", pa.float64()),
        pa.field("pickup", pa.timestamp("us")),
        pa.field("flag", pa.string()),
        pa.field("note", pa.string()),
        pa.field("month", pa.date32()),
    ]
)

# Runs of rows null in the same places (the fixed layout): texts of one length, empty strings, a
# time before 2000 and one before 1970 (negative offsets).
RUNS = pa.RecordBatch.from_pydict(
    {
        "count": [1, 2, None, None, 5],
        "amount": [0.5, -1.25, None, None, 1e300],
        "pickup": [
            dt.datetime(2020, 10, 1, 0, 31, 19),
            dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
            dt.datetime(1960, 1, 1),
            None,
            dt.datetime(2021, 1, 1),
        ],
        "flag": ["N", "Y", None, None, "N"],
        "note": ["", "", None, None, ""],
        "month": [dt.date(2020, 10, 1), dt.date(1999, 1, 1), None, None, dt.date(1969, 12, 31)],
    },
    schema=COLUMNS,
)
# Nulls scattered row by row and texts of several lengths, including non-ASCII (the joined rows).
SCATTERED = pa.RecordBatch.from_pydict(
    {
        "count": [None, 2, None, 4, None, 6, None, 8, None, 10],
        "amount": [1.0, None, 3.0, None, 5.0, None, 7.0, None, 9.0, None],
        "pickup": [dt.datetime(2020, 1, 1, 0, 0, i) for i in range(10)],
        "flag": ["a", "bb", None, "", "ccc", None, "é", "d", None, "e"],
        "note": ["B02510", None, "B00013", None, "x", "yy", None, "zzz", "", None],
        "month": [dt.date(2020, 1, 1)] * 10,
    },
    schema=COLUMNS,
)


@pytest.mark.parametrize(
    "batches",
    [
        [RUNS],
        [SCATTERED],
        [RUNS.slice(1, 3), SCATTERED.slice(3), RUNS.slice(0, 0)],
    ],
    ids=["runs", "scattered", "slices"],
)
def test_rows_copied_come_back_unchanged(pg_conn, pg_schema, batches):
    ensure_table(pg_conn, pg_schema, "copied", COLUMNS)
    target = sql.Identifier(pg_schema, "copied")
    with pg_conn.transaction(), pg_conn.cursor() as cursor:
        rows = copy_batches(cursor, target, COLUMNS.names, batches)

    expected = [row for batch in batches for row in batch.to_pylist()]
    assert rows == len(expected)
    found = pg_conn.execute(
        sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(sql.Identifier, COLUMNS.names)), target)
    ).fetchall()
    assert sorted(map(repr, found)) == sorted(repr(tuple(row.values())) for row in expected)


def test_both_encodings_write_the_same_bytes():
    """The fixed layout is only a faster way to the bytes the joined rows make."""
    batch = pa.concat_batches([RUNS, RUNS.slice(2), RUNS.slice(0, 2)])
    fixed = b"".join(bytes(rows) for _, rows in binary_copy.binary_copy_rows([batch]))
    joined = bytes(binary_copy._joined_rows(batch))
    assert fixed == joined
    assert binary_copy._uniform_runs(batch) is not None  # the fixed layout was the one used
    assert binary_copy._uniform_runs(SCATTERED) is None


def test_a_type_without_an_encoding_is_refused():
    batch = pa.RecordBatch.from_pydict({"flag": pa.array([True, False])})
    with pytest.raises(TypeError, match="bool"):
        list(binary_copy.binary_copy_rows([batch]))
