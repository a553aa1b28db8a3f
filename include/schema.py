"""The explicit schema of each TLC taxi colour: the single source of truth for every destination.

Type inference on a CSV is decided by whatever rows a file happens to contain: an all-empty
``ehail_fee`` becomes ``null`` in one month and ``double`` in the next, and the Parquet files of the
two months then no longer load into the same BigQuery table. Declaring every column once here, and
deriving the Arrow, Postgres and BigQuery types from that one list, keeps every month of a colour
identical wherever it lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

TaxiColour = Literal["yellow", "green"]
TAXI_COLOURS: tuple[TaxiColour, ...] = ("yellow", "green")

# Every row loaded carries the month of the file it came from, so a rerun replaces exactly that file.
SOURCE_MONTH_COLUMN = "source_month"

# The TLC publishes four columns in CamelCase; everything downstream of the raw files uses snake_case.
SNAKE_CASE_RENAMES: dict[str, str] = {
    "VendorID": "vendor_id",
    "RatecodeID": "ratecode_id",
    "PULocationID": "pu_location_id",
    "DOLocationID": "do_location_id",
}

# Logical types, each one Arrow type; Postgres and BigQuery types derive from the Arrow schema.
ColumnKind = Literal["int", "float", "timestamp", "text"]

_ARROW_TYPES: dict[ColumnKind, pa.DataType] = {
    "int": pa.int64(),  # Arrow integers are nullable, unlike numpy's: no silent cast to float.
    "float": pa.float64(),
    "timestamp": pa.timestamp("us"),  # microseconds: the unit BigQuery and Postgres both store.
    "text": pa.string(),
}


@dataclass(frozen=True)
class Column:
    """One source column: its name in the TLC file and its logical type."""

    source_name: str
    kind: ColumnKind

    @property
    def name(self) -> str:
        """The snake_case name used in Postgres and BigQuery."""
        return SNAKE_CASE_RENAMES.get(self.source_name, self.source_name)

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.kind]


# In the order of the TLC files' headers.
YELLOW_COLUMNS: tuple[Column, ...] = (
    Column("VendorID", "int"),
    Column("tpep_pickup_datetime", "timestamp"),
    Column("tpep_dropoff_datetime", "timestamp"),
    Column("passenger_count", "int"),
    Column("trip_distance", "float"),
    Column("RatecodeID", "int"),
    Column("store_and_fwd_flag", "text"),
    Column("PULocationID", "int"),
    Column("DOLocationID", "int"),
    Column("payment_type", "int"),
    Column("fare_amount", "float"),
    Column("extra", "float"),
    Column("mta_tax", "float"),
    Column("tip_amount", "float"),
    Column("tolls_amount", "float"),
    Column("improvement_surcharge", "float"),
    Column("total_amount", "float"),
    Column("congestion_surcharge", "float"),
)

GREEN_COLUMNS: tuple[Column, ...] = (
    Column("VendorID", "int"),
    Column("lpep_pickup_datetime", "timestamp"),
    Column("lpep_dropoff_datetime", "timestamp"),
    Column("store_and_fwd_flag", "text"),
    Column("RatecodeID", "int"),
    Column("PULocationID", "int"),
    Column("DOLocationID", "int"),
    Column("passenger_count", "int"),
    Column("trip_distance", "float"),
    Column("fare_amount", "float"),
    Column("extra", "float"),
    Column("mta_tax", "float"),
    Column("tip_amount", "float"),
    Column("tolls_amount", "float"),
    Column("ehail_fee", "float"),
    Column("improvement_surcharge", "float"),
    Column("total_amount", "float"),
    Column("payment_type", "int"),
    Column("trip_type", "int"),
    Column("congestion_surcharge", "float"),
)


@dataclass(frozen=True)
class TaxiSchema:
    """Everything that differs between taxi colours, derived from the column list."""

    colour: TaxiColour
    columns: tuple[Column, ...]

    @property
    def pickup_column(self) -> str:
        """The pickup timestamp's source name (``tpep_`` for yellow, ``lpep_`` for green)."""
        return next(c.source_name for c in self.columns if c.source_name.endswith("pickup_datetime"))

    @property
    def source_names(self) -> list[str]:
        return [c.source_name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        """Arrow schema with the TLC's own column names, as in the raw files and the Parquet layer."""
        return pa.schema([pa.field(c.source_name, c.arrow_type) for c in self.columns])

    @property
    def snake_case_arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])


SCHEMAS: dict[TaxiColour, TaxiSchema] = {
    "yellow": TaxiSchema("yellow", YELLOW_COLUMNS),
    "green": TaxiSchema("green", GREEN_COLUMNS),
}


def schema_for(taxi: str) -> TaxiSchema:
    """Look up a colour's schema, rejecting anything outside the allow-list by name."""
    try:
        return SCHEMAS[taxi]  # type: ignore[index]
    except KeyError:
        raise ValueError(
            f"taxi {taxi!r} is not supported; choose one of: {', '.join(TAXI_COLOURS)}"
        ) from None


def to_snake_case(table: pa.Table | pa.RecordBatch) -> pa.Table | pa.RecordBatch:
    """Rename the CamelCase TLC columns with the explicit mapping, leaving the rest untouched."""
    return table.rename_columns([SNAKE_CASE_RENAMES.get(n, n) for n in table.schema.names])
