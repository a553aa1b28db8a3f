"""Postgres as the warehouse: COPY loads, and months published only once they pass their checks.

``COPY ... FROM STDIN`` is the fastest way into Postgres, an order of magnitude faster than
row-wise ``INSERT``s (what pandas ``to_sql`` sends). The rows go in COPY's binary format, encoded
from the Arrow columns by ``include.destinations.binary_copy``: Postgres stores the values as they come
instead of parsing text, which takes it about 60% of the CPU of the same rows as CSV.

Our encoder rather than ADBC's ``adbc_ingest``: both sit behind ``copy_batches`` (``writer=``) and
were measured side by side on the same stream of a green month (``python -m bench.run``,
2026-12-01, 2 vCPUs, quiet, median of 3 runs): at 94,861 rows ours loads 242,000 rows/s with
0.38 s of client CPU against ADBC's 184,000 rows/s and 0.53 s; at 948,610 rows 707,000 rows/s and
1.31 s against 476,000 rows/s and 2.25 s (peak RSS 231 and 240 MB). ADBC writes field by field through
a virtual call per value, ours a run of rows per numpy assignment. ADBC also needs a connection
of its own, so it cannot write inside ``stage_month``'s transaction. ADBC stays where it is the
better tool: reading query results as Arrow (``day_batches``).

A family's trips live in one table, ``{taxi}_tripdata``, LIST-partitioned by ``source_month``, the
month of the file each row came from. A month is loaded write-audit-publish:

1. **stage**: the rows are copied into a staging table of this run's own, which already has the
   partition's constraint (``source_month`` = the month), its rejects into another, and its
   profile into ``{taxi}_tripdata_profile``; nobody reading the table sees any of it;
2. **audit**: checks read the staged profile (``include.checks.quality``);
3. **publish**: in one short transaction, the month's old partition is dropped and the staging
   table attached in its place (no rows are copied: the constraint proves the bound), the
   rejects swapped, and the profile marked published. Readers see the old month or the new one,
   never a mix; a failed check leaves the old month in place; a rerun replaces, never adds.

The functions take a plain psycopg connection (what ``PostgresHook.get_conn()`` returns), so they
run the same inside an Airflow task and in a test.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

import psycopg
import pyarrow as pa
from psycopg import sql

from include.checks.profile import MonthProfile
from include.destinations.base import Datasets, Destination, Staged
from include.destinations.binary_copy import COPY_SIGNATURE, COPY_TRAILER, binary_copy_rows
from include.errors import InvalidParamsError
from include.source.extract import Rejects
from include.source.families import SOURCE_MONTH_COLUMN
from include.source.months import Month

if TYPE_CHECKING:
    from include.observing.lineage import Dataset
    from include.source.month_file import MonthFile

DEFAULT_SCHEMA = "ny_taxi"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def checked_identifier(value: str, what: str) -> str:
    """Accept only plain lower-case SQL identifiers from configuration, naming what was rejected.

    Identifiers are quoted with ``psycopg.sql.Identifier`` as well; refusing anything unusual up
    front gives a clear error instead of a table with a surprising name.
    """
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise InvalidParamsError(
            f"{what} {value!r} is not a valid name: use lower-case letters, digits and "
            "underscores, starting with a letter or underscore (at most 63 characters)"
        )
    return value


def pg_schema() -> str:
    """In a task: the warehouse schema, the Variable ``pg_schema``, validated before any SQL."""
    from airflow.sdk import Variable

    return checked_identifier(Variable.get("pg_schema", default=DEFAULT_SCHEMA), "Variable pg_schema")


def _table(schema_name: str, table: str) -> sql.Identifier:
    return sql.Identifier(checked_identifier(schema_name, "schema"), checked_identifier(table, "table"))


def tripdata_table(taxi: str) -> str:
    """A family's trips table, e.g. ``yellow_tripdata``: the same name in Postgres, GCS and BigQuery."""
    return f"{taxi}_tripdata"


