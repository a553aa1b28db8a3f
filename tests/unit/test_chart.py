"""The trips-per-day chart, judged on its pixels: decoded from the PNG, never from matplotlib's objects."""

import struct
from datetime import date, timedelta

import numpy as np

from include.observing.chart import (
    BAR_COLOUR,
    FLAG_COLOUR,
    FLAG_SHADE,
    HEIGHT_PX,
    WIDTH_PX,
    trips_per_day_png,
    write_trips_per_day_chart,
)
from tests.png import bars as _bars
from tests.png import mask as _mask
from tests.png import pixels as _pixels
from tests.png import runs as _runs

OCTOBER = (date(2020, 10, 1), date(2020, 10, 31))
EVERY_DAY = {date(2020, 10, 1) + timedelta(days=index): 100 for index in range(31)}


def test_is_a_png_of_the_documented_size():
    png = trips_per_day_png("green trips", EVERY_DAY, *OCTOBER)

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", png[16:24]) == (WIDTH_PX, HEIGHT_PX)
    assert _pixels(png).shape == (HEIGHT_PX, WIDTH_PX, 3), "the data decodes to the size in the header"


def test_draws_one_bar_per_day_in_proportion_and_leaves_out_days_outside_the_range():
    trips = {date(2020, 10, 1): 100, date(2020, 10, 2): 50, date(2020, 10, 4): 25, date(2008, 12, 31): 7}
    bars = _bars(_pixels(trips_per_day_png("green trips", trips, *OCTOBER)), BAR_COLOUR)

    assert len(bars) == 3, "one bar per day with trips in the range; 2008-12-31 is not drawn"
    (first, tallest), (second, half), (fourth, quarter) = bars
    assert tallest > 150
    # Within 2 pixels: the top row of a bar is antialiased and the axis line covers its foot.
    assert abs(half - tallest / 2) <= 2 and abs(quarter - tallest / 4) <= 2, "heights in proportion"
    # Each day at its place on an axis of the whole month: where a month with every day puts it.
    month = [left for left, _ in _bars(_pixels(trips_per_day_png("t", EVERY_DAY, *OCTOBER)), BAR_COLOUR)]
    assert len(month) == 31
    assert [first, second, fourth] == [month[0], month[1], month[3]], "the day without trips leaves a gap"


def test_a_flagged_day_is_red_in_its_own_column_and_changes_nothing_else():
    tenth = _pixels(trips_per_day_png("t", EVERY_DAY, *OCTOBER, flagged_days={date(2020, 10, 10)}))
    twentieth = _pixels(trips_per_day_png("t", EVERY_DAY, *OCTOBER, flagged_days={date(2020, 10, 20)}))
    lefts = [left for left, _ in _bars(twentieth, BAR_COLOUR)]
    day_width = (lefts[-1] - lefts[0]) / 30  # the bars of Oct 1 and Oct 31

    # Same legend (one flagged day each), same bars but two: only those two days' columns differ.
    changed = _runs(np.any(tenth != twentieth, axis=(0, 2)))
    assert len(changed) == 2, changed
    (left, right), (later_left, later_right) = changed
    assert right - left <= day_width + 1 and later_right - later_left <= day_width + 1, "one day wide each"
    assert abs((later_left - left) - 10 * day_width) <= 2, "ten days apart, where Oct 10 and Oct 20 are"

    [(red_left, red_height)] = _bars(tenth, FLAG_COLOUR)
    [(green_left, green_height)] = [bar for bar in _bars(twentieth, BAR_COLOUR) if left <= bar[0] <= right]
    assert left <= red_left <= right and red_left == green_left, "the flagged bar is red in its own column"
    assert red_height == green_height, "flagging changes the colour, not the count"
    assert _mask(tenth[:, left : right + 1], FLAG_SHADE).any(), "and the day is shaded behind"


def test_a_flagged_day_without_trips_is_still_marked_and_the_legend_says_why():
    trips = {day: count for day, count in EVERY_DAY.items() if day != date(2020, 10, 10)}
    plain = _pixels(trips_per_day_png("t", trips, *OCTOBER))
    flagged = _pixels(trips_per_day_png("t", trips, *OCTOBER, flagged_days={date(2020, 10, 10)}))

    assert not _mask(plain, FLAG_SHADE).any() and not _mask(plain, FLAG_COLOUR).any()
    shade_columns = _runs(_mask(flagged, FLAG_SHADE).any(axis=0))
    assert len(shade_columns) == 1, "the empty flagged day is shaded in one column"
    bar_columns = [left for left, _ in _bars(flagged, BAR_COLOUR)]
    assert bar_columns[8] < shade_columns[0][0] < bar_columns[9], "between the bars of Oct 9 and Oct 11"
    # No bar is red, so the red pixels are the legend's swatch for the flagged days.
    assert _mask(flagged, FLAG_COLOUR).sum() > 0
    assert _bars(flagged, FLAG_COLOUR) == []


def test_writes_the_png_into_a_new_folder(tmp_path):
    path = write_trips_per_day_chart(tmp_path / "charts" / "october.png", "green trips", EVERY_DAY, *OCTOBER)

    assert path == tmp_path / "charts" / "october.png"
    assert path.read_bytes() == trips_per_day_png("green trips", EVERY_DAY, *OCTOBER)
