"""The TLC file families, each declared once: its columns, the months each source has, its samples.

Nothing else in the repository names a family: the DAGs' task groups, the ``taxis`` param, the
sources' months, the local stand-in's files, the Taxi results view and the benchmarks all read
``FAMILIES``. Adding a family is one ``Family(...)`` below and a sample in ``data/tlc``.

Type inference is decided by whatever rows a file happens to contain: an all-empty ``ehail_fee``
reads as ``null`` one month and ``double`` the next, and the TLC's own Parquet stores zone ids as
``int32`` and passenger counts as ``int64`` or ``double`` depending on the year. Declaring every
column once here, with one type, and deriving the Arrow, Postgres and BigQuery types from that
list keeps every month of a family identical wherever it lands, whatever the source's format.

A family's columns grew over the years (``congestion_surcharge`` in 2019, ``airport_fee`` in
2022, ``cbd_congestion_fee`` in 2025; FHV's header changed case in 2020). The declared schema is
the union of every era: a file matches a column by any of its TLC spellings, ignoring case, and
a column a file does not have loads as nulls, so months of every era share one table. Only the
pickup time is required, since it places a trip in its month and day.

Every name downstream of the raw files is snake_case: ``VendorID`` becomes ``vendor_id``,
``PULocationID`` becomes ``pu_location_id``; the trip-time columns keep the TLC's names
(``tpep_pickup_datetime``), as the course uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from include.errors import InvalidParamsError
from include.source.months import Month

if TYPE_CHECKING:
    import pyarrow as pa

# Every row loaded carries the month of the file it came from, so a rerun replaces exactly that file.
SOURCE_MONTH_COLUMN = "source_month"

# Logical types, each one Arrow type; Postgres and BigQuery types derive from the Arrow schema.
ColumnKind = Literal["int", "float", "timestamp", "text"]


def _arrow_type(kind: ColumnKind) -> pa.DataType:
    import pyarrow as pa  # here, not at the top: DAG files import this module to list the families

    return {
        "int": pa.int64(),  # Arrow integers are nullable, unlike numpy's: no silent cast to float.
        "float": pa.float64(),
        # Microseconds, without a time zone: the TLC's times are New York wall-clock times.
        "timestamp": pa.timestamp("us"),
        "text": pa.string(),
    }[kind]


@dataclass(frozen=True)
class Column:
    """One declared column: its snake_case name, its type, and how the TLC files spell it."""

    name: str
    kind: ColumnKind
    # Spellings in the TLC files, matched ignoring case; the first is the current one.
    source_names: tuple[str, ...] = ()
    required: bool = False

    def __post_init__(self) -> None:
        if not self.source_names:
            object.__setattr__(self, "source_names", (self.name,))

    @property
    def arrow_type(self) -> pa.DataType:
        return _arrow_type(self.kind)

    @property
    def source_name(self) -> str:
        """The current TLC spelling, as in the files the course uses."""
        return self.source_names[0]


def _money(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, "float") for name in names)


# In the order of the TLC files' current headers; later additions at the end.
YELLOW_COLUMNS: tuple[Column, ...] = (
    Column("vendor_id", "int", ("VendorID",)),
    Column(
        "tpep_pickup_datetime",
        "timestamp",
        ("tpep_pickup_datetime", "Trip_Pickup_DateTime", "pickup_datetime"),
        required=True,
    ),
    Column(
        "tpep_dropoff_datetime",
        "timestamp",
        ("tpep_dropoff_datetime", "Trip_Dropoff_DateTime", "dropoff_datetime"),
    ),
    Column("passenger_count", "int"),
    Column("trip_distance", "float"),
    Column("ratecode_id", "int", ("RatecodeID", "Rate_Code")),
    Column("store_and_fwd_flag", "text", ("store_and_fwd_flag", "store_and_forward")),
    Column("pu_location_id", "int", ("PULocationID",)),
    Column("do_location_id", "int", ("DOLocationID",)),
    Column("payment_type", "int"),
    Column("fare_amount", "float", ("fare_amount", "Fare_Amt")),
    Column("extra", "float", ("extra", "surcharge")),
    Column("mta_tax", "float"),
    Column("tip_amount", "float", ("tip_amount", "Tip_Amt")),
    Column("tolls_amount", "float", ("tolls_amount", "Tolls_Amt")),
    *_money("improvement_surcharge"),
    Column("total_amount", "float", ("total_amount", "Total_Amt")),
    *_money("congestion_surcharge", "airport_fee", "cbd_congestion_fee"),
)

GREEN_COLUMNS: tuple[Column, ...] = (
    Column("vendor_id", "int", ("VendorID",)),
    Column("lpep_pickup_datetime", "timestamp", required=True),
    Column("lpep_dropoff_datetime", "timestamp"),
    Column("store_and_fwd_flag", "text"),
    Column("ratecode_id", "int", ("RatecodeID",)),
    Column("pu_location_id", "int", ("PULocationID",)),
    Column("do_location_id", "int", ("DOLocationID",)),
    Column("passenger_count", "int"),
    Column("trip_distance", "float"),
    *_money("fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount", "ehail_fee"),
    *_money("improvement_surcharge", "total_amount"),
    Column("payment_type", "int"),
    Column("trip_type", "int"),
    *_money("congestion_surcharge", "cbd_congestion_fee"),
)

# For-hire vehicles: no fares, no passenger counts. 2019 spells dropOff_datetime and PUlocationID.
FHV_COLUMNS: tuple[Column, ...] = (
    Column("dispatching_base_num", "text"),
    Column("pickup_datetime", "timestamp", ("pickup_datetime", "Pickup_date"), required=True),
    Column("dropoff_datetime", "timestamp"),
    Column("pu_location_id", "int", ("PULocationID", "locationID")),
    Column("do_location_id", "int", ("DOLocationID",)),
    Column("sr_flag", "int", ("SR_Flag",)),
    Column("affiliated_base_number", "text", ("Affiliated_base_number",)),
)


@dataclass(frozen=True)
class TaxiSchema:
    """Everything that differs between file families, derived from the column list."""

    taxi: str
    columns: tuple[Column, ...]
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(c.name for c in self.columns))

    @property
    def pickup_column(self) -> str:
        """``tpep_pickup_datetime`` (yellow), ``lpep_pickup_datetime`` (green), ``pickup_datetime`` (FHV)."""
        return next(c.name for c in self.columns if c.name.endswith("pickup_datetime"))

    @property
    def dropoff_column(self) -> str:
        return next(c.name for c in self.columns if c.name.endswith("dropoff_datetime"))

    @property
    def arrow_schema(self) -> pa.Schema:
        """The rows as every step after reading sees them: snake_case names, declared types."""
        import pyarrow as pa

        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])

    @property
    def table_schema(self) -> pa.Schema:
        """What every destination stores: the rows plus the month of the file they came from."""
        import pyarrow as pa

        return self.arrow_schema.append(pa.field(SOURCE_MONTH_COLUMN, pa.date32(), nullable=False))

    def has(self, name: str) -> bool:
        return name in self.names


# High-Volume For-Hire Vehicles (Uber, Lyft, Via, Juno): the TLC's Parquet only, from 2019-02, about
# 20 million trips a month. Columns as the TLC's data dictionary of 2025 lists them.
FHVHV_COLUMNS: tuple[Column, ...] = (
    Column("hvfhs_license_num", "text"),
    Column("dispatching_base_num", "text"),
    Column("originating_base_num", "text"),
    Column("request_datetime", "timestamp"),
    Column("on_scene_datetime", "timestamp"),
    Column("pickup_datetime", "timestamp", required=True),
    Column("dropoff_datetime", "timestamp"),
    Column("pu_location_id", "int", ("PULocationID",)),
    Column("do_location_id", "int", ("DOLocationID",)),
    Column("trip_miles", "float"),
    Column("trip_time", "int"),
    *_money("base_passenger_fare", "tolls", "bcf", "sales_tax", "congestion_surcharge", "airport_fee"),
    *_money("tips", "driver_pay"),
    *(Column(f"{flag}_flag", "text") for flag in ("shared_request", "shared_match", "access_a_ride")),
    *(Column(f"{flag}_flag", "text") for flag in ("wav_request", "wav_match")),
    *_money("cbd_congestion_fee"),
)


@dataclass(frozen=True)
class Era:
    """From ``since`` on, every file of the family has ``always`` with values: a file that lacks one,
    or leaves it empty, is wrong (``include.source.month_file``), whatever the months before it."""

    since: Month
    always: tuple[str, ...]


@dataclass(frozen=True)
class Family:
    """One TLC file family: what its files hold, who publishes which months, and its samples."""

    name: str
    description: str
    columns: tuple[Column, ...]
    # Oldest first; an era's columns add to those of the eras before it.
    eras: tuple[Era, ...]
    # The first month each source publishes (keys of include.source.sources.SOURCES); a source
    # not named here does not publish the family.
    first_months: dict[str, Month]
    # The files the local TLC stand-in serves (under data/tlc, in a source's layout); it builds the
    # family's other months from the nearest one (local_stack/mirror.py).
    samples: tuple[str, ...]
    schema: TaxiSchema = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema", TaxiSchema(self.name, self.columns))
        undeclared = {name for era in self.eras for name in era.always} - set(self.schema.names)
        if undeclared:
            raise ValueError(f"{self.name}: eras name undeclared column(s) {sorted(undeclared)}")

    def always_in(self, month: Month) -> tuple[str, ...]:
        """The columns every file of ``month`` has with values, in the declared order."""
        names = {name for era in self.eras if era.since <= month for name in era.always}
        return tuple(name for name in self.schema.names if name in names)


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "yellow",
            "yellow taxis: street hails anywhere, Manhattan mostly",
            YELLOW_COLUMNS,
            (
                Era(Month(2009, 1), ("tpep_pickup_datetime", "tpep_dropoff_datetime", "trip_distance")),
                Era(Month(2009, 1), ("fare_amount", "total_amount")),
                # Zone ids instead of coordinates from July 2016 on.
                Era(Month(2016, 7), ("vendor_id", "pu_location_id", "do_location_id", "payment_type")),
                Era(Month(2019, 1), ("congestion_surcharge",)),
            ),
            {"mirror": Month(2019, 1), "tlc": Month(2009, 1)},
            ("yellow/yellow_tripdata_2021-01.csv.gz",),
        ),
        Family(
            "green",
            "green taxis: street hails outside central Manhattan",
            GREEN_COLUMNS,
            (
                Era(Month(2013, 8), ("lpep_pickup_datetime", "lpep_dropoff_datetime", "trip_distance")),
                Era(Month(2013, 8), ("fare_amount", "total_amount")),
                Era(Month(2016, 7), ("vendor_id", "pu_location_id", "do_location_id")),
            ),
            {"mirror": Month(2019, 1), "tlc": Month(2013, 8)},
            ("green/green_tripdata_2020-10.csv.gz", "trip-data/green_tripdata_2024-01.parquet"),
        ),
        Family(
            "fhv",
            "for-hire vehicles: dispatched by a base",
            FHV_COLUMNS,
            # Zones, and even drop-off times, are often empty in FHV files: only these are always there.
            (Era(Month(2015, 1), ("dispatching_base_num", "pickup_datetime")),),
            {"mirror": Month(2019, 1), "tlc": Month(2015, 1)},
            ("fhv/fhv_tripdata_2019-01.csv.gz", "fhv/fhv_tripdata_2021-01.csv.gz"),
        ),
        Family(
            "fhvhv",
            "high-volume for-hire vehicles: the app companies (Uber, Lyft, Via, Juno)",
            FHVHV_COLUMNS,
            (
                Era(Month(2019, 2), ("hvfhs_license_num", "pickup_datetime", "dropoff_datetime")),
                Era(Month(2019, 2), ("pu_location_id", "do_location_id", "trip_miles", "trip_time")),
                Era(Month(2019, 2), ("base_passenger_fare", "driver_pay")),
            ),
            {"tlc": Month(2019, 2)},
            ("trip-data/fhvhv_tripdata_2024-01.parquet",),
        ),
    )
}
TAXIS: tuple[str, ...] = tuple(FAMILIES)


def family_named(taxi: str) -> Family:
    """Look up a family, rejecting anything outside the allow-list by name."""
    try:
        return FAMILIES[taxi]
    except (KeyError, TypeError):
        raise InvalidParamsError(
            f"taxi {taxi!r} is not supported; choose one of: {', '.join(TAXIS)}"
        ) from None


def schema_for(taxi: str) -> TaxiSchema:
    """A family's declared schema, rejecting an unknown family by name."""
    return family_named(taxi).schema
