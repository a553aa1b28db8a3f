"""Build the High-Volume FHV sample ``data/tlc/trip-data/fhvhv_tripdata_2024-01.parquet``: constructed.

No real High-Volume FHV file is available here. The sample has exactly the columns and Parquet
types of the TLC's 2024 files (its data dictionary; ``cbd_congestion_fee`` only comes in 2025) and
real-shaped values:

- trip times, zones and miles are those of real green trips of January 2024 (the TLC's own green
  file of the same month, which covers every day), sampled without replacement;
- the company: Uber (HV0003, base B03404) for about 73% of the trips, Lyft (HV0005, base B03406)
  for the rest; Lyft's on-scene time is null (the TLC's files leave it empty), its originating
  base too;
- the request comes a few minutes before the pickup, the car on scene in between;
- base passenger fare about $2.50 a mile plus $0.70 a minute (a trip's own noise, at least $7.50);
  bcf 2.5% and sales tax 8.875% of the fare; congestion surcharge $2.75 when a trip starts or ends
  in Manhattan, airport fee $2.50 at JFK or LaGuardia; tolls on a few long trips; tips on a
  fifth of the trips; driver pay 70-80% of the fare;
- the flags: a few shared requests (about half of them matched), wheelchair requests and matches
  at small real-looking rates, no Access-A-Ride trips.

Treat its statistics as illustrative, not as facts about High-Volume FHV trips. Rebuild it with
``python -m local_stack.fhvhv_samples`` (a fixed seed: the same table every time);
``data/tlc/README.md`` says which sample files are real and which are constructed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from local_stack.tlc_server import SAMPLES

GREEN_SOURCE = SAMPLES / "trip-data" / "green_tripdata_2024-01.parquet"
ZONES = SAMPLES / "misc" / "taxi_zone_lookup.csv"
DESTINATION = SAMPLES / "trip-data" / "fhvhv_tripdata_2024-01.parquet"
ROWS = 25_000
SEED = 202401
# The TLC's data dictionary for High-Volume FHV trips, as the 2024 files type it.
SCHEMA = pa.schema(
    [
        ("hvfhs_license_num", pa.string()),
        ("dispatching_base_num", pa.string()),
        ("originating_base_num", pa.string()),
        ("request_datetime", pa.timestamp("us")),
        ("on_scene_datetime", pa.timestamp("us")),
        ("pickup_datetime", pa.timestamp("us")),
        ("dropoff_datetime", pa.timestamp("us")),
        ("PULocationID", pa.int32()),
        ("DOLocationID", pa.int32()),
        ("trip_miles", pa.float64()),
        ("trip_time", pa.int64()),
        *((name, pa.float64()) for name in ("base_passenger_fare", "tolls", "bcf", "sales_tax")),
        *((name, pa.float64()) for name in ("congestion_surcharge", "airport_fee", "tips", "driver_pay")),
        *((f"{flag}_flag", pa.string()) for flag in ("shared_request", "shared_match", "access_a_ride")),
        *((f"{flag}_flag", pa.string()) for flag in ("wav_request", "wav_match")),
    ]
)
# License number and dispatching base of each company in the 2024 files, and its share of trips.
COMPANIES = {"HV0003": ("B03404", 0.73), "HV0005": ("B03406", 0.27)}
AIRPORTS = (132, 138)  # JFK, LaGuardia
FARE_PER_MILE, FARE_PER_MINUTE, MINIMUM_FARE = 2.50, 0.70, 7.50
BCF_RATE, SALES_TAX_RATE = 0.025, 0.08875
CONGESTION_SURCHARGE, AIRPORT_FEE, BRIDGE_TOLL = 2.75, 2.50, 6.94
TIPPED_SHARE, SHARED_REQUEST_SHARE, WAV_REQUEST_SHARE, WAV_MATCH_SHARE = 0.2, 0.01, 0.002, 0.07


def manhattan_zones(path: Path = ZONES) -> np.ndarray:
    with path.open(newline="") as lookup:
        return np.array(
            [int(row["LocationID"]) for row in csv.DictReader(lookup) if row["Borough"] == "Manhattan"]
        )


def real_trips(path: Path = GREEN_SOURCE) -> pa.Table:
    """The green month's trips picked up in January 2024 with a plausible time and distance."""
    columns = [
        "lpep_pickup_datetime",
        "lpep_dropoff_datetime",
        "PULocationID",
        "DOLocationID",
        "trip_distance",
    ]
    green = pq.read_table(path, columns=columns)
    pickup = green["lpep_pickup_datetime"].to_numpy()
    seconds = (green["lpep_dropoff_datetime"].to_numpy() - pickup) / np.timedelta64(1, "s")
    miles = green["trip_distance"].to_numpy()
    keep = (
        (pickup >= np.datetime64("2024-01-01")) & (pickup < np.datetime64("2024-02-01"))
        & (seconds > 60) & (seconds <= 3 * 3600) & (miles > 0) & (miles <= 60)
    )  # fmt: skip
    return green.filter(pa.array(keep))


def build(rows: int = ROWS, seed: int = SEED) -> pa.Table:
    """``rows`` constructed trips of January 2024, sorted by pickup time."""
    return construct(real_trips(), rows, np.random.default_rng(seed))