def rejects_table(table: str) -> str:
    """Where the unreadable rows of ``table``'s source files are kept, e.g. ``green_tripdata_rejects``."""
    return f"{table}_rejects"


def profile_table(table: str) -> str:
    """One profile per staged month of ``table``, e.g. ``green_tripdata_profile``."""
    return f"{table}_profile"


def partition_name(table: str, month: Month) -> str:
    return f"{table}_{month.year}{month.month:02d}"


def staging_name(table: str, month: Month, run_id: str) -> str:
    """This run's staging table for the month: unique per run, so concurrent runs never share one."""
    run_key = hashlib.sha1(run_id.encode()).hexdigest()[:10]
    return f"{partition_name(table, month)}_stage_{run_key}"


# Arrow type → Postgres type, for every type a table of ours holds.
_POSTGRES_TYPES: dict[pa.DataType, str] = {
    pa.int64(): "bigint",
    pa.float64(): "double precision",
    pa.timestamp("us"): "timestamp",  # TLC times are New York wall-clock times without an offset
    pa.string(): "text",
    pa.date32(): "date",
}


def _column_definitions(columns: pa.Schema) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            sql.Identifier(field.name),
            sql.SQL(_POSTGRES_TYPES[field.type]),
            sql.SQL("" if field.nullable else " NOT NULL"),
        )
        for field in columns
    )


def autocommit(conn: psycopg.Connection) -> psycopg.Connection:
    """Autocommit, so each ``conn.transaction()`` is a real BEGIN ... COMMIT and reads hold no locks."""
    if not conn.autocommit:
        conn.autocommit = True
    return conn


@contextmanager
def _transaction(
    conn: psycopg.Connection, lock_name: str, lock_timeout: timedelta
) -> Iterator[psycopg.Cursor]:
    """A transaction holding an advisory lock, so two writers of the same target take turns.

    ``lock_timeout`` bounds every lock wait in it, the advisory lock's included: a writer stuck
    behind another fails with ``LockNotAvailable`` (a retry's job) instead of waiting forever.
    """
    with autocommit(conn).transaction(), conn.cursor() as cursor:
        cursor.execute(
            sql.SQL("SET LOCAL lock_timeout = {}").format(
                sql.Literal(f"{int(lock_timeout.total_seconds() * 1000)}ms")
            )
        )
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_name,))
        yield cursor


DEFAULT_LOCK_TIMEOUT = timedelta(minutes=10)
# Publishing takes the parent table's exclusive lock, behind which every new reader queues: wait
# briefly for it, and leave longer waits to Airflow's retries.
PUBLISH_LOCK_TIMEOUT = timedelta(seconds=30)


def _existing_columns(cursor: psycopg.Cursor, schema_name: str, table: str) -> list[str] | None:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        (schema_name, table),
    )
    names = [name for (name,) in cursor.fetchall()]
    return names or None


def ensure_table(
    conn: psycopg.Connection,
    schema_name: str,
    table: str,
    columns: pa.Schema,
    partition_column: str | None = None,
    lock_timeout: timedelta = DEFAULT_LOCK_TIMEOUT,
) -> None:
    """Create the schema and the table (LIST-partitioned by ``partition_column`` if given), or add
    the declared columns an existing table lacks (the TLC adds columns over the years).

    A table that already has every column is left alone without taking any lock, so the DDL of
    one month's load never waits for another month's.
    """
    with autocommit(conn).cursor() as cursor:
        existing = _existing_columns(cursor, schema_name, table)
    if existing is not None and set(columns.names) <= set(existing):
        return
    with _transaction(conn, f"ddl:{schema_name}.{table}", lock_timeout) as cursor:
        existing = _existing_columns(cursor, schema_name, table)
        target = _table(schema_name, table)
        if existing is None:
            partitioning = (
                sql.SQL(" PARTITION BY LIST ({})").format(sql.Identifier(partition_column))
                if partition_column
                else sql.SQL("")
            )
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema_name)))
            cursor.execute(
                sql.SQL("CREATE TABLE {} ({}){}").format(target, _column_definitions(columns), partitioning)
            )
            return
        for field in columns:
            if field.name not in existing:
                cursor.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        target, sql.Identifier(field.name), sql.SQL(_POSTGRES_TYPES[field.type])
                    )
                )


