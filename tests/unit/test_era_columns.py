"""A file without values in a column its era always has is wrong on its own, with or without history:
it fails naming the column, or (Variable ``missing_columns=flag``) loads flagged for the anomaly test.
Columns that come and go by era still load as nulls."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from include.checks.quality import find_anomalies, judge, parse_actions
from include.errors import DataQualityError, InvalidFileError
from include.source.families import FAMILIES
from include.source.month_file import MonthFile
from include.source.months import Month
from include.source.sources import SOURCES, MonthRequest
from local_stack.tlc_server import SAMPLES
from tests.samples import GREEN_2020_10, head_lines

OCTOBER = Month(2020, 10)
REQUEST = MonthRequest.of(SOURCES["mirror"], "http://mirror.test", "green", OCTOBER)


def green_month(folder: Path, change_row) -> Path:
    """The first 2,000 real trips of green 2020-10, each row (a dict by header) changed by ``change_row``."""
    rows = list(csv.DictReader(head_lines(GREEN_2020_10, 2001)))
    changed = [change_row(dict(row)) for row in rows]
    path = folder / GREEN_2020_10.name
    with gzip.open(path, "wt", newline="") as sink:
        writer = csv.DictWriter(sink, fieldnames=list(changed[0]))
        writer.writeheader()
        writer.writerows(changed)
    return path


def without_distance(row: dict) -> dict:
    row.pop("trip_distance")
    return row


def empty_distance(row: dict) -> dict:
    return row | {"trip_distance": ""}


def load(path: Path, missing_columns: str = "fail") -> MonthFile:
    month_file = MonthFile(path, REQUEST, missing_columns)
    for _ in month_file.batches():
        pass
    return month_file


@pytest.mark.parametrize("change", [without_distance, empty_distance], ids=["column absent", "column empty"])
def test_a_month_without_an_era_column_fails_naming_the_column(tmp_path, change):
    with pytest.raises(
        InvalidFileError, match=r"no value in column\(s\) trip_distance, which every green file"
    ):
        load(green_month(tmp_path, change))


def test_flagged_instead_the_month_loads_and_is_anomalous_without_any_history(tmp_path):
    month_file = load(green_month(tmp_path, without_distance), missing_columns="flag")
    profile = month_file.profile()

    assert profile.rows_loaded > 1000 and profile.missing_columns == ["trip_distance"]
    [flag] = [a for a in find_anomalies(profile, [], {}) if a.feature.startswith("missing_column")]
    assert (flag.feature, flag.value, flag.high, flag.action) == (
        "missing_column.trip_distance",
        1.0,
        0,
        "warn",
    )
    # The anomaly actions decide what it does, like any flag's.
    failing = find_anomalies(profile, [], parse_actions({"missing_column.*": "fail"}))
    with pytest.raises(DataQualityError, match=r"missing_column\.trip_distance"):
        judge(profile, [], failing)


def test_columns_that_come_and_go_by_era_still_load_as_nulls(tmp_path):
    # Green 2020 files have no cbd_congestion_fee (2025 on): nulls, no failure, no flag.
    profile = load(green_month(tmp_path, lambda row: row)).profile()
    assert profile.null_fraction["cbd_congestion_fee"] == 1.0 and profile.missing_columns == []


@pytest.mark.parametrize(
    ("taxi", "sample"), [(family.name, sample) for family in FAMILIES.values() for sample in family.samples]
)
def test_every_sample_has_every_column_of_its_era(taxi, sample):
    name = Path(sample).name
    month = Month.parse(name.rsplit("_", 1)[-1].split(".", 1)[0])
    source = "tlc" if name.endswith(".parquet") else "mirror"
    request = MonthRequest.of(SOURCES[source], "http://source.test", taxi, month)
    month_file = MonthFile(SAMPLES / sample, request)
    for _ in month_file.batches():
        pass
    assert month_file.empty_columns == ()
    assert FAMILIES[taxi].always_in(month)  # every family declares some
