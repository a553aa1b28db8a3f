"""The steps of ``taxi_warehouse_models`` that are not dbt's: which months a run rebuilds.

The dbt project is ``include/dbt`` (docs/dbt.md); Cosmos turns each of its models, seeds and their
tests into tasks. A run rebuilds the months named by the asset events that triggered it, each
once however many families or republications named it; dbt receives them as the var ``months``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from include.source.families import schema_for
from include.source.months import Month


def months_to_build(events: Iterable[Mapping[str, Any]], params: Mapping[str, Any]) -> list[str]:
    """The first days of the months to rebuild, oldest first, from the events' extras (``taxi``,
    ``month``); without events (a manual run) from the ``months`` param, where empty means every
    month."""
    months: set[Month] = set()
    for extra in events:
        schema_for(extra["taxi"])  # an event of a family outside the allow-list is refused by name
        months.add(Month.parse(extra["month"]))
    if not months:
        months.update(Month.parse(month) for month in params.get("months") or [])
    return [month.first_day.isoformat() for month in sorted(months)]


def dbt_months_var(months: list[str]) -> str:
    """The months as dbt's var ``months`` takes them: comma-separated, empty for every month."""
    return ",".join(months)
