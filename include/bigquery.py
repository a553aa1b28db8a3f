"""BigQuery jobs through ``BigQueryHook``: queries, explicit-schema tables and Parquet loads.

Every table is created with an explicit schema before anything is loaded into it, so nothing
depends on schema autodetection. The local stand-in's gaps are listed in docs/local-stand-ins.md;
the code here works unchanged on real BigQuery.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

log = logging.getLogger(__name__)

DEFAULT_DATASET = "ny_taxi"
_BIGQUERY_TYPES: dict[pa.DataType, str] = {
    pa.int64(): "INT64",
    pa.float64(): "FLOAT64",
    pa.timestamp("us"): "TIMESTAMP",
    pa.string(): "STRING",
    pa.date32(): "DATE",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")


def _checked(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not a valid BigQuery name: letters, digits and underscores only"
        )
    return name


def table_schema(columns: pa.Schema) -> list[dict[str, str]]:
    """The BigQuery schema (REST form) of an Arrow schema."""
    return [{"name": f.name, "type": _BIGQUERY_TYPES[f.type], "mode": "NULLABLE"} for f in columns]


class BigQuery:
    """The jobs of the BigQuery flow, run through ``BigQueryHook`` in one project and dataset."""

    def __init__(self, hook: BigQueryHook, dataset: str, location: str | None = None) -> None:
        self.hook = hook
        self.project = hook.project_id
        self.dataset = _checked(dataset, "dataset")
        self.location = location

    def ref(self, table: str) -> str:
        """A backquoted ``project.dataset.table`` for SQL, with every part validated."""
        return f"`{self.project}.{self.dataset}.{_checked(table, 'table')}`"

    def query(self, sql: str) -> list[tuple]:
        """Run SQL as a query job through the hook and return its rows."""
        configuration = {"query": {"query": sql, "useLegacySql": False}}
        job = self.hook.insert_job(
            configuration=configuration, project_id=self.project, location=self.location
        )
        return [tuple(row.values()) for row in job.result()]

    def create_table(self, table: str, columns: pa.Schema, ddl_suffix: str = "") -> None:
        """``CREATE TABLE IF NOT EXISTS`` with an explicit schema (and partitioning/clustering)."""
        definitions = ", ".join(f"{f.name} {_BIGQUERY_TYPES[f.type]}" for f in columns)
        self.query(f"CREATE TABLE IF NOT EXISTS {self.ref(table)} ({definitions}) {ddl_suffix}")

    def load_parquet(self, table: str, columns: pa.Schema, uri: str) -> None:
        """Replace ``table``'s rows with one Parquet object (a load job, WRITE_TRUNCATE)."""
        self.create_table(table, columns)
        configuration = {
            "load": {
                "sourceUris": [uri],
                "sourceFormat": "PARQUET",
                "destinationTable": {"projectId": self.project, "datasetId": self.dataset, "tableId": table},
                "schema": {"fields": table_schema(columns)},
                "writeDisposition": "WRITE_TRUNCATE",
            }
        }
        self.hook.insert_job(configuration=configuration, project_id=self.project, location=self.location)

    def drop_table(self, table: str) -> None:
        self.query(f"DROP TABLE IF EXISTS {self.ref(table)}")

    def count(self, table: str, where: str = "TRUE") -> int:
        [(rows,)] = self.query(f"SELECT COUNT(*) FROM {self.ref(table)} WHERE {where}")
        return int(rows)
