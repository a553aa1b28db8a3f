"""Where the TLC files come from: the course's CSV mirror or the TLC's own Parquet, and what each has.

Two sources publish the same trips under different layouts:

- ``mirror``: the course's mirror of the CSV files (``{base}/{taxi}/{taxi}_tripdata_{YYYY-MM}.csv.gz``),
  a fixed archive of 2019-01 to 2021-07 for yellow, green and FHV;
- ``tlc``: the TLC's own Parquet (``{base}/trip-data/{taxi}_tripdata_{YYYY-MM}.parquet``), every
  month since 2009, each published about two months after it ends.

The Variable ``taxi_source`` picks one. It also bounds the monthly schedules: no run is created
for a month the source cannot have. Since that bound is part of the DAG's shape, it is read when
the DAG file is parsed, from the environment (``AIRFLOW_VAR_TAXI_SOURCE``, with
``AIRFLOW_VAR_TAXI_FIRST_MONTH`` / ``AIRFLOW_VAR_TAXI_LAST_MONTH`` to narrow it), as Airflow's best
practices advise for configuration that shapes DAGs; the tasks read the same Variables and refuse
to run if the metastore says otherwise.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from include.errors import InvalidParamsError
from include.source.families import FAMILIES, TAXIS, TaxiSchema, schema_for
from include.source.months import Month, resolve_month

SourceName = Literal["mirror", "tlc"]


@dataclass(frozen=True)
class Source:
    """One publisher of the TLC files: its URL layout, file format, and which months it has."""

    name: SourceName
    description: str
    default_base_url: str
    # The taxi files under the base URL; {taxi} and {month} are filled in.
    file_path: str
    # None: a live source that keeps publishing; its latest months may not be there yet.
    last_month: Month | None
    # How many months after a month ends its file normally appears.
    publication_lag_months: int = 0

    @property
    def base_url_variable(self) -> str:
        return f"{self.name}_base_url"

    @property
    def first_months(self) -> dict[str, Month]:
        """The first month of each family this source publishes (declared with the families)."""
        return {f.name: f.first_months[self.name] for f in FAMILIES.values() if self.name in f.first_months}

    @property
    def first_month(self) -> Month:
        return min(self.first_months.values())

    def latest_month(self, today: date) -> Month:
        """The newest month this source can have on ``today``: the month before, on a live source."""
        return self.last_month or Month.of(today).previous

    def has(self, taxi: str, month: Month, today: date) -> bool:
        """Whether the source publishes ``taxi`` for ``month`` (or will, on a live source)."""
        first = self.first_months.get(taxi)
        return first is not None and first <= month <= self.latest_month(today)

    def may_still_appear(self, month: Month, today: date) -> bool:
        """A missing file of a recent month on a live source is late, not absent: it is worth waiting for."""
        if self.last_month is not None:
            return False
        newest_expected = Month.of(today).minus(self.publication_lag_months + 2)
        return month > newest_expected

    def file_name(self, taxi: str, month: Month) -> str:
        return self.file_path.format(taxi=taxi, month=month).rsplit("/", 1)[-1]

    def url(self, base_url: str, taxi: str, month: Month) -> str:
        return f"{base_url.rstrip('/')}/{self.file_path.format(taxi=taxi, month=month)}"

    def zone_lookup_url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/misc/taxi_zone_lookup.csv"


SOURCES: dict[str, Source] = {
    "mirror": Source(
        name="mirror",
        description="the course's CSV mirror (DataTalksClub/nyc-tlc-data)",
        default_base_url="https://github.com/DataTalksClub/nyc-tlc-data/releases/download",
        file_path="{taxi}/{taxi}_tripdata_{month}.csv.gz",
        last_month=Month(2021, 7),
    ),
    "tlc": Source(
        name="tlc",
        description="the TLC's own Parquet (TLC Trip Record Data)",
        default_base_url="https://d37ci6vzurychx.cloudfront.net",
        file_path="trip-data/{taxi}_tripdata_{month}.parquet",
        last_month=None,
        publication_lag_months=2,
    ),
}
DEFAULT_SOURCE = "mirror"


def source_named(name: str | None) -> Source:
    """The source called ``name``, rejecting anything else with the allowed values."""
    try:
        return SOURCES[name or DEFAULT_SOURCE]
    except (KeyError, TypeError):
        raise InvalidParamsError(
            f"Variable taxi_source is {name!r}; choose one of: {', '.join(SOURCES)}"
        ) from None


def _optional_month(value: str | None, what: str) -> Month | None:
    if not value:
        return None
    try:
        return Month.parse(value)
    except ValueError as error:
        raise InvalidParamsError(f"{what}: {error}") from None


@dataclass(frozen=True)
class SourceSettings:
    """The source and the months to keep loaded: the Variables ``taxi_source``, ``taxi_first_month``,
    ``taxi_last_month``."""

    source: Source
    first_month: Month
    last_month: Month | None

    @classmethod
    def from_values(
        cls, source: str | None, first: str | None = None, last: str | None = None
    ) -> SourceSettings:
        chosen = source_named(source)
        first_month = max(
            chosen.first_month, _optional_month(first, "Variable taxi_first_month") or chosen.first_month
        )
        last_month = _optional_month(last, "Variable taxi_last_month") or chosen.last_month
        if chosen.last_month and last_month and last_month > chosen.last_month:
            last_month = chosen.last_month
        if last_month and last_month < first_month:
            raise InvalidParamsError(f"taxi_first_month {first_month} is after taxi_last_month {last_month}")
        return cls(chosen, first_month, last_month)

    @classmethod
    def from_environment(cls) -> SourceSettings:
        """At parse time: the Variables as environment variables only, never the metastore."""
        return cls.from_values(
            os.environ.get("AIRFLOW_VAR_TAXI_SOURCE"),
            os.environ.get("AIRFLOW_VAR_TAXI_FIRST_MONTH"),
            os.environ.get("AIRFLOW_VAR_TAXI_LAST_MONTH"),
        )

    @property
    def start_date(self) -> datetime:
        """The logical date of the first scheduled run: midnight of the first month's first day."""
        return self.first_month.start

    @property
    def end_date(self) -> datetime | None:
        """The logical date of the last scheduled run, or None on a live source."""
        return self.last_month.start if self.last_month else None

    def latest_month(self, today: date) -> Month:
        latest = self.source.latest_month(today)
        return min(latest, self.last_month) if self.last_month else latest

    def check_month(self, month: Month, today: date) -> Month:
        """Reject a month outside the range this deployment loads, naming the range."""
        latest = self.latest_month(today)
        if month < self.first_month or month > latest:
            over = f" (not over yet on {today.isoformat()})" if month >= Month.of(today) else ""
            raise InvalidParamsError(
                f"month {month} is outside the months loaded from {self.source.name}, "
                f"{self.source.description}: choose a month from {self.first_month} to {latest}{over}"
            )
        return month

    def taxis_for(self, month: Month, requested: list[str], today: date) -> list[str]:
        """The requested families this source publishes for ``month``, in the declared order."""
        unknown = sorted(set(requested) - set(TAXIS))
        if unknown or not requested:
            raise InvalidParamsError(f"taxis {requested!r} must be a non-empty list of: {', '.join(TAXIS)}")
        published = [taxi for taxi in TAXIS if taxi in requested and self.source.has(taxi, month, today)]
        if not published:
            firsts = ", ".join(f"{taxi} from {first}" for taxi, first in self.source.first_months.items())
            raise InvalidParamsError(
                f"taxis {requested!r}: {self.source.name} publishes none of them for {month} "
                f"({firsts}); choose other taxis, or set Variable taxi_source"
            )
        return published


