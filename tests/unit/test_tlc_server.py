"""The TLC mirror stand-in, throttled: the whole file, sent no faster than asked."""

import io
import time
import urllib.request

import pyarrow.parquet as pq

from local_stack.tlc_server import SAMPLES, serve_in_thread
from tests.samples import YELLOW_2021_01


def test_a_throttled_mirror_sends_the_whole_file_at_the_rate_asked():
    server, base_url = serve_in_thread(bytes_per_second=400_000)
    try:
        started = time.monotonic()
        with urllib.request.urlopen(f"{base_url}/yellow/yellow_tripdata_2021-01.csv.gz") as response:
            body = response.read()
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
    assert body == YELLOW_2021_01.read_bytes()
    assert elapsed >= len(body) / 400_000 * 0.9  # about 1 s for the 0.4 MB sample


def test_the_high_volume_fhv_sample_is_served_in_the_tlc_layout():
    sample = SAMPLES / "trip-data" / "fhvhv_tripdata_2024-01.parquet"
    server, base_url = serve_in_thread()
    try:
        with urllib.request.urlopen(f"{base_url}/trip-data/fhvhv_tripdata_2024-01.parquet") as response:
            body, length = response.read(), response.headers["Content-Length"]
    finally:
        server.shutdown()
    assert body == sample.read_bytes()
    assert int(length) == len(body)
    assert pq.read_table(io.BytesIO(body)).num_rows == pq.ParquetFile(sample).metadata.num_rows
