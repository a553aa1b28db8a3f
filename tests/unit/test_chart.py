import struct
import zlib
from datetime import date

from include.chart import GREEN, write_trips_per_day_chart


def _pixels(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and the RGB rows (each led by its filter byte) of an unfiltered 8-bit PNG."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    start = png.index(b"IDAT") + 4
    length = struct.unpack(">I", png[start - 8 : start - 4])[0]
    return width, height, zlib.decompress(png[start : start + length])


def _bar_height(rows: bytes, width: int, height: int, x: int) -> int:
    """How many pixels of column ``x`` are bar-coloured."""
    stride = 1 + 3 * width
    return sum(rows[y * stride + 1 + 3 * x : y * stride + 4 + 3 * x] == bytes(GREEN) for y in range(height))


def test_draws_one_bar_per_day_in_proportion_and_leaves_out_days_outside_the_range(tmp_path):
    trips = {date(2020, 10, 1): 100, date(2020, 10, 2): 50, date(2020, 10, 4): 25, date(2008, 12, 31): 7}
    path = write_trips_per_day_chart(
        tmp_path / "chart.png", "green trips", trips, date(2020, 10, 1), date(2020, 10, 31)
    )
    width, height, rows = _pixels(path.read_bytes())
    assert width >= 640 and height > 300

    columns = [_bar_height(rows, width, height, x) for x in range(width)]
    bars = [(x, h) for x, h in enumerate(columns) if h and not columns[x - 1]]  # (left edge, height)
    assert [h for _, h in bars] == [300, 150, 75], "one bar per day with trips, in proportion"
    (first, _), (second, _), (fourth, _) = bars
    assert fourth - second == 2 * (second - first), "the day without trips leaves a gap"
