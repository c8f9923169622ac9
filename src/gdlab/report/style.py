"""The one home of the report's look: palette, line styles per run, matplotlib settings.

Colours are the Okabe–Ito palette (safe for the common colour-vision deficiencies). An
optimizer has the same colour in every figure; a run with a decay schedule is drawn dashed in
its optimizer's colour, so "Adam" and "Adam + decay" read as one family.

Figures are built as ``matplotlib.figure.Figure`` objects, never through pyplot: nothing
depends on (or changes) pyplot's state or the interactive backend, and PNGs render with Agg.
"""

from __future__ import annotations

import functools
import zlib

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

OPTIMIZER_COLORS = {
    "gd": OKABE_ITO["blue"],
    "momentum": OKABE_ITO["vermillion"],
    "rmsprop": OKABE_ITO["bluish_green"],
    "adam": OKABE_ITO["reddish_purple"],
}
# optimizers the lab does not know get one of these, picked by a stable hash of the name
_OTHER_COLORS = [OKABE_ITO[k] for k in ("orange", "sky_blue", "black", "yellow")]

# a marker per optimizer as well, so lines that coincide (same α) stay distinguishable
OPTIMIZER_MARKERS = {"gd": "o", "momentum": "s", "rmsprop": "^", "adam": "D"}
_OTHER_MARKERS = ["v", "P", "X", "*"]

CLASS_COLORS = [OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "reddish_purple",
                                       "sky_blue", "vermillion", "yellow", "black")]

CONSTANT_SCHEDULES = {"", "none", "constant", "fixed"}

DPI = 110  # for the PNG files

RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "grid.linestyle": ":",
    "legend.frameon": False,
    "legend.fontsize": 8,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "lines.solid_capstyle": "round",
}


def optimizer_color(optimizer: str) -> str:
    """The colour of an optimizer, the same in every figure and in the HTML table."""
    name = str(optimizer).strip().lower()
    if name in OPTIMIZER_COLORS:
        return OPTIMIZER_COLORS[name]
    return _OTHER_COLORS[zlib.crc32(name.encode()) % len(_OTHER_COLORS)]


def optimizer_marker(optimizer: str) -> str:
    """The marker of an optimizer's lines in the per-epoch figures."""
    name = str(optimizer).strip().lower()
    if name in OPTIMIZER_MARKERS:
        return OPTIMIZER_MARKERS[name]
    return _OTHER_MARKERS[zlib.crc32(name.encode()) % len(_OTHER_MARKERS)]


def lighten(color: str, amount: float) -> tuple[float, float, float]:
    """``color`` mixed with white: amount 0 gives the colour, 1 gives white."""
    from matplotlib.colors import to_rgb

    return tuple(c + (1 - c) * amount for c in to_rgb(color))


def is_decayed(schedule) -> bool:
    """Whether a schedule label names learning-rate decay (anything but a constant α)."""
    name = str(schedule if schedule is not None else "").strip().lower()
    return not (name in CONSTANT_SCHEDULES or name.startswith("constant"))


def run_style(run) -> dict:
    """``color`` and ``linestyle`` for a run's lines: its optimizer's colour, dashed if decayed."""
    return {"color": optimizer_color(run.optimizer),
            "linestyle": "--" if is_decayed(run.schedule) else "-"}


def plain(text) -> str:
    """A user's string for a matplotlib label, shown literally: ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def styled(function):
    """Build the figure under the report's matplotlib settings ``RC`` (artists read rcParams
    when they are created)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from matplotlib import rc_context

        with rc_context(RC):
            return function(*args, **kwargs)

    return wrapper
