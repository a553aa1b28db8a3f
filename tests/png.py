"""Reading a chart back from its PNG bytes: pixels, runs of columns, bars of one colour."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.image import imread

LEGEND_SWATCH_PX = 20  # the legend's colour swatches are shorter than this; the tests' bars are taller


def pixels(png: bytes) -> np.ndarray:
    """The image as a height x width x 3 array of 0-255 RGB values."""
    return (imread(io.BytesIO(png), format="png")[:, :, :3] * 255).round().astype(int)


def mask(image: np.ndarray, colour: str) -> np.ndarray:
    """Which pixels are exactly ``colour`` (antialiased edges are not)."""
    return np.all(image == np.round(np.array(to_rgb(colour)) * 255).astype(int), axis=2)


def runs(columns: np.ndarray) -> list[tuple[int, int]]:
    """The ``(first, last)`` index of each run of consecutive true values."""
    found: list[tuple[int, int]] = []
    for x in np.flatnonzero(columns):
        if found and found[-1][1] == x - 1:
            found[-1] = (found[-1][0], int(x))
        else:
            found.append((int(x), int(x)))
    return found


def bars(image: np.ndarray, colour: str) -> list[tuple[int, int]]:
    """``(left column, height in pixels)`` of each bar drawn in ``colour``, left to right."""
    heights = mask(image, colour).sum(axis=0)
    return [(first, int(heights[(first + last) // 2])) for first, last in runs(heights > LEGEND_SWATCH_PX)]
