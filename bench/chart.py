"""The benchmark's chart: each measured ratio as a bar against its target, as PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from include.chart import BLACK, GREEN, GREY, RED, Canvas


@dataclass(frozen=True)
class Bar:
    """One measured value against its target; the bar is drawn as ``value / target``."""

    caption: str
    value: float
    target: float

    @property
    def passed(self) -> bool:
        return self.value >= self.target


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