def copy_batches(
    cursor: psycopg.Cursor,
    target: sql.Identifier,
    columns: list[str],
    batches: Iterable[pa.RecordBatch],
    writer: Literal["numpy", "adbc"] = "numpy",
) -> int:
    """Stream record batches into ``target`` with one binary COPY; return the number of rows.

    The table's column types must be the ones ``_POSTGRES_TYPES`` gives the batches' Arrow types, as
    in the tables ``ensure_table`` creates: binary COPY does not convert, it rejects a mismatch.

    ``writer`` chooses the encoder: ``numpy``, ours (``include.destinations.binary_copy``), in ``cursor``'s
    transaction; or ``adbc``, ADBC's ``adbc_ingest``, which needs a connection of its own and so
    commits in a transaction of its own: ``target`` must exist and be committed before, and it
    cannot be part of a larger transaction such as ``stage_month``'s. Kept to measure the two
    side by side (``bench``); see the module docstring for why ours loads the months.
    """
    if writer == "adbc":
        return _ingest_with_adbc(cursor.connection, target, columns, batches)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    rows = 0
    with cursor.copy(statement) as copy:
        copy.write(COPY_SIGNATURE)
        for count, chunk in binary_copy_rows(batches):
            copy.write(chunk)
            rows += count
        copy.write(COPY_TRAILER)
    return rows


def _ingest_with_adbc(
    conn: psycopg.Connection, target: sql.Identifier, columns: list[str], batches: Iterable[pa.RecordBatch]
) -> int:
    """``adbc_ingest`` (binary COPY written by ADBC's C++ driver) on a connection to the same
    database, appending to ``target`` in one transaction (ADBC's DB-API starts with autocommit off)."""
    import adbc_driver_postgresql.dbapi as adbc

    # ADBC takes the schema and the table apart; ours are plain names (checked_identifier), so
    # psycopg's quoting of each is only the surrounding double quotes.
    schema_name, table = (part.strip('"') for part in target.as_string(conn).split("."))
    info = conn.info
    uri = (
        f"postgresql://{quote(info.user, safe='')}:{quote(info.password or '', safe='')}"
        f"@{info.host}:{info.port}/{quote(info.dbname, safe='')}"
    )
    stream = iter(batches)
    first = next(stream, None)
    if first is None:
        return 0
    reader = pa.RecordBatchReader.from_batches(
        first.schema, (batch.select(columns) for batch in itertools.chain([first], stream))
    )
    with adbc.connect(uri) as adbc_conn:
        with adbc_conn.cursor() as adbc_cursor:
            rows = adbc_cursor.adbc_ingest(table, reader, mode="append", db_schema_name=schema_name)
        adbc_conn.commit()
    return rows


