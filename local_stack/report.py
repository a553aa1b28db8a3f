"""Print what the flows wrote, read back through the same Airflow connections the DAGs use.

Run after a demo: ``python -m local_stack report``. It works against the local stack and against
real targets alike, since it only goes through ``postgres_default``.
"""

from __future__ import annotations

from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk import Variable

from include.postgres import DEFAULT_SCHEMA, month_row_counts


def postgres_report() -> list[str]:
    """One line per table and month in the warehouse schema, with its row count."""
    schema_name = Variable.get("pg_schema", default=DEFAULT_SCHEMA)
    hook = PostgresHook("postgres_default")
    lines = [f"Postgres {hook.get_uri().split('@')[-1]}, schema {schema_name}:"]
    with hook.get_conn() as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
            (schema_name,),
        ).fetchall()
        for (table,) in tables:
            for month, rows in month_row_counts(conn, schema_name, table).items():
                lines.append(f"  {schema_name}.{table:<24} {month:%Y-%m}  {rows:>9,} rows")
    return lines


def main() -> None:
    print("\n".join(postgres_report()))
