"""Lineage: what each task that moves data read and wrote, sent as OpenLineage events by Airflow's
OpenLineage provider (``apache-airflow-providers-openlineage``).

The provider emits a START and a COMPLETE (or FAIL) event for every task, with the inputs and
outputs it can find. For our tasks it finds little on its own: they are TaskFlow ``@task``
functions, which have no extractor; the hooks report some of what they touch (``GCSHook`` its
uploads and copies, ``BigQueryHook`` its tables, common-sql the SQL it runs), but they see the
local temporary files a task uploads rather than the TLC file it came from, a BigQuery partition
decorator rather than the table, and nothing of the rows copied into Postgres through psycopg.

So the task bodies say what they moved, in one call each (the functions at the end of this
module, all through ``report``), with the row counts they know; ``ReportedLineageExtractor``,
registered with the provider's documented ``[openlineage] extractors`` setting, hands that to the
provider when the task ends. A task that reports nothing keeps the provider's default: the hooks'
lineage. A task that reports is described by its report alone, so its event names exactly the
datasets it moved, the same way in every environment.

Datasets are named by OpenLineage's naming conventions, so events from other tools join them:
``postgres://host:port`` + ``database.schema.table``, ``gs://bucket`` + object name, ``bigquery``
+ ``project.dataset.table``, and ``scheme://host[:port]`` + path for the file a source publishes.

Lineage is off unless a transport is configured (``AIRFLOW__OPENLINEAGE__TRANSPORT``, see
docs/operations.md, "Lineage"). Off, or outside a task, the calls do nothing; they never fail a task.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec
from urllib.parse import urlsplit

from airflow.providers.openlineage import conf as openlineage_conf

if TYPE_CHECKING:
    import psycopg
    from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage

    from include.destinations.bigquery import BigQuery
    from include.source.month_file import MonthFile

log = logging.getLogger(__name__)

P = ParamSpec("P")

# What a TaskFlow ``@task`` runs as; ``ReportedLineageExtractor`` is registered for it.
TASKFLOW_OPERATOR = "_PythonDecoratedOperator"
# The value of [openlineage] extractors (AIRFLOW__OPENLINEAGE__EXTRACTORS) that registers it.
EXTRACTOR = "include.observing.lineage.ReportedLineageExtractor"


@dataclass(frozen=True)
class Dataset:
    """One dataset a task read or wrote, named by OpenLineage's conventions; ``rows`` if known."""

    namespace: str
    name: str
    rows: int | None = None


def source_file(url: str, rows: int | None = None) -> Dataset:
    """A file a source publishes over HTTP(S): namespace ``scheme://host[:port]``, name its path."""
    # OpenLineage's naming module has no class for HTTP; its general rule is scheme://authority + path.
    parts = urlsplit(url)
    return Dataset(f"{parts.scheme}://{parts.netloc}", parts.path, rows)


def month_source(month_file: MonthFile) -> Dataset:
    """The source file a ``MonthFile`` was read from, with its rows: those read and those set aside."""
    return source_file(month_file.request.url, month_file.report.rows_read + len(month_file.rejects.rows))


def postgres_table(conn: psycopg.Connection, schema: str, table: str, rows: int | None = None) -> Dataset:
    """A table of the Postgres server ``conn`` is connected to."""
    from openlineage.client.naming.dataset import Postgres

    info = conn.info
    return _named(Postgres(info.host, str(info.port), info.dbname, schema, table), rows)


def gcs_object(bucket: str, object_name: str, rows: int | None = None) -> Dataset:
    from openlineage.client.naming.dataset import GCS

    return _named(GCS(bucket, object_name), rows)


def gcs_uri(uri: str, rows: int | None = None) -> Dataset:
    """A ``gs://bucket/object`` URI."""
    parts = urlsplit(uri)
    return gcs_object(parts.netloc, parts.path.lstrip("/"), rows)


def bigquery_table(project: str, dataset: str, table: str, rows: int | None = None) -> Dataset:
    """A BigQuery table; a partition decorator (``table$202010``) is not part of its name."""
    from openlineage.client.naming.dataset import BigQuery

    return _named(BigQuery(project, dataset, table.split("$", 1)[0]), rows)


def _named(naming: Any, rows: int | None) -> Dataset:
    return Dataset(naming.get_namespace(), naming.get_name(), rows)


@dataclass
class _Report:
    inputs: dict[tuple[str, str], Dataset]
    outputs: dict[tuple[str, str], Dataset]


# Reports of the task instances run in this process, by task instance and try. A task runs in a
# process of its own; ``airflow dags test`` runs a whole DAG run in one, hence the key.
_reports: dict[tuple, _Report] = {}


def _key(ti: Any) -> tuple:
    return (ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number)


def _running_task_instance() -> Any | None:
    """The task instance whose lineage is recorded now, or None: lineage off, the extractor not
    registered (said in a warning), or not inside a task (a test or the benchmark calling a flow)."""
    from airflow.sdk import get_current_context

    if openlineage_conf.is_disabled():
        return None
    if EXTRACTOR not in openlineage_conf.custom_extractors():
        log.warning(
            "OpenLineage is on but [openlineage] extractors does not name %s: the lineage this task "
            "reports is not sent (set AIRFLOW__OPENLINEAGE__EXTRACTORS=%s)",
            EXTRACTOR,
            EXTRACTOR,
        )
        return None
    try:
        return get_current_context()["ti"]
    except RuntimeError:
        return None


def _best_effort(record: Callable[P, None]) -> Callable[P, None]:
    """Run ``record`` only when lineage is recorded, and never let it fail the task: lineage
    describes the work, it must not be the reason the work fails."""

    @functools.wraps(record)
    def recorded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            if _running_task_instance() is not None:
                record(*args, **kwargs)
        except Exception:
            log.warning("could not record the lineage of this task", exc_info=True)

    return recorded