def write_full_month(destination: Path, rows: int, seed: int = SEED) -> Path:
    """A month at the TLC's size (about 20 million trips): each day's real green trips drawn with
    replacement, as many as the day's share of the green month, then constructed as the sample
    is; written a day at a time (one row group each), so memory holds one day."""
    random = np.random.default_rng(seed)
    trips = real_trips()
    days = pc.day(trips["lpep_pickup_datetime"]).to_numpy()
    counts = np.bincount(days, minlength=32)[1:]
    per_day = np.floor(rows * counts / counts.sum()).astype(int)
    per_day[-1] += rows - per_day.sum()
    partial = destination.with_name(f".{destination.name}.partial")
    with pq.ParquetWriter(partial, SCHEMA, compression="zstd") as writer:
        for day, day_rows in enumerate(per_day, start=1):
            writer.write_table(construct(trips.filter(pa.array(days == day)), int(day_rows), random))
    partial.replace(destination)
    return destination


def construct(trips: pa.Table, rows: int, random: np.random.Generator) -> pa.Table:
    """``rows`` trips shaped as the TLC's High-Volume FHV files from the real ``trips`` (drawn
    without replacement when there are enough), sorted by pickup time."""
    picked = random.choice(trips.num_rows, rows, replace=rows > trips.num_rows)
    trips = trips.take(np.sort(picked))
    pickup = trips["lpep_pickup_datetime"].to_numpy().astype("datetime64[us]")
    dropoff = trips["lpep_dropoff_datetime"].to_numpy().astype("datetime64[us]")
    pu_zone = trips["PULocationID"].to_numpy().astype(np.int32)
    do_zone = trips["DOLocationID"].to_numpy().astype(np.int32)
    miles = trips["trip_distance"].to_numpy()
    trip_time = ((dropoff - pickup) // np.timedelta64(1, "s")).astype(np.int64)

    licenses = np.array(list(COMPANIES))
    company = random.choice(len(licenses), rows, p=[share for _, share in COMPANIES.values()])
    license_num = licenses[company]
    base = np.array([base for base, _ in COMPANIES.values()])[company]
    lyft = license_num == "HV0005"

    # Request, then the car on scene, then the pickup: whole seconds, as the TLC writes them.
    to_pickup = np.clip(random.exponential(1.0, rows), 0, 10) * 60
    to_scene = np.clip(random.gamma(2.0, 2.0, rows), 0.5, 25) * 60
    on_scene = pickup - (to_pickup.astype(np.int64) * 1_000_000).astype("timedelta64[us]")
    request = on_scene - (to_scene.astype(np.int64) * 1_000_000).astype("timedelta64[us]")

    raw_fare = (FARE_PER_MILE * miles + FARE_PER_MINUTE * trip_time / 60) * random.lognormal(0, 0.12, rows)
    fare = np.round(np.maximum(raw_fare, MINIMUM_FARE), 2)
    tolls = np.where((miles > 8) & (random.random(rows) < 0.3), BRIDGE_TOLL, 0.0)
    manhattan = np.isin(pu_zone, manhattan_zones()) | np.isin(do_zone, manhattan_zones())
    airport = np.isin(pu_zone, AIRPORTS) | np.isin(do_zone, AIRPORTS)
    tipped = random.random(rows) < TIPPED_SHARE
    tips = np.where(tipped, np.round(fare * random.uniform(0.10, 0.25, rows), 2), 0.0)
    shared_request = random.random(rows) < SHARED_REQUEST_SHARE
    shared_match = shared_request & (random.random(rows) < 0.5)
    wav_request = random.random(rows) < WAV_REQUEST_SHARE
    wav_match = wav_request | (random.random(rows) < WAV_MATCH_SHARE)

    def flag(values: np.ndarray) -> pa.Array:
        return pa.array(np.where(values, "Y", "N"), pa.string())

    columns = {
        "hvfhs_license_num": pa.array(license_num, pa.string()),
        "dispatching_base_num": pa.array(base, pa.string()),
        "originating_base_num": pa.array(base, pa.string(), mask=lyft),
        "request_datetime": pa.array(request, pa.timestamp("us")),
        "on_scene_datetime": pa.array(on_scene, pa.timestamp("us"), mask=lyft),
        "pickup_datetime": pa.array(pickup, pa.timestamp("us")),
        "dropoff_datetime": pa.array(dropoff, pa.timestamp("us")),
        "PULocationID": pa.array(pu_zone, pa.int32()),
        "DOLocationID": pa.array(do_zone, pa.int32()),
        "trip_miles": pa.array(miles, pa.float64()),
        "trip_time": pa.array(trip_time, pa.int64()),
        "base_passenger_fare": pa.array(fare),
        "tolls": pa.array(tolls),
        "bcf": pa.array(np.round(fare * BCF_RATE, 2)),
        "sales_tax": pa.array(np.round(fare * SALES_TAX_RATE, 2)),
        "congestion_surcharge": pa.array(np.where(manhattan, CONGESTION_SURCHARGE, 0.0)),
        "airport_fee": pa.array(np.where(airport, AIRPORT_FEE, 0.0)),
        "tips": pa.array(tips),
        "driver_pay": pa.array(np.round(fare * random.uniform(0.70, 0.80, rows), 2)),
        "shared_request_flag": flag(shared_request),
        "shared_match_flag": flag(shared_match),
        "access_a_ride_flag": flag(np.zeros(rows, bool)),
        "wav_request_flag": flag(wav_request),
        "wav_match_flag": flag(wav_match),
    }
    table = pa.table(columns, schema=SCHEMA)
    return table.take(pc.sort_indices(table, [("pickup_datetime", "ascending")]))


def write_sample(destination: Path = DESTINATION, rows: int = ROWS) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    # One row group and zstd, like the TLC's files.
    pq.write_table(build(rows), destination, compression="zstd", row_group_size=rows)
    return destination


def main() -> None:
    path = write_sample()
    print(f"{path}: {pq.ParquetFile(path).metadata.num_rows} trips")


if __name__ == "__main__":
    main()