def runtime_settings() -> SourceSettings:
    """In a task: the same Variables, through Airflow (environment first, then the metastore).

    The schedule was bounded at parse time from the environment only; a value set in the
    metastore alone would make the tasks and the schedule disagree, so it is refused.
    """
    from airflow.sdk import Variable

    names = ("taxi_source", "taxi_first_month", "taxi_last_month")
    values = [Variable.get(name, default=None) for name in names]
    parsed = [os.environ.get(f"AIRFLOW_VAR_{name.upper()}") for name in names]
    for name, value, at_parse in zip(names, values, parsed, strict=True):
        if (value or None) != (at_parse or None):
            raise InvalidParamsError(
                f"Variable {name} is {value!r} in Airflow but {at_parse!r} in the environment the "
                f"schedule was built from: set it as the environment variable AIRFLOW_VAR_{name.upper()}"
            )
    return SourceSettings.from_values(*values)


def base_url(source: Source) -> str:
    """The source's base URL: the Variable ``{source}_base_url``, or the public default."""
    from airflow.sdk import Variable

    return Variable.get(source.base_url_variable, default=source.default_base_url)


@dataclass(frozen=True)
class RunPlan:
    """What one run of a monthly flow loads: the month, the source, and the families it has."""

    month: str
    source: str
    taxis: list[str]


def plan_run(
    params: dict, data_interval_start: datetime | None, today: date, settings: SourceSettings
) -> RunPlan:
    """The run's month (its params, else its data interval) and the requested families the
    source publishes for it, validated before anything is downloaded."""
    month = settings.check_month(resolve_month(params.get("month"), data_interval_start), today)
    taxis = settings.taxis_for(month, list(params.get("taxis") or TAXIS), today)
    return RunPlan(str(month), settings.source.name, taxis)


@dataclass(frozen=True)
class MonthRequest:
    """One file to load: the family, the month, and where the source publishes it."""

    taxi: str
    month: Month
    source: str
    url: str

    @property
    def schema(self) -> TaxiSchema:
        return schema_for(self.taxi)

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @classmethod
    def of(cls, source: Source, base_url: str, taxi: str, month: Month) -> MonthRequest:
        return cls(schema_for(taxi).taxi, month, source.name, source.url(base_url, taxi, month))

    def to_dict(self) -> dict[str, str]:
        """Flat and JSON-safe, for an XCom."""
        return {"taxi": self.taxi, "month": str(self.month), "source": self.source, "url": self.url}

    @classmethod
    def from_dict(cls, values: dict[str, str]) -> MonthRequest:
        return cls(values["taxi"], Month.parse(values["month"]), values["source"], values["url"])


@contextmanager
def downloaded(url: str, **download_options: float) -> Iterator[Path]:
    """Download ``url`` into a temporary folder that is removed when the block ends.

    ``download_options`` go to ``include.source.download.download`` (timeouts, retries, backoff).
    """
    from include.source.download import download

    with tempfile.TemporaryDirectory(prefix="tlc-") as folder:
        path = Path(folder) / url.rsplit("/", 1)[-1]
        download(url, path, **download_options)
        yield path