@_best_effort
def report(inputs: Iterable[Dataset] = (), outputs: Iterable[Dataset] = ()) -> None:
    """Record what the running task read and wrote, for its COMPLETE event. Calls add up; a dataset
    reported twice keeps its last row count. Outside a task, or with lineage off, does nothing."""
    task_report = _reports.setdefault(_key(_running_task_instance()), _Report({}, {}))
    task_report.inputs.update({(d.namespace, d.name): d for d in inputs})
    task_report.outputs.update({(d.namespace, d.name): d for d in outputs})


def operator_lineage(inputs: Iterable[Dataset] = (), outputs: Iterable[Dataset] = ()) -> OperatorLineage:
    """The provider's ``OperatorLineage``: row counts as the input and output statistics facets."""
    from airflow.providers.openlineage.extractors.base import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import input_statistics_input_dataset, output_statistics_output_dataset

    def read(dataset: Dataset) -> InputDataset:
        facets = {}
        if dataset.rows is not None:
            facets["inputStatistics"] = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                rowCount=dataset.rows
            )
        return InputDataset(dataset.namespace, dataset.name, inputFacets=facets)

    def written(dataset: Dataset) -> OutputDataset:
        facets = {}
        if dataset.rows is not None:
            facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=dataset.rows
            )
        return OutputDataset(dataset.namespace, dataset.name, outputFacets=facets)

    return OperatorLineage(inputs=[read(d) for d in inputs], outputs=[written(d) for d in outputs])


def _reported_lineage_extractor() -> type:
    """The extractor class, made on first use: the provider's extractors module takes seconds to
    import (OpenLineage's client), which every task that reports would pay with lineage off."""
    from airflow.providers.openlineage.extractors.base import BaseExtractor

    class ReportedLineageExtractor(BaseExtractor):
        """The provider's extractor for TaskFlow tasks: the lineage the task reported with ``report``.

        Registered with ``[openlineage] extractors = include.observing.lineage.ReportedLineageExtractor``.
        A task that reported nothing gets an empty lineage, and the provider then falls back to the
        hooks'.
        """

        @classmethod
        def get_operator_classnames(cls) -> list[str]:
            return [TASKFLOW_OPERATOR]

        def _execute_extraction(self) -> OperatorLineage:
            return operator_lineage()  # the START event: nothing has been read or written yet

        def extract_on_complete(self, task_instance: Any) -> OperatorLineage:
            task_report = _reports.get(_key(task_instance))
            if task_report is None:
                return operator_lineage()
            return operator_lineage(task_report.inputs.values(), task_report.outputs.values())

    ReportedLineageExtractor.__module__, ReportedLineageExtractor.__qualname__ = (
        __name__,
        "ReportedLineageExtractor",
    )
    return ReportedLineageExtractor


# The class EXTRACTOR names, made on first access by __getattr__ below.
ReportedLineageExtractor: type[BaseExtractor]


def __getattr__(name: str) -> Any:
    """``ReportedLineageExtractor`` as the provider imports it (``import_string`` of ``EXTRACTOR``)."""
    if name == "ReportedLineageExtractor":
        extractor = globals()[name] = _reported_lineage_extractor()
        return extractor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# What each task that moves data moved, in the terms of its flow: one call at the end of its work.
# Each does nothing unless lineage is recorded, and never raises.


@_best_effort
def loaded_into_bigquery(bq: BigQuery, table: str, uri: str, rows: int) -> None:
    """A load job: one ``gs://`` object into a BigQuery table (or one of its partitions)."""
    report([gcs_uri(uri)], [bigquery_table(bq.project, bq.dataset, table, rows)])


@_best_effort
def queried_into_bigquery(bq: BigQuery, tables: Iterable[str], table: str, rows: int) -> None:
    """A query job that builds ``table`` from ``tables``."""
    report(
        [bigquery_table(bq.project, bq.dataset, name) for name in tables],
        [bigquery_table(bq.project, bq.dataset, table, rows)],
    )


@_best_effort
def exported_to_gcs(
    conn: psycopg.Connection, schema: str, table: str, bucket: str, name: str, rows: int
) -> None:
    """``taxi_daily_trips_to_gcs``: a day of a Postgres table written to one object."""
    report([postgres_table(conn, schema, table)], [gcs_object(bucket, name, rows)])


@_best_effort
def staged_from_source(
    url: str, rows_in_file: int, bucket: str, rows_by_object: dict[str, int | None]
) -> None:
    """A source file transformed into staged objects (``rows_by_object``, None if not counted)."""
    report(
        [source_file(url, rows_in_file)],
        [gcs_object(bucket, name, rows) for name, rows in rows_by_object.items()],
    )


@_best_effort
def written_in_gcs(bucket: str, read: dict[str, int | None], written: dict[str, int | None]) -> None:
    """Objects of a bucket read (name: rows) and the objects made from them."""
    report(
        [gcs_object(bucket, name, rows) for name, rows in read.items()],
        [gcs_object(bucket, name, rows) for name, rows in written.items()],
    )


@_best_effort
def loaded_into_postgres(
    conn: psycopg.Connection, schema: str, table: str, bucket: str, objects: Iterable[str], rows: int
) -> None:
    """Objects of a bucket loaded into a Postgres table (``rows`` in all)."""
    report([gcs_object(bucket, name) for name in objects], [postgres_table(conn, schema, table, rows)])


@_best_effort
def downloaded_to_gcs(url: str, uri: str) -> None:
    """A source file published to the bucket as ``uri``."""
    report([source_file(url)], [gcs_uri(uri)])
