"""The month of TLC trips a run loads, and its file downloaded from the source.

A run's request (taxi colour and month) is validated before anything is downloaded; the file is
downloaded into a temporary folder that is removed when the step is done.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from include.download import download
from include.months import Month, resolve_month, validate_month
from include.schema import TaxiSchema, schema_for

DEFAULT_TLC_BASE_URL = "https://github.com/DataTalksClub/nyc-tlc-data/releases/download"


def tlc_file_name(taxi: str, month: Month) -> str:
    return f"{schema_for(taxi).colour}_tripdata_{month}.csv.gz"


def tlc_url(base_url: str, taxi: str, month: Month) -> str:
    """The mirror's layout: ``{base}/{taxi}/{taxi}_tripdata_{YYYY-MM}.csv.gz``."""
    return f"{base_url.rstrip('/')}/{taxi}/{tlc_file_name(taxi, month)}"


@dataclass(frozen=True)
class MonthRequest:
    """The taxi colour and month one run loads, validated before anything is downloaded."""

    taxi: str
    month: Month

    @property
    def schema(self) -> TaxiSchema:
        return schema_for(self.taxi)

    @classmethod
    def from_run(cls, params: dict, data_interval_start: datetime | None, today: date) -> MonthRequest:
        """Build the request from a run's params and data interval (see ``include.months``)."""
        schema = schema_for(params.get("taxi"))
        month = validate_month(resolve_month(params.get("month"), data_interval_start), today)
        return cls(schema.colour, month)


@contextmanager
def downloaded_month(base_url: str, request: MonthRequest, **download_options: float) -> Iterator[Path]:
    """Download the month's file into a temporary directory that is removed afterwards.

    ``download_options`` go to ``include.download.download`` (timeouts, retries, backoff).
    """
    with tempfile.TemporaryDirectory(prefix="tlc-") as folder:
        path = Path(folder) / tlc_file_name(request.taxi, request.month)
        download(tlc_url(base_url, request.taxi, request.month), path, **download_options)
        yield path
