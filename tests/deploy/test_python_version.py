"""The Python the project says it needs is the one its pinned requirements install on.

Each pin's Requires-Python comes from its installed metadata (what pip checked when installing
it); the floor in pyproject.toml must satisfy every one of them and be the lowest that does, and
the bootstrap check and ruff's target version must name the same floor.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from local_stack.compose import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _pins() -> dict[str, SpecifierSet]:
    """Every requirement pinned in requirements*.txt, with its Requires-Python."""
    pins = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (REPO / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                project = Requirement(line).name
                pins[project] = SpecifierSet(
                    importlib.metadata.metadata(project).get("Requires-Python") or ""
                )
    return pins


def _floor() -> Version:
    declared = SpecifierSet(PYPROJECT["project"]["requires-python"])
    [floor] = [Version(spec.version) for spec in declared if spec.operator == ">="]
    return floor


def test_the_declared_python_floor_is_the_lowest_every_pin_installs_on():
    pins = _pins()
    assert len(pins) > 10, pins
    floor = _floor()
    assert {name: str(needs) for name, needs in pins.items() if floor not in needs} == {}
    one_lower = Version(f"{floor.major}.{floor.minor - 1}")
    assert [name for name, needs in pins.items() if one_lower not in needs], f"{one_lower} would do as well"


def test_the_bootstrap_check_and_ruff_target_name_the_same_floor():
    floor = _floor()
    bootstrap = (REPO / "scripts" / "bootstrap.sh").read_text()
    assert re.findall(r"sys\.version_info < \((\d+), (\d+)\)", bootstrap) == [
        (str(floor.major), str(floor.minor))
    ]
    assert f"Python {floor.major}.{floor.minor} or newer is needed" in bootstrap
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{floor.major}{floor.minor}"
