"""PNG charts in pure Python (zlib and struct): a canvas, a 5x7 pixel font, and trips per day.

A bar per day and a few labels do not justify a plotting library in the runtime image, so this
draws on an RGB canvas and writes the PNG chunks by hand. The benchmark's chart uses it too.
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from collections.abc import Mapping
from datetime import date
from pathlib import Path

# Where the DAGs write their charts unless the Variable ``chart_dir`` says otherwise.
DEFAULT_CHART_DIR = str(Path(tempfile.gettempdir()) / "nyc_taxi_charts")

Colour = tuple[int, int, int]

WHITE: Colour = (255, 255, 255)
BLACK: Colour = (0, 0, 0)
GREY: Colour = (200, 200, 200)
GREEN: Colour = (46, 139, 87)
RED: Colour = (200, 50, 50)

# 5x7 glyphs: seven rows of five pixels, one hex byte per row, the high bit (0x10) leftmost.
_FONT = {
    char: bytes.fromhex(rows)
    for char, rows in {
        "0": "0e11131519110e",
        "1": "040c040404040e",
        "2": "0e11010204081f",
        "3": "1f02040201110e",
        "4": "02060a121f0202",
        "5": "1f101e0101110e",
        "6": "0608101e11110e",
        "7": "1f010204080808",
        "8": "0e11110e11110e",
        "9": "0e11110f01020c",
        "A": "0e1111111f1111",
        "B": "1e11111e11111e",
        "C": "0e11101010110e",
        "D": "1c12111111121c",
        "E": "1f10101e10101f",
        "F": "1f10101e101010",
        "G": "0e11101711110f",
        "H": "1111111f111111",
        "I": "0e04040404040e",
        "J": "0702020202120c",
        "K": "11121418141211",
        "L": "1010101010101f",
        "M": "111b1515111111",
        "N": "11111915131111",
        "O": "0e11111111110e",
        "P": "1e11111e101010",
        "Q": "0e11111115120d",
        "R": "1e11111e141211",
        "S": "0f10100e01011e",
        "T": "1f040404040404",
        "U": "1111111111110e",
        "V": "11111111110a04",
        "W": "1111111515150a",
        "X": "11110a040a1111",
        "Y": "1111110a040404",
        "Z": "1f01020408101f",
        " ": "00000000000000",
        ".": "00000000000c0c",
        ",": "000000000c0408",
        ":": "000c0c000c0c00",
        "-": "0000001f000000",
        "/": "00010204081000",
        "\\": "00100804020100",
        "(": "02040808080402",
        ")": "08040202020408",
        "=": "00001f001f0000",
        ">": "08040201020408",
        "<": "02040810080402",
        "%": "18190204081303",
        "?": "0e110102040004",
        "_": "0000000000001f",
    }.items()
}
_GLYPH_WIDTH = 5


class Canvas:
    """An RGB image in memory, with just the drawing the chart needs."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def rectangle(self, left: int, top: int, width: int, height: int, colour: Colour) -> None:
        left, top = max(left, 0), max(top, 0)
        right, bottom = min(left + width, self.width), min(top + height, self.height)
        row = bytes(colour) * (right - left)
        for y in range(top, bottom):
            start = (y * self.width + left) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, left: int, top: int, text: str, colour: Colour = BLACK, scale: int = 2) -> None:
        """Draw ``text`` in upper case; characters outside the font are drawn as ``?``."""
        for index, char in enumerate(text.upper()):
            glyph = _FONT.get(char, _FONT["?"])
            x0 = left + index * (_GLYPH_WIDTH + 1) * scale
            for y, row in enumerate(glyph):
                for x in range(_GLYPH_WIDTH):
                    if row & (0x10 >> x):
                        self.rectangle(x0 + x * scale, top + y * scale, scale, scale, colour)

    def png(self) -> bytes:
        """The image as an 8-bit RGB PNG, every scanline unfiltered."""
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def write_trips_per_day_chart(
    path: Path, title: str, trips: Mapping[date, int], first: date, last: date
) -> Path:
    """Draw one bar per day from ``first`` to ``last`` and label every seventh into ``path``
    (its folder created if missing); return ``path``.

    What a learner checks at a glance: a missing or half-loaded week shows as a gap. Days outside
    the range (the stray pickups of the TLC files) are counted in the caption, not drawn.
    """
    span = (last - first).days + 1
    shown = {day: count for day, count in trips.items() if first <= day <= last}
    outside = sum(trips.values()) - sum(shown.values())
    margin, top, plot_height = 40, 80, 300
    bar_width = max(4, min(24, 1100 // span))
    canvas = Canvas(max(2 * margin + span * bar_width, 640), top + plot_height + 50)
    canvas.text(margin, 20, title)
    busiest = max(shown.values(), default=0)
    canvas.text(margin, 50, f"busiest day {busiest} trips, {outside} trips outside the range", scale=1)
    canvas.rectangle(margin, top + plot_height, span * bar_width, 2, BLACK)
    for day, count in shown.items():
        height = max(1, round(plot_height * count / busiest)) if count else 0
        left = margin + (day - first).days * bar_width + 1
        canvas.rectangle(left, top + plot_height - height, bar_width - 2, height, GREEN)
    for index in range(0, span, 7):
        label = date.fromordinal(first.toordinal() + index).strftime("%m-%d")
        canvas.rectangle(margin + index * bar_width, top + plot_height, 2, 8, BLACK)
        canvas.text(margin + index * bar_width, top + plot_height + 14, label, scale=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(canvas.png())
    return path