REJECTS_COLUMNS = pa.schema(
    [
        pa.field(SOURCE_MONTH_COLUMN, pa.date32(), False),
        pa.field("source_file", pa.string()),
        pa.field("line_number", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("row_text", pa.string()),
    ]
)


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


# A profile per staged month (the Taxi results view and the anomaly test read it): the month and the
# run, every field of ``MonthProfile`` but the family (the table is the family's), and what became
# of the load. The fields are declared once, in include/checks/profile.py.
PROFILE_FIELDS = tuple(f.name for f in fields(MonthProfile) if f.name not in ("taxi", "month"))
PROFILE_RUN_COLUMNS = ("run_id", "staged_at", "published_at", "anomalies", "review")
_PROFILE_FIELD_TYPES = {
    "int": "bigint NOT NULL",
    "str": "text NOT NULL",
    "dict": "jsonb NOT NULL",
    "list": "jsonb NOT NULL DEFAULT '[]'",  # a default: profile tables older than the field get it
}


def _profile_field_type(name: str) -> str:
    annotation = next(str(f.type) for f in fields(MonthProfile) if f.name == name)
    return _PROFILE_FIELD_TYPES[annotation.split("[", 1)[0]]


def _profile_ddl() -> str:
    profile_columns = ",\n    ".join(f"{name} {_profile_field_type(name)}" for name in PROFILE_FIELDS)
    return f"""
CREATE TABLE IF NOT EXISTS {{table}} (
    source_month date NOT NULL,
    run_id text NOT NULL,
    {profile_columns},
    staged_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    anomalies jsonb,
    review jsonb,
    PRIMARY KEY (source_month, run_id)
)
"""


PROFILE_DDL = _profile_ddl()

# A rerun of the same run replaces its own profile, as if staged anew.
_PROFILE_UPSERT = (
    "INSERT INTO {table} (source_month, run_id, "
    + ", ".join(PROFILE_FIELDS)
    + ") VALUES (%(source_month)s, %(run_id)s, "
    + ", ".join(f"%({name})s" for name in PROFILE_FIELDS)
    + ") ON CONFLICT (source_month, run_id) DO UPDATE SET staged_at = now(), published_at = NULL,"
    + " anomalies = NULL, review = NULL, "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in PROFILE_FIELDS)
)


# Run columns added since the first profile tables: a table made before them gets them on its next load.
_ADDED_RUN_COLUMNS = {"review": "jsonb"}


def ensure_profile_table(
    conn: psycopg.Connection, schema_name: str, table: str, lock_timeout: timedelta = DEFAULT_LOCK_TIMEOUT
) -> None:
    """Create ``table``'s profile table, or add the ``MonthProfile`` fields and run columns an older
    one lacks (without a lock when it has them all: ALTER TABLE takes one even with IF NOT EXISTS)."""
    profiles = profile_table(table)
    wanted = {name: _profile_field_type(name) for name in PROFILE_FIELDS} | _ADDED_RUN_COLUMNS
    with autocommit(conn).cursor() as cursor:
        existing = _existing_columns(cursor, schema_name, profiles)
    if existing is not None and set(wanted) <= set(existing):
        return
    with _transaction(conn, f"ddl:{schema_name}.{profiles}", lock_timeout) as cursor:
        cursor.execute(sql.SQL(PROFILE_DDL).format(table=_table(schema_name, profiles)))
        for name, kind in wanted.items():
            cursor.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} " + kind).format(
                    _table(schema_name, profiles), sql.Identifier(name)
                )
            )


def profile_from_row(taxi: str, row: dict) -> MonthProfile:
    """A ``MonthProfile`` from a row of the profile table (a dict by column name)."""
    return MonthProfile(taxi, f"{row['source_month']:%Y-%m}", *(row[name] for name in PROFILE_FIELDS))


def select_profiles(
    conn: psycopg.Connection, schema_name: str, table: str, where: str, params: tuple, order: str
) -> list[dict]:
    """Rows of ``table``'s profile table (dicts by column name) ``WHERE where ORDER BY order``; a run
    column added since the table was made (``_ADDED_RUN_COLUMNS``) reads as NULL until its next load."""
    columns = ("source_month", *PROFILE_FIELDS, *PROFILE_RUN_COLUMNS)
    with autocommit(conn).cursor() as cursor:
        existing = set(_existing_columns(cursor, schema_name, profile_table(table)) or ())
        selected = [
            sql.Identifier(name) if name in existing or name not in _ADDED_RUN_COLUMNS else sql.SQL("NULL")
            for name in columns
        ]
        query = sql.SQL("SELECT {} FROM {} WHERE " + where + " ORDER BY " + order).format(
            sql.SQL(", ").join(selected), _table(schema_name, profile_table(table))
        )
        cursor.execute(query, params)
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class StagedMonth(Staged):
    """Where a run staged a month: its schema, the family's table and this run's staging table."""

    schema_name: str
    table: str
    staging_table: str


