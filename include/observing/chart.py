"""The trips-per-day chart as PNG, drawn with matplotlib.

Figures are built with ``matplotlib.figure.Figure`` and rendered by the Agg canvas directly, never
through ``pyplot``: no global state and no GUI backend, so the same code runs in a task and in the
api-server's threads (the results plugin draws from there). matplotlib is imported inside the
functions: the DAG files import this module's ``DEFAULT_CHART_DIR`` and must not pay for it.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Collection, Mapping
from datetime import date
from pathlib import Path

# Where the DAGs write their charts unless the Variable ``chart_dir`` says otherwise.
DEFAULT_CHART_DIR = str(Path(tempfile.gettempdir()) / "nyc_taxi_charts")

BAR_COLOUR = "#2e8b57"  # sea green: an ordinary day
FLAG_COLOUR = "#c8102e"  # red: a day an anomaly flag names
FLAG_SHADE = "#f6c6cc"  # behind a flagged day, so a flagged day without trips still shows
WIDTH_PX, HEIGHT_PX, DPI = 1200, 450, 100


def trips_per_day_png(
    title: str,
    trips: Mapping[date, int],
    first: date,
    last: date,
    flagged_days: Collection[date] = (),
) -> bytes:
    """Draw one bar per day from ``first`` to ``last`` and return the chart as PNG bytes.

    What an engineer checks at a glance: a missing or half-loaded week shows as a gap, and the days
    an anomaly flag names are red, shaded behind, and explained in the legend. Days outside the
    range (the stray pickups of the TLC files) are counted in the caption, not drawn.
    """
    from matplotlib import dates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import StrMethodFormatter

    shown = {day: count for day, count in sorted(trips.items()) if first <= day <= last}
    outside = sum(trips.values()) - sum(shown.values())
    flagged = sorted({day for day in flagged_days if first <= day <= last})

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for day in flagged:
        centre = dates.date2num(day)
        axes.axvspan(centre - 0.5, centre + 0.5, color=FLAG_SHADE, linewidth=0, zorder=0)
    colours = [FLAG_COLOUR if day in flagged else BAR_COLOUR for day in shown]
    axes.bar(list(shown), list(shown.values()), width=0.8, color=colours, zorder=2)

    # The whole range on the axis, whatever the data: a missing day is a visible gap.
    axes.set_xlim(dates.date2num(first) - 0.5, dates.date2num(last) + 0.5)
    locator = dates.AutoDateLocator(minticks=4, maxticks=12)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    axes.set_ylim(bottom=0)
    axes.grid(axis="y", color="#dddddd", zorder=1)
    axes.set_axisbelow(True)
    axes.set_xlabel("pickup day")
    axes.set_ylabel("trips")
    figure.suptitle(title, x=0.01, horizontalalignment="left", fontsize="large")
    busiest = max(shown.values(), default=0)
    axes.set_title(
        f"busiest day {busiest:,} trips; {outside:,} trips with a pickup outside the range",
        loc="left",
        fontsize="small",
    )
    legend = [Patch(color=BAR_COLOUR, label="trips per pickup day")]
    if flagged:
        days = f"{len(flagged)} day{'s' if len(flagged) > 1 else ''}"
        legend.append(Patch(color=FLAG_COLOUR, label=f"flagged by an anomaly check ({days})"))
    # Beside the plot, never over a bar.
    axes.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")

    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()


def write_trips_per_day_chart(
    path: Path,
    title: str,
    trips: Mapping[date, int],
    first: date,
    last: date,
    flagged_days: Collection[date] = (),
) -> Path:
    """Write :func:`trips_per_day_png` to ``path`` (its folder created if missing); return ``path``."""
    png = trips_per_day_png(title, trips, first, last, flagged_days)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
