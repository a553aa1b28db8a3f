"""The constructed High-Volume FHV sample: the TLC's 2024 columns and types, and values that hang together."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from local_stack import fhvhv_samples
from local_stack.tlc_server import SAMPLES

SAMPLE = SAMPLES / "trip-data" / "fhvhv_tripdata_2024-01.parquet"
# The TLC's data dictionary for High-Volume FHV trips (2024 files: no cbd_congestion_fee yet).
DICTIONARY = {
    "hvfhs_license_num": pa.string(),
    "dispatching_base_num": pa.string(),
    "originating_base_num": pa.string(),
    "request_datetime": pa.timestamp("us"),
    "on_scene_datetime": pa.timestamp("us"),
    "pickup_datetime": pa.timestamp("us"),
    "dropoff_datetime": pa.timestamp("us"),
    "PULocationID": pa.int32(),
    "DOLocationID": pa.int32(),
    "trip_miles": pa.float64(),
    "trip_time": pa.int64(),
    **dict.fromkeys(
        ["base_passenger_fare", "tolls", "bcf", "sales_tax", "congestion_surcharge", "airport_fee"],
        pa.float64(),
    ),
    **dict.fromkeys(["tips", "driver_pay"], pa.float64()),
    **dict.fromkeys(
        [
            f"{flag}_flag"
            for flag in ("shared_request", "shared_match", "access_a_ride", "wav_request", "wav_match")
        ],
        pa.string(),
    ),
}


@pytest.fixture(scope="module")
def trips() -> pa.Table:
    return pq.read_table(SAMPLE)


def test_the_sample_has_the_dictionary_columns_and_types(trips):
    assert dict(zip(trips.schema.names, trips.schema.types, strict=True)) == DICTIONARY
    assert list(trips.schema.names) == list(DICTIONARY)
    assert 20_000 <= trips.num_rows <= 30_000


def test_every_day_of_january_2024_has_trips(trips):
    days = trips["pickup_datetime"].to_numpy().astype("datetime64[D]")
    assert set(days.tolist()) == set(np.arange("2024-01-01", "2024-02-01", dtype="datetime64[D]").tolist())


def test_times_come_in_order_and_trip_time_is_their_difference(trips):
    frame = trips.to_pandas()
    assert (frame.request_datetime <= frame.pickup_datetime).all()
    uber = frame[frame.hvfhs_license_num == "HV0003"]
    assert (uber.request_datetime <= uber.on_scene_datetime).all()
    assert (uber.on_scene_datetime <= uber.pickup_datetime).all()
    assert (frame.pickup_datetime < frame.dropoff_datetime).all()
    assert ((frame.dropoff_datetime - frame.pickup_datetime).dt.total_seconds() == frame.trip_time).all()
    # Lyft reports no on-scene time: null there, and only there.
    assert frame.on_scene_datetime.isna().eq(frame.hvfhs_license_num == "HV0005").all()


def test_companies_and_money_are_real_shaped(trips):
    frame = trips.to_pandas()
    shares = frame.hvfhs_license_num.value_counts(normalize=True)
    assert set(shares.index) == {"HV0003", "HV0005"}
    assert shares["HV0003"] == pytest.approx(0.73, abs=0.02)
    assert np.allclose(frame.bcf, frame.base_passenger_fare * 0.025, atol=0.006)
    assert np.allclose(frame.sales_tax, frame.base_passenger_fare * 0.08875, atol=0.006)
    assert frame.driver_pay.between(
        0.7 * frame.base_passenger_fare - 0.01, 0.8 * frame.base_passenger_fare + 0.01
    ).all()
    assert set(frame.congestion_surcharge) == {0.0, 2.75}
    for flag in (name for name in frame if name.endswith("_flag")):
        assert set(frame[flag]) <= {"Y", "N"}, flag


def test_rebuilding_gives_the_same_table(trips):
    assert fhvhv_samples.build().equals(trips)


def test_a_full_size_month_is_written_a_day_at_a_time_with_every_row_asked_for(tmp_path, trips):
    # The benchmark's 20-million-row month, at a size a unit test affords: same columns, every
    # day in the green month's proportions, each day's trips in pickup order.
    path = fhvhv_samples.write_full_month(tmp_path / "fhvhv_tripdata_2024-01.parquet", rows=100_003)
    month = pq.ParquetFile(path)
    assert month.schema_arrow == trips.schema
    assert month.metadata.num_rows == 100_003
    assert month.metadata.num_row_groups == 31
    green_days = fhvhv_samples.real_trips()["lpep_pickup_datetime"].to_numpy().astype("datetime64[D]")
    for day in range(31):
        pickups = month.read_row_group(day, columns=["pickup_datetime"])["pickup_datetime"].to_numpy()
        assert set(pickups.astype("datetime64[D]")) == {np.datetime64("2024-01-01") + day}
        assert (np.diff(pickups) >= np.timedelta64(0)).all()
        share = (green_days == np.datetime64("2024-01-01") + day).mean()
        assert len(pickups) == pytest.approx(100_003 * share, abs=31)
    assert not list(tmp_path.glob(".*partial"))