def stage_month(
    conn: psycopg.Connection,
    schema_name: str,
    table: str,
    table_columns: pa.Schema,
    month: Month,
    run_id: str,
    batches: Iterable[pa.RecordBatch],
    rejects: Rejects,
    profile: Callable[[], MonthProfile],
    lock_timeout: timedelta = DEFAULT_LOCK_TIMEOUT,
) -> StagedMonth:
    """Copy a month into this run's staging tables and record its profile.

    ``table_columns`` are the batches' columns, ``source_month`` included (a family's
    ``table_schema``). ``profile`` is called once the batches are consumed and returns the
    ``MonthProfile`` gathered from them. A rerun of the same run replaces its own staging tables
    and profile.

    The staging tables are created in a short transaction of their own: ``CREATE TABLE ... (LIKE
    parent)`` locks the parent until commit, and a lock held through a long COPY would make every
    other month's publish wait for it. The COPY and the profile then commit together, and a
    failed COPY drops the empty staging tables again.
    """
    ensure_table(conn, schema_name, table, table_columns, SOURCE_MONTH_COLUMN, lock_timeout)
    ensure_table(conn, schema_name, rejects_table(table), REJECTS_COLUMNS, lock_timeout=lock_timeout)
    ensure_profile_table(conn, schema_name, table, lock_timeout)
    staging = staging_name(table, month, run_id)
    staged, staged_rejects = _table(schema_name, staging), _table(schema_name, rejects_table(staging))
    with _transaction(conn, f"stage:{schema_name}.{staging}", lock_timeout) as cursor:
        for target, source in ((staged, table), (staged_rejects, rejects_table(table))):
            cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            cursor.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                    target, _table(schema_name, source)
                )
            )
        # The partition's bound as a constraint: ATTACH PARTITION then needs no scan to prove it.
        cursor.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} = {})").format(
                staged,
                sql.Identifier(f"{staging}_month"),
                sql.Identifier(SOURCE_MONTH_COLUMN),
                sql.Literal(month.first_day),
            )
        )
    try:
        with _transaction(conn, f"stage:{schema_name}.{staging}", lock_timeout) as cursor:
            rows = copy_batches(cursor, staged, table_columns.names, batches)
            copy_batches(cursor, staged_rejects, REJECTS_COLUMNS.names, _rejects_batches(rejects, month))
            staged_profile = profile()
            values = {name: getattr(staged_profile, name) for name in PROFILE_FIELDS}
            cursor.execute(
                sql.SQL(_PROFILE_UPSERT).format(table=_table(schema_name, profile_table(table))),
                {
                    "source_month": month.first_day,
                    "run_id": run_id,
                    **values,
                    **staged_profile.as_json_columns(),
                },
            )
    except BaseException:
        with contextlib.suppress(psycopg.Error):  # a lost connection: the teardown drops them
            drop_staging(conn, schema_name, table, month, run_id)
        raise
    return StagedMonth(
        taxi=staged_profile.taxi,
        month=str(month),
        run_id=run_id,
        rows_loaded=rows,
        rows_rejected=len(rejects.rows),
        schema_name=schema_name,
        table=table,
        staging_table=staging,
    )


