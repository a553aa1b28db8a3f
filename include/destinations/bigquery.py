"""BigQuery through ``BigQueryHook``: explicit-schema tables, Parquet load jobs, and queries.

Every table is created with an explicit schema before anything is loaded into it, so nothing
depends on schema autodetection. A month of trips is one load job into one partition of its
table (``table$YYYYMM``, ``WRITE_TRUNCATE``): no DML, so loads of different months of one table
can run at once, and a failed load leaves the partition as it was. The local stand-in's gaps are
listed in docs/local-stand-ins.md; the code here is written for real BigQuery.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from include.errors import InvalidParamsError

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

log = logging.getLogger(__name__)

DEFAULT_DATASET = "ny_taxi"
_BIGQUERY_TYPES: dict[pa.DataType, str] = {
    pa.int64(): "INT64",
    pa.float64(): "FLOAT64",
    # Wall-clock times without an offset (the TLC's are New York time): DATETIME, not TIMESTAMP (UTC).
    pa.timestamp("us"): "DATETIME",
    pa.timestamp("us", tz="UTC"): "TIMESTAMP",
    pa.string(): "STRING",
    pa.date32(): "DATE",
}
# tables.get answers with the legacy names of some types.
_STANDARD_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")


def _checked(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParamsError(
            f"{what} {name!r} is not a valid BigQuery name: letters, digits and underscores only"
        )
    return name


def bigquery_type(arrow_type: pa.DataType) -> str:
    try:
        return _BIGQUERY_TYPES[arrow_type]
    except KeyError:
        raise InvalidParamsError(f"no BigQuery type is declared for the Arrow type {arrow_type}") from None


def table_schema(columns: pa.Schema) -> list[dict[str, str]]:
    """The BigQuery schema (REST form) of an Arrow schema; every column NULLABLE.

    NULLABLE even where Arrow says not null: BigQuery can add only NULLABLE columns to a table,
    and a REQUIRED column cannot be relaxed back by a load job.
    """
    return [
        {"name": _checked(f.name, "column"), "type": bigquery_type(f.type), "mode": "NULLABLE"}
        for f in columns
    ]


def month_partition(month: date) -> str:
    """The decorator of the MONTH partition holding ``month``: ``202010`` for 2020-10."""
    return f"{month.year:04d}{month.month:02d}"


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

    def create_table(
        self,
        table: str,
        columns: pa.Schema,
        *,
        month_partitioned_by: str | None = None,
        clustered_by: Sequence[str] = (),
    ) -> None:
        """Create ``table`` with an explicit schema unless it exists (a ``tables.insert`` call).

        ``month_partitioned_by`` names a DATE column to partition by MONTH, ``clustered_by`` the
        clustering columns; a table that already exists must have that partitioning, or this
        fails naming what it found (never replaced: it holds data).
        """
        resource: dict[str, Any] = {"schema": {"fields": table_schema(columns)}}
        if month_partitioned_by:
            resource["timePartitioning"] = {
                "type": "MONTH",
                "field": _checked(month_partitioned_by, "column"),
            }
        if clustered_by:
            resource["clustering"] = {"fields": [_checked(name, "column") for name in clustered_by]}
        created = self.hook.create_table(
            dataset_id=self.dataset,
            table_id=_checked(table, "table"),
            table_resource=resource,
            project_id=self.project,
            location=self.location,
            exists_ok=True,  # loads of several months create the table at once: one wins, all go on
        )
        if month_partitioned_by:
            self._check_month_partitioning(table, created, month_partitioned_by)

    def _check_month_partitioning(self, table: str, existing: Any, column: str) -> None:
        partitioning = existing.time_partitioning
        found = (partitioning.type_, partitioning.field) if partitioning else None
        if found != ("MONTH", column):
            raise InvalidParamsError(
                f"{self.ref(table)} exists with partitioning {found}, not MONTH on {column}: an earlier"
                f" version of this flow made it. Drop it (bq rm -t {self.project}:{self.dataset}.{table})"
                " and load its months again; they are still in GCS."
            )

    def load_parquet(self, table: str, columns: pa.Schema, uri: str) -> None:
        """Replace ``table``'s rows with one Parquet object (a load job, WRITE_TRUNCATE)."""
        self.create_table(table, columns)
        self._load(table, table_schema(columns), uri)

    def replace_month_partition(self, table: str, columns: pa.Schema, uri: str, month: date) -> None:
        """Replace the partition of ``month`` in ``table`` with one Parquet object: one load job.

        ``table`` must exist, partitioned by MONTH (``create_table``). The job writes to the
        decorator ``table$YYYYMM`` with WRITE_TRUNCATE: BigQuery swaps that partition atomically,
        leaves every other one untouched, and fails the job if any row of the file belongs to
        another month. Declared columns the table lacks are added (ALLOW_FIELD_ADDITION); columns
        the table has are kept, declared or not, so the schema only ever grows.
        """
        self._load(
            f"{_checked(table, 'table')}${month_partition(month)}", self._grown_schema(table, columns), uri
        )

    def _grown_schema(self, table: str, columns: pa.Schema) -> list[dict[str, Any]]:
        """The table's columns as they are, then the declared ones it does not have yet.

        A declared column whose type differs from the table's fails here, naming both, instead of
        loading values that mean something else (New York wall-clock times as UTC TIMESTAMPs).
        """
        schema = self.hook.get_schema(dataset_id=self.dataset, table_id=table, project_id=self.project)
        fields = schema["fields"]
        existing = {
            field["name"].lower(): _STANDARD_TYPES.get(field["type"], field["type"]) for field in fields
        }
        declared = table_schema(columns)
        changed = [
            f"{field['name']} is {existing[field['name'].lower()]}, declared {field['type']}"
            for field in declared
            if existing.get(field["name"].lower(), field["type"]) != field["type"]
        ]
        if changed:
            raise InvalidParamsError(f"{self.ref(table)} has columns of other types: {'; '.join(changed)}")
        return fields + [field for field in declared if field["name"].lower() not in existing]

    def _load(self, destination: str, fields: list[dict[str, Any]], uri: str) -> None:
        load: dict[str, Any] = {
            "sourceUris": [uri],
            "sourceFormat": "PARQUET",
            "destinationTable": {
                "projectId": self.project,
                "datasetId": self.dataset,
                "tableId": destination,
            },
            "schema": {"fields": fields},
            "createDisposition": "CREATE_NEVER",
            "writeDisposition": "WRITE_TRUNCATE",
        }
        if "$" in destination:
            # Allowed with WRITE_TRUNCATE only on a partition; it adds columns, never drops them.
            load["schemaUpdateOptions"] = ["ALLOW_FIELD_ADDITION"]
        self.hook.insert_job(configuration={"load": load}, project_id=self.project, location=self.location)

    def count(self, table: str, where: str = "TRUE") -> int:
        [(rows,)] = self.query(f"SELECT COUNT(*) FROM {self.ref(table)} WHERE {where}")
        return int(rows)

    def count_month(self, table: str, column: str, month: date) -> int:
        """Rows of ``table`` whose DATE ``column`` is the month's first day (reads one partition)."""
        first_day = date(month.year, month.month, 1).isoformat()
        return self.count(table, f"{_checked(column, 'column')} = DATE '{first_day}'")
