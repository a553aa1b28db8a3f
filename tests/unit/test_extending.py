"""docs/extending.md stays true: its example destination and DAG run as written, and every
destination in the repository has the files its list names."""

from __future__ import annotations

import inspect
import pkgutil
import re
from importlib import import_module
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import include.destinations
from include.destinations.base import Destination
from include.flows import load_month
from include.source.families import TAXIS
from include.source.months import Month
from include.source.sources import SOURCES, MonthRequest
from local_stack import expected
from tests.samples import FHV_2021_01

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "extending.md"
JANUARY = Month(2021, 1)


def guide_code() -> tuple[str, str]:
    """The guide's two Python blocks: the destination's module, then its DAG file."""
    module, dag_file = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    return module, dag_file


@pytest.fixture
def local_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The guide's module as ``include.destinations.local_folder``, from a folder of the test's own."""
    package = tmp_path / "package"
    package.mkdir()
    (package / "local_folder.py").write_text(guide_code()[0])
    monkeypatch.setattr(include.destinations, "__path__", [*include.destinations.__path__, str(package)])
    yield import_module("include.destinations.local_folder")
    monkeypatch.delitem(__import__("sys").modules, "include.destinations.local_folder")


def load(destination: Destination, run_id: str) -> dict:
    """The guide's destination through the steps every monthly DAG's task group runs."""
    request = MonthRequest.of(SOURCES["mirror"], "http://mirror.test", "fhv", JANUARY)
    try:
        staged = load_month.stage(destination, FHV_2021_01, request, run_id)
        load_month.audit(destination, staged)
        load_month.check_anomalies(destination, staged, {})
        return load_month.publish(destination, staged)
    finally:
        destination.drop_staging("fhv", JANUARY, run_id)


def test_the_example_destination_loads_a_month_and_a_rerun_replaces_it(local_folder, tmp_path):
    destination = local_folder.LocalFolder(tmp_path / "warehouse")
    first = load(destination, "run-1")
    second = load(destination, "run-2")

    assert first == second and first["rows"] == expected.rows(FHV_2021_01)
    assert pq.read_table(second["location"]).num_rows == expected.rows(FHV_2021_01)
    assert sorted(p.name for p in (tmp_path / "warehouse" / "fhv").iterdir()) == ["2021-01"]
    assert list((tmp_path / "warehouse" / "_staging").iterdir()) == []  # the teardown's work
    # The published profile is what the next month's anomaly test reads.
    [history] = destination.published_history("fhv", Month(2021, 2), 12)
    assert (history.month, history.rows_loaded) == ("2021-01", first["rows"])


def test_the_example_dag_is_a_task_group_per_family(local_folder, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "taxi_api_to_local_folder.py").write_text(guide_code()[1])
    bag = DagBag(dag_folder=dags)

    assert bag.import_errors == {}
    dag = bag.dags["taxi_api_to_local_folder"]
    steps = ("wait_for_file", "stage", "audit", "check_anomalies", "publish")
    steps += ("drop_staging",)
    assert set(dag.task_ids) == {"plan_month"} | {f"{taxi}.{step}" for taxi in TAXIS for step in steps}


def repository_destinations() -> dict[str, type[Destination]]:
    """Every ``Destination`` in include/destinations, by module name."""
    found = {}
    for module in pkgutil.iter_modules(include.destinations.__path__):
        loaded = import_module(f"include.destinations.{module.name}")
        for _, value in inspect.getmembers(loaded, inspect.isclass):
            if (
                issubclass(value, Destination)
                and value is not Destination
                and value.__module__ == loaded.__name__
            ):
                found[module.name] = value
    return found


def test_every_destination_has_the_files_the_guide_lists():
    destinations = repository_destinations()
    assert set(destinations) >= {"postgres", "gcs"}
    for name, cls in destinations.items():
        dag_file = REPO / "dags" / f"taxi_api_to_{name}.py"
        assert f'"{cls.__module__}.{cls.__name__}"' in dag_file.read_text(), dag_file
        assert (REPO / "tests" / "integration" / f"test_taxi_api_to_{name}.py").exists()
        assert f"include/destinations/{name}.py" in (REPO / "docs" / "extending.md").read_text()
