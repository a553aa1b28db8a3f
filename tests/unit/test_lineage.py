"""``include.observing.lineage``: dataset names by OpenLineage's conventions, and the facets row
counts become.

The events themselves are checked end to end in tests/integration/test_lineage.py.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from airflow.providers.openlineage import conf as openlineage_conf
from airflow.sdk.execution_time.context import set_current_context
from openlineage.client.serde import Serde

from include.observing import lineage


def test_a_source_file_is_named_by_its_scheme_host_and_port_and_its_path():
    tlc = lineage.source_file(
        "https://d37ci6vzurychx.cloudfront.net/trip-data/green_tripdata_2024-01.parquet"
    )
    local = lineage.source_file("http://127.0.0.1:8765/green/green_tripdata_2020-10.csv.gz", rows=95120)

    assert (tlc.namespace, tlc.name) == (
        "https://d37ci6vzurychx.cloudfront.net",
        "/trip-data/green_tripdata_2024-01.parquet",
    )
    assert local == lineage.Dataset("http://127.0.0.1:8765", "/green/green_tripdata_2020-10.csv.gz", 95120)


def test_gcs_objects_and_bigquery_tables_follow_the_openlineage_naming():
    assert lineage.gcs_uri("gs://nyc-taxi/green_tripdata/green_tripdata_2020-10.parquet") == lineage.Dataset(
        "gs://nyc-taxi", "green_tripdata/green_tripdata_2020-10.parquet"
    )
    # a load into a partition writes the table: the decorator is not part of its name
    assert lineage.bigquery_table("project", "ny_taxi", "green_tripdata$202010", rows=7) == lineage.Dataset(
        "bigquery", "project.ny_taxi.green_tripdata", 7
    )


def test_row_counts_become_the_input_and_output_statistics_facets():
    counted = lineage.operator_lineage(
        inputs=[lineage.source_file("http://host/a.csv.gz", rows=10), lineage.gcs_uri("gs://b/c")],
        outputs=[lineage.gcs_uri("gs://b/d", rows=9), lineage.gcs_uri("gs://b/e")],
    )
    read = [json.loads(Serde.to_json(dataset)) for dataset in counted.inputs]
    written = [json.loads(Serde.to_json(dataset)) for dataset in counted.outputs]

    assert read[0]["inputFacets"]["inputStatistics"]["rowCount"] == 10
    assert "inputStatistics" not in read[1].get("inputFacets", {})
    assert written[0]["outputFacets"]["outputStatistics"]["rowCount"] == 9
    assert "outputStatistics" not in written[1].get("outputFacets", {})


@pytest.fixture
def lineage_on(monkeypatch) -> None:
    """OpenLineage on, with a console transport (the provider reads its settings uncached under pytest)."""
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", '{"type": "console"}')


def test_outside_a_task_a_report_is_not_kept_and_does_not_fail(lineage_on, monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXTRACTORS", lineage.EXTRACTOR)
    before = dict(lineage._reports)

    lineage.report([lineage.source_file("http://host/a.csv.gz")], [lineage.gcs_uri("gs://b/c", rows=1)])

    assert not openlineage_conf.is_disabled()
    assert lineage._reports == before


def test_lineage_on_without_the_extractor_registered_says_how_to_register_it(lineage_on, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW__OPENLINEAGE__EXTRACTORS", raising=False)
    lineage.report([lineage.source_file("http://host/a.csv.gz")])

    assert (
        "AIRFLOW__OPENLINEAGE__EXTRACTORS=include.observing.lineage.ReportedLineageExtractor" in caplog.text
    )


def test_a_task_that_reported_nothing_gets_an_empty_lineage_so_the_hooks_lineage_is_used():
    task_instance = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=1)
    extracted = lineage.ReportedLineageExtractor(operator=None).extract_on_complete(task_instance)

    assert (extracted.inputs, extracted.outputs) == ([], [])
    assert lineage.ReportedLineageExtractor.get_operator_classnames() == ["_PythonDecoratedOperator"]


def _task_instance(task_id: str) -> SimpleNamespace:
    return SimpleNamespace(dag_id="d", run_id="r", task_id=task_id, map_index=-1, try_number=1)


def test_in_a_task_the_reports_add_up_and_the_extractor_hands_them_over_with_counts(lineage_on, monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXTRACTORS", lineage.EXTRACTOR)
    task_instance = _task_instance("load")
    with set_current_context({"ti": task_instance}):  # what the task runner does around execute()
        lineage.report([lineage.gcs_uri("gs://b/month.parquet")], [lineage.bigquery_table("p", "d", "t", 5)])
        lineage.report(outputs=[lineage.bigquery_table("p", "d", "t$202010", 7)])
    extracted = lineage.ReportedLineageExtractor(operator=None).extract_on_complete(task_instance)

    assert [(d.namespace, d.name) for d in extracted.inputs] == [("gs://b", "month.parquet")]
    [output] = extracted.outputs
    assert (output.name, output.outputFacets["outputStatistics"].rowCount) == ("p.d.t", 7)


def test_a_report_that_cannot_be_made_is_logged_and_the_task_goes_on(lineage_on, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXTRACTORS", lineage.EXTRACTOR)
    broken_connection = SimpleNamespace(info=SimpleNamespace(host="", port=5432, dbname="ny_taxi"))
    with set_current_context({"ti": _task_instance("export")}):
        lineage.exported_to_gcs(broken_connection, "ny_taxi", "green_tripdata", "b", "o.parquet", 3)

    assert "could not record the lineage of this task" in caplog.text