def publish_month(
    conn: psycopg.Connection, staged: StagedMonth, lock_timeout: timedelta = PUBLISH_LOCK_TIMEOUT
) -> int:
    """Swap the staged month in for the published one, in one transaction; return its rows.

    Publishing twice is harmless: once the staging table is attached, a rerun finds the profile
    already published and changes nothing.
    """
    schema_name, table, month = staged.schema_name, staged.table, Month.parse(staged.month)
    partition = partition_name(table, month)
    profiles = _table(schema_name, profile_table(table))
    with _transaction(conn, f"publish:{schema_name}.{table}:{month}", lock_timeout) as cursor:
        cursor.execute("SELECT to_regclass(%s)", (f'"{schema_name}"."{staged.staging_table}"',))
        if cursor.fetchone()[0] is None:
            cursor.execute(
                sql.SQL("SELECT published_at FROM {} WHERE source_month = %s AND run_id = %s").format(
                    profiles
                ),
                (month.first_day, staged.run_id),
            )
            found = cursor.fetchone()
            if found and found[0] is not None:
                return staged.rows_loaded
            raise RuntimeError(
                f"{schema_name}.{staged.staging_table} is gone and {month} was never published"
            )
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_table(schema_name, partition)))
        cursor.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                _table(schema_name, staged.staging_table), sql.Identifier(partition)
            )
        )
        cursor.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                _table(schema_name, table), _table(schema_name, partition), sql.Literal(month.first_day)
            )
        )
        rejects, staged_rejects = rejects_table(table), rejects_table(staged.staging_table)
        cursor.execute(
            sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                _table(schema_name, rejects), sql.Identifier(SOURCE_MONTH_COLUMN)
            ),
            (month.first_day,),
        )
        cursor.execute(
            sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                _table(schema_name, rejects), _table(schema_name, staged_rejects)
            )
        )
        cursor.execute(sql.SQL("DROP TABLE {}").format(_table(schema_name, staged_rejects)))
        cursor.execute(
            sql.SQL("UPDATE {} SET published_at = now() WHERE source_month = %s AND run_id = %s").format(
                profiles
            ),
            (month.first_day, staged.run_id),
        )
    return staged.rows_loaded


def drop_staging(conn: psycopg.Connection, schema_name: str, table: str, month: Month, run_id: str) -> None:
    """Drop what this run staged for the month and did not publish (a teardown's job)."""
    staging = staging_name(table, month, run_id)
    autocommit(conn)
    for name in (staging, rejects_table(staging)):
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_table(schema_name, name)))


def staged_profile(conn: psycopg.Connection, staged: StagedMonth) -> MonthProfile:
    """The profile a run staged for the month."""
    [profile] = _profiles(
        conn,
        staged.schema_name,
        staged.table,
        staged.taxi,
        "source_month = %s AND run_id = %s",
        (Month.parse(staged.month).first_day, staged.run_id),
    )
    return profile


def published_history(
    conn: psycopg.Connection, schema_name: str, table: str, taxi: str, before: Month, months: int
) -> list[MonthProfile]:
    """The latest published profile of each of the ``months`` months before ``before``, oldest first."""
    where = "published_at IS NOT NULL AND source_month < %s AND source_month >= %s"
    found = _profiles(
        conn, schema_name, table, taxi, where, (before.first_day, before.minus(months).first_day)
    )
    latest: dict[str, MonthProfile] = {}
    for profile in found:  # ordered by month, then publication: the last one of a month wins
        latest[profile.month] = profile
    return [latest[month] for month in sorted(latest)]


def _profiles(
    conn: psycopg.Connection, schema_name: str, table: str, taxi: str, where: str, params: tuple
) -> list[MonthProfile]:
    rows = select_profiles(
        conn, schema_name, table, where, params, "source_month, published_at NULLS FIRST, staged_at"
    )
    return [profile_from_row(taxi, row) for row in rows]


def record_anomalies(conn: psycopg.Connection, staged: StagedMonth, anomalies: list[dict]) -> None:
    """Store the anomaly test's flags (an empty list: checked, nothing found) with the staged profile."""
    autocommit(conn).execute(
        sql.SQL("UPDATE {} SET anomalies = %s WHERE source_month = %s AND run_id = %s").format(
            _table(staged.schema_name, profile_table(staged.table))
        ),
        (json.dumps(anomalies), Month.parse(staged.month).first_day, staged.run_id),
    )


