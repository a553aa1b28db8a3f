"""The benchmark's chart: each measured ratio as a bar against its target, as PNG (matplotlib, Agg)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from include.observing.chart import BAR_COLOUR, DPI, FLAG_COLOUR

TRACK_COLOUR = "#e0e0e0"


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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scale_max = max([1.5, *(bar.value / bar.target * 1.1 for bar in bars)])
    figure = Figure(figsize=(9, 1.2 + 0.8 * len(bars)), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = range(len(bars))
    ratios = [bar.value / bar.target for bar in bars]
    axes.barh(rows, [scale_max] * len(bars), height=0.6, color=TRACK_COLOUR)
    axes.barh(rows, ratios, height=0.6, color=[BAR_COLOUR if bar.passed else FLAG_COLOUR for bar in bars])
    axes.axvline(1.0, color="black", linewidth=2, label="target")
    axes.set_yticks(list(rows), [bar.caption for bar in bars])
    axes.invert_yaxis()  # the first bar on top, as listed
    axes.set_xlim(0, scale_max)
    axes.set_xlabel("measured / target (a bar reaching the line passes)")
    figure.suptitle(title, x=0.01, horizontalalignment="left")
    axes.legend(loc="lower right", fontsize="small")
    canvas.print_png(str(path))
