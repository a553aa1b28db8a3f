"""A labelled horizontal bar chart as PNG, in pure Python (zlib and struct).

Three bars with a caption each do not justify a plotting library in the runtime image, so this
draws them on an RGB canvas with a 5x7 pixel font and writes the PNG chunks by hand.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

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
_GLYPH_WIDTH, _GLYPH_HEIGHT = 5, 7


@dataclass(frozen=True)
class Bar:
    """One measured value against its target; the bar is drawn as ``value / target``."""

    caption: str
    value: float
    target: float

    @property
    def passed(self) -> bool:
        return self.value >= self.target


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


def write_ratio_chart(path: Path, title: str, bars: list[Bar]) -> None:
    """Draw each bar as its value over its target, with a line at 1 (the target) and a caption.

    Normalising by the target puts a 0.8x and a 10x target on one axis: a bar passes when it
    reaches the line, green if it does and red if not.
    """
    width, margin, bar_height, row_height = 900, 30, 28, 80
    canvas = Canvas(width, 2 * margin + 40 + row_height * len(bars) + 30)
    canvas.text(margin, margin, title)
    scale_max = max([1.5, *(bar.value / bar.target * 1.1 for bar in bars)])
    plot_width = width - 2 * margin
    target_x = margin + round(plot_width / scale_max)
    top = margin + 40
    for index, bar in enumerate(bars):
        y = top + index * row_height
        canvas.text(margin, y, bar.caption)
        length = round(plot_width * min(bar.value / bar.target, scale_max) / scale_max)
        canvas.rectangle(margin, y + 22, plot_width, bar_height, GREY)
        canvas.rectangle(margin, y + 22, length, bar_height, GREEN if bar.passed else RED)
        canvas.rectangle(target_x - 1, y + 18, 3, bar_height + 8, BLACK)
    canvas.text(target_x - 30, top + row_height * len(bars), "TARGET")
    path.write_bytes(canvas.png())