def record_review(conn: psycopg.Connection, staged: StagedMonth, review: dict) -> None:
    """Store a person's review of the staged month (``include.checks.review``) with its profile."""
    autocommit(conn).execute(
        sql.SQL("UPDATE {} SET review = %s WHERE source_month = %s AND run_id = %s").format(
            _table(staged.schema_name, profile_table(staged.table))
        ),
        (json.dumps(review), Month.parse(staged.month).first_day, staged.run_id),
    )


def replace_table(
    conn: psycopg.Connection,
    schema_name: str,
    table: str,
    columns: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    lock_timeout: timedelta = DEFAULT_LOCK_TIMEOUT,
) -> int:
    """Replace the whole table's rows with ``batches`` in one transaction (TRUNCATE then COPY).

    TRUNCATE is transactional in Postgres: until the COPY commits, readers wait and then see the
    new rows, and a failure rolls back to the old ones.
    """
    ensure_table(conn, schema_name, table, columns)
    target = _table(schema_name, table)
    with _transaction(conn, f"table:{schema_name}.{table}", lock_timeout) as cursor:
        cursor.execute(sql.SQL("TRUNCATE {}").format(target))
        return copy_batches(cursor, target, columns.names, batches)


def libpq_uri(uri: str) -> str:
    """``PostgresHook.get_uri()`` names SQLAlchemy's driver (``postgresql+psycopg://``); libpq, and
    so ADBC, wants the plain scheme."""
    scheme, rest = uri.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def day_batches(uri: str, schema_name: str, table: str, pickup_column: str, day: date) -> pa.Table:
    """The rows of ``table`` picked up on ``day``, read as Arrow through ADBC (no CSV round trip).

    Only the partitions of the day's month and its two neighbours are read: a trip picked up on
    a day sits in that month's file, or in the next or previous one when it crosses a month's
    end; a stray further away (a clock error of years) belongs to no day's export.
    """
    import adbc_driver_postgresql.dbapi as adbc

    month = Month.of(day)
    query = sql.SQL(
        "SELECT * FROM {table} WHERE {source_month} BETWEEN $1 AND $2 AND {pickup} >= $3 AND {pickup} < $4"
        " ORDER BY {pickup}"
    ).format(
        table=_table(schema_name, table),
        source_month=sql.Identifier(SOURCE_MONTH_COLUMN),
        pickup=sql.Identifier(pickup_column),
    )
    start = datetime.combine(day, datetime.min.time())
    try:
        conn = adbc.connect(libpq_uri(uri))
    except adbc.Error as error:
        # libpq quotes a connection string it cannot parse, password included: never pass that on.
        message = str(error).replace(libpq_uri(uri), "<the postgres_default URI>")
        raise ConnectionError(f"ADBC could not connect to Postgres: {message}") from None
    with conn, conn.cursor() as cursor:
        # psycopg only composes the identifiers; ADBC binds the values.
        cursor.execute(
            query.as_string(None),
            (month.previous.first_day, month.next.first_day, start, start + timedelta(days=1)),
        )
        return cursor.fetch_arrow_table()


def month_published(conn: psycopg.Connection, schema_name: str, table: str, month: Month) -> bool:
    """Whether a month of ``table`` was ever published (its profile says so)."""
    with autocommit(conn).cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", (f'"{schema_name}"."{profile_table(table)}"',))
        if cursor.fetchone()[0] is None:
            return False
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE source_month = %s AND published_at IS NOT NULL").format(
                _table(schema_name, profile_table(table))
            ),
            (month.first_day,),
        )
        return cursor.fetchone()[0] > 0


