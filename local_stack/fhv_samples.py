"""Build the two FHV sample files in ``data/tlc/fhv/``: constructed, not real (no real FHV file is
available here).

They have the real headers of the two FHV eras on the course's mirror (2019 writes
``dropOff_datetime`` and ``PUlocationID``; 2020 on, ``dropoff_datetime`` and ``PULocationID``), the
mirror's CRLF line ends, and realistic values: trip times and zones are those of real green
trips of October 2020 (moved into the sample's month, durations kept), the base numbers are
real dispatching bases, with the share of empty zones and shared-ride flags of each era.
``data/tlc/README.md`` says which sample files are real and which are constructed.

Rebuild them with ``python -m local_stack.fhv_samples`` (deterministic: the same files every time).
"""

from __future__ import annotations

import calendar
import csv
import functools
import gzip
import io
from datetime import datetime
from pathlib import Path

import numpy as np

from local_stack.tlc_server import SAMPLES

GREEN_SOURCE = SAMPLES / "green" / "green_tripdata_2020-10.csv.gz"
ROWS = 12_000
# Real FHV dispatching bases (TLC base license numbers) of the kind found in the 2019-2021 files.
BASES = ["B00013", "B00037", "B00053", "B00111", "B00254", "B00310", "B00381", "B00477", "B00647",
         "B00856", "B00887", "B01145", "B01239", "B01536", "B01745", "B01899", "B02157", "B02293",
         "B02510", "B02682", "B02764", "B02800", "B02835", "B02864", "B02869", "B02872", "B02875",
         "B02877", "B02880", "B02883", "B02887", "B02889", "B03016", "B03060", "B03136"]  # fmt: skip
HEADERS = {
    2019: ["dispatching_base_num", "pickup_datetime", "dropOff_datetime", "PUlocationID", "DOlocationID",
           "SR_Flag", "Affiliated_base_number"],
    2021: ["dispatching_base_num", "pickup_datetime", "dropoff_datetime", "PULocationID", "DOLocationID",
           "SR_Flag", "Affiliated_base_number"],
}  # fmt: skip
# Per era: share of trips without a pickup zone, and share flagged as shared rides.
EMPTY_ZONE_SHARE = {2019: 0.18, 2021: 0.08}
SHARED_RIDE_SHARE = {2019: 0.07, 2021: 0.0}


@functools.cache
def _green_trips() -> list[tuple[datetime, datetime, str, str]]:
    with gzip.open(GREEN_SOURCE, "rt", newline="") as source:
        rows = csv.DictReader(source)
        return [
            (
                datetime.fromisoformat(row["lpep_pickup_datetime"]),
                datetime.fromisoformat(row["lpep_dropoff_datetime"]),
                row["PULocationID"],
                row["DOLocationID"],
            )
            for row in rows
            if row["lpep_pickup_datetime"].startswith("2020-10")
        ]


def write_sample(year: int, month: int, destination: Path) -> Path:
    """One constructed month of FHV trips with the header of ``year``'s era."""
    era = 2019 if year == 2019 else 2021
    random = np.random.default_rng(year * 100 + month)
    trips = _green_trips()
    chosen = sorted(random.choice(len(trips), ROWS, replace=False), key=lambda i: trips[i][0])
    path = destination / f"fhv_tripdata_{year:04d}-{month:02d}.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime 0: the same bytes on every rebuild.
    with gzip.GzipFile(path, "wb", mtime=0) as raw, io.TextIOWrapper(raw, newline="") as sink:
        writer = csv.writer(sink, lineterminator="\r\n")  # the mirror's line ends
        writer.writerow(HEADERS[era])
        for i in chosen:
            pickup, dropoff, pu_zone, do_zone = trips[i]
            # October has 31 days; a shorter month takes its last days' trips on its last day.
            day = min(pickup.day, calendar.monthrange(year, month)[1])
            moved = pickup.replace(year=year, month=month, day=day)
            base = BASES[random.integers(len(BASES))]
            writer.writerow(
                [
                    base,
                    moved.isoformat(sep=" "),
                    (moved + (dropoff - pickup)).isoformat(sep=" "),
                    "" if random.random() < EMPTY_ZONE_SHARE[era] else pu_zone,
                    do_zone,
                    "1" if random.random() < SHARED_RIDE_SHARE[era] else "",
                    base if random.random() < 0.9 else BASES[random.integers(len(BASES))],
                ]
            )
    return path


def main() -> None:
    for year, month in ((2019, 1), (2021, 1)):
        print(write_sample(year, month, SAMPLES / "fhv"))


if __name__ == "__main__":
    main()
