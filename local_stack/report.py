"""Print what the flows wrote, read back through the same Airflow connections the DAGs use.

Run after a demo: ``python -m local_stack report``. It goes only through ``postgres_default`` and
``google_cloud_default`` and the Variables, so it reports real targets the same way.
"""

from __future__ import annotations

from datetime import date

import psycopg
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk import Variable
from psycopg import sql

from include.destinations.postgres import DEFAULT_SCHEMA
from include.source.families import SOURCE_MONTH_COLUMN


def month_row_counts(conn: psycopg.Connection, schema_name: str, table: str) -> dict[date, int]:
    """Rows per ``source_month`` of a table: what a load, a rerun or a backfill is judged by."""
    query = sql.SQL("SELECT {m}, count(*) FROM {t} GROUP BY {m} ORDER BY {m}").format(
        m=sql.Identifier(SOURCE_MONTH_COLUMN), t=sql.Identifier(schema_name, table)
    )
    return dict(conn.execute(query).fetchall())


def postgres_report() -> list[str]:
    """One line per table of the warehouse schema (not per partition): rows per source month, or in
    all; for a profile table, the months published and their anomaly flags."""
    schema_name = Variable.get("pg_schema", default=DEFAULT_SCHEMA)
    hook = PostgresHook("postgres_default")
    lines = [f"Postgres {hook.get_uri().split('@')[-1]}, schema {schema_name}:"]
    with hook.get_conn() as conn:
        tables = conn.execute(
            "SELECT c.relname, bool_or(a.attname = %s) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0"
            " GROUP BY 1 ORDER BY 1",
            (SOURCE_MONTH_COLUMN, schema_name),
        ).fetchall()
        for table, by_month in tables:
            if table.endswith("_profile"):
                published = conn.execute(
                    sql.SQL(
                        "SELECT source_month, coalesce(jsonb_array_length(anomalies), 0) FROM {}"
                        " WHERE published_at IS NOT NULL ORDER BY source_month, published_at"
                    ).format(sql.Identifier(schema_name, table))
                ).fetchall()
                for month, flags in dict(published).items():
                    lines.append(
                        f"  {schema_name}.{table:<26} {month:%Y-%m}  published, {flags} anomaly flag(s)"
                    )
            elif by_month:
                for month, rows in month_row_counts(conn, schema_name, table).items():
                    lines.append(f"  {schema_name}.{table:<26} {month:%Y-%m}  {rows:>9,} rows")
            else:
                [(rows,)] = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema_name, table))
                ).fetchall()
                lines.append(f"  {schema_name}.{table:<26} {'all':<7}  {rows:>9,} rows")
    return lines


def top_zones_report(limit: int = 5) -> list[str]:
    """The dbt mart's pickup zones with the most revenue, per month and service type (docs/dbt.md)."""
    schema_name = Variable.get("pg_schema", default=DEFAULT_SCHEMA)
    with PostgresHook("postgres_default").get_conn() as conn:
        if (
            conn.execute("SELECT to_regclass(%s)", (f"{schema_name}.dm_monthly_zone_revenue",)).fetchone()[0]
            is None
        ):
            return [f"No {schema_name}.dm_monthly_zone_revenue: the warehouse models have not run"]
        ranked = conn.execute(
            sql.SQL(
                "SELECT revenue_month, service_type, revenue_zone, revenue_borough, trips,"
                " revenue_monthly_total_amount FROM (SELECT *, row_number() OVER (PARTITION BY revenue_month,"
                " service_type ORDER BY revenue_monthly_total_amount DESC) AS place FROM {}) ranked"
                " WHERE place <= %s ORDER BY revenue_month, service_type, place"
            ).format(sql.Identifier(schema_name, "dm_monthly_zone_revenue")),
            (limit,),
        ).fetchall()
    lines = [f"Top {limit} pickup zones by revenue ({schema_name}.dm_monthly_zone_revenue, built by dbt):"]
    lines += [
        f"  {month:%Y-%m} {service:<6} {zone[:34]:<34} {borough:<13} {trips:>7,} trips  ${revenue:>12,.2f}"
        for month, service, zone, borough, trips, revenue in ranked
    ]
    return lines


def gcs_report() -> list[str]:
    """Objects in the bucket; a partitioned dataset's day folders are shown as one ``key=*`` line."""
    from collections import Counter

    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    bucket = Variable.get("gcs_bucket")
    names = GCSHook("google_cloud_default").list(bucket)
    folders = Counter(name.split("=")[0] + "=*/" if "=" in name else name for name in names)
    lines = [f"GCS gs://{bucket}: {len(names)} objects"]
    lines += [
        f"  gs://{bucket}/{folder}  ({count} file{'s' if count > 1 else ''})"
        for folder, count in sorted(folders.items())
    ]
    return lines


def bigquery_report() -> list[str]:
    """Tables of the BigQuery dataset with their row counts."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    from include.destinations.bigquery import DEFAULT_DATASET, BigQuery

    bq = BigQuery(BigQueryHook("google_cloud_default"), Variable.get("bq_dataset", default=DEFAULT_DATASET))
    lines = [f"BigQuery {bq.project}.{bq.dataset}:"]
    client = bq.hook.get_client(project_id=bq.project, location=bq.location)
    for table in sorted(t.table_id for t in client.list_tables(bq.dataset)):
        lines.append(f"  {bq.dataset}.{table:<26} {bq.count(table):>9,} rows")
    return lines


def charts_report() -> list[str]:
    """The trips-per-day charts the check and summary tasks drew (PNG files)."""
    from pathlib import Path

    from include.observing.chart import DEFAULT_CHART_DIR

    folder = Path(Variable.get("chart_dir", default=DEFAULT_CHART_DIR))
    charts = sorted(folder.glob("*.png")) if folder.is_dir() else []
    return [f"Charts in {folder}: {len(charts)}", *(f"  {chart}" for chart in charts)]


def main() -> None:
    sections = [postgres_report(), top_zones_report(), gcs_report(), bigquery_report(), charts_report()]
    print("\n\n".join("\n".join(lines) for lines in sections))