def trips_per_day(
    conn: psycopg.Connection, schema_name: str, table: str, pickup_column: str, month: Month | None = None
) -> dict[date, int]:
    """Rows per pickup day, of one ``source_month`` or of the whole table: what the charts draw."""
    where = sql.SQL("WHERE {} = %s").format(sql.Identifier(SOURCE_MONTH_COLUMN)) if month else sql.SQL("")
    query = sql.SQL("SELECT {pickup}::date AS day, count(*) FROM {table} {where} GROUP BY day").format(
        pickup=sql.Identifier(pickup_column), table=_table(schema_name, table), where=where
    )
    with autocommit(conn).cursor() as cursor:
        cursor.execute(query, (month.first_day,) if month else ())
        return {day: count for day, count in cursor.fetchall() if day is not None}


POSTGRES_CONN_ID = "postgres_default"


class Postgres(Destination):
    """The warehouse in Postgres: a month is a partition of ``{schema}.{taxi}_tripdata``, staged in a
    table of the run's own and attached in one transaction (see the module's docstring)."""

    staged_type = StagedMonth
    shown_in_results = True

    def __init__(self, conn: psycopg.Connection, schema_name: str) -> None:
        self.conn, self.schema_name = conn, checked_identifier(schema_name, "schema")

    @classmethod
    def from_airflow(cls) -> Postgres:
        """The connection ``postgres_default`` and the Variable ``pg_schema``, checked before any SQL."""
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        schema_name = pg_schema()
        return cls(PostgresHook(POSTGRES_CONN_ID).get_conn(), schema_name)

    def close(self) -> None:
        self.conn.close()

    def stage(self, month_file: MonthFile, run_id: str) -> StagedMonth:
        request = month_file.request
        staged = stage_month(
            self.conn,
            self.schema_name,
            tripdata_table(request.taxi),
            request.schema.table_schema,
            request.month,
            run_id,
            month_file.batches(),
            month_file.rejects,
            month_file.profile,
        )
        return staged

    def staged_profile(self, staged: StagedMonth) -> MonthProfile:
        return staged_profile(self.conn, staged)

    def published_history(self, taxi: str, before: Month, months: int) -> list[MonthProfile]:
        return published_history(self.conn, self.schema_name, tripdata_table(taxi), taxi, before, months)

    def record_anomalies(self, staged: StagedMonth, anomalies: list[dict]) -> None:
        record_anomalies(self.conn, staged, anomalies)

    def record_review(self, staged: StagedMonth, review: dict) -> None:
        record_review(self.conn, staged, review)

    def publish(self, staged: StagedMonth) -> dict:
        rows = publish_month(self.conn, staged)
        return {
            "taxi": staged.taxi,
            "month": staged.month,
            "rows": rows,
            "location": f"{self.schema_name}.{staged.table}",
        }

    def drop_staging(self, taxi: str, month: Month, run_id: str) -> None:
        drop_staging(self.conn, self.schema_name, tripdata_table(taxi), month, run_id)

    def _dataset(self, table: str, rows: int | None = None) -> Dataset:
        from include.observing.lineage import postgres_table

        return postgres_table(self.conn, self.schema_name, table, rows)

    def staged_datasets(self, staged: StagedMonth) -> list[Dataset]:
        return [
            self._dataset(staged.staging_table, staged.rows_loaded),
            self._dataset(rejects_table(staged.staging_table), staged.rows_rejected),
            self._dataset(profile_table(staged.table), 1),
        ]

    def published_datasets(self, staged: StagedMonth) -> Datasets:
        return Datasets(
            (
                self._dataset(staged.staging_table, staged.rows_loaded),
                self._dataset(rejects_table(staged.staging_table), staged.rows_rejected),
            ),
            (
                self._dataset(staged.table, staged.rows_loaded),
                self._dataset(rejects_table(staged.table), staged.rows_rejected),
                self._dataset(profile_table(staged.table)),
            ),
        )
