"""The contract every destination of a month keeps: write-audit-publish, behind one interface.

A month reaches a destination in five steps, the same for every destination (the task group of
``include.flows.load_month``):

1. ``stage`` writes the month's cleaned rows, its unreadable rows and its profile somewhere only
   this run reads (a staging table, a staging prefix);
2. the checks read the staged profile (``staged_profile``) and the published months before it
   (``published_history``), and store their flags with it (``record_anomalies``);
   a flag set to ``ask`` waits for a person, whose answer is stored with it too (``record_review``);
3. ``publish`` puts the staged month in place of the published one, all at once;
4. ``drop_staging`` removes what the run staged and did not publish (a teardown: whatever happened).

Each step also says what it read and wrote (``Datasets``), which ``include.observing.lineage``
sends as OpenLineage events. A destination is a subclass in a module of its own
(``include/destinations/<name>.py``), made in a task by ``from_airflow`` from its connection and
Variables, so its heavy imports (drivers, Arrow) never reach a DAG file's parse.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from include.checks.profile import MonthProfile
    from include.observing.lineage import Dataset
    from include.source.month_file import MonthFile
    from include.source.months import Month


@dataclass(frozen=True)
class Staged:
    """What a run staged for a month: small and flat, so it travels between tasks as an XCom.
    A destination adds where it staged (a table, a prefix) in a subclass."""

    taxi: str
    month: str
    run_id: str
    rows_loaded: int
    rows_rejected: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        names = {field.name for field in fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in names})


@dataclass(frozen=True)
class Datasets:
    """What a step read and wrote, for lineage."""

    inputs: tuple[Dataset, ...] = ()
    outputs: tuple[Dataset, ...] = ()


class Destination(ABC):
    """Where the monthly flows land a month of a family: one subclass per system."""

    # What ``stage`` returns; ``publish`` and the checks get it back from the XCom.
    staged_type: ClassVar[type[Staged]] = Staged
    # Whether the Taxi results view (which reads Postgres) charts this destination's staged months,
    # so a review can link to the chart of the month it asks about.
    shown_in_results: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_airflow(cls) -> Self:
        """In a task: the destination as configured, from its connection and Variables."""

    def close(self) -> None:
        """Release what ``from_airflow`` opened (a connection); nothing by default."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def stage(self, month_file: MonthFile, run_id: str) -> Staged:
        """Write the month's rows (``month_file.batches()``), rejects and profile to this
        run's staging area; nobody else sees them yet. A rerun replaces its own staging."""

    @abstractmethod
    def staged_profile(self, staged: Staged) -> MonthProfile:
        """The profile ``stage`` wrote."""

    @abstractmethod
    def published_history(self, taxi: str, before: Month, months: int) -> list[MonthProfile]:
        """The latest published profile of each of the ``months`` months before ``before``, oldest first."""

    @abstractmethod
    def record_anomalies(self, staged: Staged, anomalies: list[dict]) -> None:
        """Store the anomaly test's flags with the staged profile (an empty list: checked, none)."""

    @abstractmethod
    def record_review(self, staged: Staged, review: dict[str, Any]) -> None:
        """Store a person's review of the staged month with its profile (``include.checks.review``:
        the decision, who and when, their reason, what they were shown), before it is published or
        dropped; a published month keeps it."""

    @abstractmethod
    def publish(self, staged: Staged) -> dict[str, Any]:
        """Put the staged month in place of the published one, all at once; publishing twice
        changes nothing. Returns what was published, JSON-safe (the task's XCom, an asset event's
        extra): at least ``taxi``, ``month``, ``rows`` and ``location`` (a table, a URI, a path)."""

    @abstractmethod
    def drop_staging(self, taxi: str, month: Month, run_id: str) -> None:
        """Remove what the run staged for the month and did not publish."""

    @abstractmethod
    def staged_datasets(self, staged: Staged) -> Iterable[Dataset]:
        """Where ``stage`` wrote, for lineage (the source file is added by the caller)."""

    @abstractmethod
    def published_datasets(self, staged: Staged) -> Datasets:
        """What ``publish`` read and wrote, for lineage."""


def destination_class(path: str) -> type[Destination]:
    """The destination named by its dotted path, e.g. ``include.destinations.postgres.Postgres``:
    DAG files name it, the tasks import it, so a DAG's parse never loads a driver."""
    module, _, name = path.rpartition(".")
    found = getattr(import_module(module), name, None)
    if not (isinstance(found, type) and issubclass(found, Destination)):
        raise TypeError(f"{path} is not a Destination (include/destinations/base.py)")
    return found
