"""The figure commands of ``gdlab``: ``figures``, ``smooth``, ``landscape`` and ``schedule``.

``register(commands)`` adds them to the argparse sub-parsers of :func:`gdlab.cli.build_parser`.
Bad input raises :class:`~gdlab.cli.common.CommandError` (or ``ValueError``), which ``gdlab``
prints as one line on stderr with exit status 2.
"""

from __future__ import annotations

import inspect
import math
import sys
from pathlib import Path

from .._files import write_config
from .common import CommandError, _names, take_out_dir

#: the lecture's figures in gdlab.lab.figures.FIGURES, by number, and the test functions of
#: gdlab.lab.landscape.LANDSCAPES (light copies for the parser; a test keeps them equal)
FIGURES = ("minibatch-cost", "paths", "ewa", "bias-correction", "oscillation", "decay",
           "powers-of-two", "weight-decay")
LANDSCAPES = ("elongated", "rosenbrock", "beale")
SCHEDULE_OPTIONS = {  # command-line option -> the schedule's argument
    "decay_rate": "decay_rate", "time_interval": "time_interval", "base": "base", "k": "k",
    "per": "per", "factor": "factor", "every": "every"}
#: inverse_time's decay_rate when --decay-rate is not given: the lecture's example (with α₀ =
#: 0.2 the first four epochs train at 0.1, 0.067, 0.05, 0.04)
DEFAULT_DECAY_RATE = 1.0


def _image_path(text: str, default_suffix: str = ".png") -> Path:
    path = Path(text)
    if path.is_dir():
        raise CommandError(f"--out {text!r} is a folder; give a file name like "
                           f"{Path(text) / ('plot' + default_suffix)}")
    return path if path.suffix else path.with_suffix(default_suffix)


def _floats(text: str, what: str, example: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):
        raise CommandError(f"{what} must be comma-separated numbers like {example}, "
                           f"got {text!r}")
    return values


def parse_betas(text: str) -> list[float]:
    """``"0.5,0.9,0.98"`` → [0.5, 0.9, 0.98], each β in [0, 1)."""
    betas = _floats(text, "--beta", "0.5,0.9,0.98")
    for beta in betas:
        if not 0 <= beta < 1:
            raise CommandError(f"--beta values must be in [0, 1), got {beta:g} in {text!r}")
    return list(dict.fromkeys(betas))


# ---------------------------------------------------------------------------- gdlab figures


def cmd_figures(args) -> None:
    from ..lab import figures

    names = figures.figure_names(args.names)
    with take_out_dir(args.out, args.force, "gdlab figures") as out:
        figs = figures.write_figures(out, names, seed=args.seed, report=not args.no_report)
        write_config(out, "figures", {"figures": names, "seed": args.seed})
    for name in figs:
        spec = figures.FIGURES[name]
        print(f"figure {spec.number}: {out / spec.file}  ({spec.title})")
    if not args.no_report:
        print(f"report: {out / 'report.html'}")


# ---------------------------------------------------------------------------- gdlab smooth


def cmd_smooth(args) -> None:
    import numpy as np

    from ..ewa import ewa
    from ..lab import figures

    betas = parse_betas(args.beta)
    out = _image_path(args.out) if args.out else None
    values, _ = figures.read_column(args.file, args.column)
    theta = np.asarray(values, dtype=np.float64)
    smoothed = [ewa(theta, beta, bias_correction=args.bias_correction) for beta in betas]
    if out is not None:
        fig = figures.smoothing_figure(theta, betas, bias_correction=args.bias_correction,
                                       name=f"{args.column} ({Path(args.file).name})",
                                       xlabel="t (row)")
        figures.save_figure(fig, out)
        print(f"figure: {out}")
    if out is None or args.print:
        v = "v_hat" if args.bias_correction else "v"
        lines = [",".join(["t", args.column] + [f"{v}(beta={beta:g})" for beta in betas])]
        for i, x in enumerate(theta.tolist()):
            lines.append(",".join([str(i + 1), _number(x)] + [_number(s[i]) for s in smoothed]))
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()  # a reader that stops (| head) ends the command quietly (main)


def _number(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:.10g}"


# ---------------------------------------------------------------------------- gdlab landscape


def _lrs(text: str | None, optimizers: list[str]) -> dict | float | None:
    """``0.1`` (one α for all) or ``gd=0.9,adam=0.25`` (α per optimizer; the others keep the
    function's own)."""
    if text is None:
        return None
    if "=" not in text:
        value = _floats(text, "--lr", "0.1 or gd=0.9,adam=0.25")
        if len(value) != 1 or value[0] <= 0:
            raise CommandError(f"--lr must be one number > 0 or name=value pairs like "
                               f"gd=0.9,adam=0.25, got {text!r}")
        return value[0]
    lrs = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if name not in optimizers:
            raise CommandError(f"--lr names {name!r}, which is not among --optimizers "
                               f"({', '.join(optimizers)})")
        lrs[name] = _floats(value, f"--lr {name}", "0.1")[0]
        if lrs[name] <= 0:
            raise CommandError(f"--lr {name} must be > 0, got {value.strip()!r}")
    return lrs


def cmd_landscape(args) -> None:
    from ..lab import figures, landscape

    land = landscape.get_landscape(args.function)
    optimizers = _names(args.optimizers, list(landscape.NAMES), "optimizers")
    lr = _lrs(args.lr, optimizers)
    start = None if args.start is None else _floats(args.start, "--start", "-1.5,2")
    if start is not None and len(start) != 2:
        raise CommandError(f"--start must be two numbers w1,w2 like -1.5,2, got {args.start!r}")
    if args.steps is not None and args.steps < 1:
        raise CommandError(f"--steps must be an integer >= 1, got {args.steps}")
    out = _image_path(args.out or f"landscape-{land.name}", ".gif" if args.gif else ".png")
    lrs = {name: (lr.get(name, land.lr[name]) if isinstance(lr, dict) else
                  lr if lr is not None else land.lr[name]) for name in optimizers}
    paths = landscape.trajectories(land, optimizers, lr=lrs, steps=args.steps, start=start)
    print(f"{land.name}: minimum at w = ({land.minimum[0]:g}, {land.minimum[1]:g})")
    print(f"{'optimizer':10s} {'α':>8s} {'steps':>6s} {'w1':>10s} {'w2':>10s} {'J':>12s}")
    for name, path in paths.items():
        w1, w2 = path[-1]
        note = "" if len(path) - 1 == (args.steps or land.steps) else "  (diverged)"
        print(f"{name:10s} {lrs[name]:8.4g} {len(path) - 1:6d} {w1:10.4f} {w2:10.4f} "
              f"{float(land.J(w1, w2)):12.5g}{note}")
    if args.gif:
        if out.suffix.lower() != ".gif":
            raise CommandError(f"--gif writes a .gif file, got --out {args.out!r}")
        if out.parent != Path("") and not out.parent.is_dir():
            raise CommandError(f"--out {str(out)!r}: the folder {str(out.parent)!r} does "
                               f"not exist")
        landscape.save_gif(land, paths, out, lrs)
    else:
        figures.save_figure(landscape.landscape_figure(land, paths, lrs), out)
    print(f"figure: {out}")


# ---------------------------------------------------------------------------- gdlab schedule


def make_schedule(args):
    from .. import schedules

    kind = args.kind.strip().lower().replace("-", "_")
    if kind not in schedules.SCHEDULES:
        raise CommandError(f"unknown schedule kind {args.kind!r}; allowed: "
                           f"{', '.join(k for k in schedules.SCHEDULES if k != 'plateau')}")
    if kind == "plateau":
        raise CommandError("the plateau schedule follows the cost of a run, so it has no α "
                           "per epoch by itself; try gdlab fit --schedule plateau")
    cls = schedules.SCHEDULES[kind]
    allowed = [p for p in inspect.signature(cls).parameters if p != "lr0"]
    kwargs = {}
    for option, argument in SCHEDULE_OPTIONS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if argument not in allowed:
            flag = "--" + option.replace("_", "-")
            raise CommandError(f"{flag} does not apply to {kind}; it takes "
                               + (", ".join("--" + a.replace("_", "-") for a in allowed)
                                  or "no options"))
        kwargs[argument] = value
    if kind == "inverse_time":
        kwargs.setdefault("decay_rate", DEFAULT_DECAY_RATE)
    return cls(args.lr0, **kwargs)


def cmd_schedule(args) -> None:
    import numpy as np

    from ..lab import figures

    if args.epochs < 1:
        raise CommandError(f"--epochs must be an integer >= 1, got {args.epochs}")
    if args.batches_per_epoch < 1:
        raise CommandError(f"--batches-per-epoch must be an integer >= 1, got "
                           f"{args.batches_per_epoch}")
    schedule = make_schedule(args)
    epochs = np.arange(1, args.epochs + 1)
    alphas = [schedule(int(e), (int(e) - 1) * args.batches_per_epoch + 1) for e in epochs]
    print(f"{schedule!r}")
    print(f"{'epoch_num':>9s}  α")
    for epoch, alpha in zip(epochs, alphas, strict=True):
        print(f"{epoch:9d}  {alpha:.6g}")
    if args.out:
        out = _image_path(args.out)
        figures.save_figure(figures.schedule_figure(schedule, epochs, alphas), out)
        print(f"figure: {out}")


# ---------------------------------------------------------------------------- the parsers


def register(commands) -> None:
    """Add ``figures``, ``smooth``, ``landscape`` and ``schedule`` to ``commands`` (the object
    ``ArgumentParser.add_subparsers`` returned)."""
    listing = ", ".join(f"{number} {name}" for number, name in enumerate(FIGURES, 1))
    p = commands.add_parser(
        "figures", help="draw the lecture's figures from real runs, with a report",
        description="Compute and draw the lecture's figures from real runs of gdlab's "
        f"optimizers, schedules, mini-batches and EWA ({listing}), as PNG files and a "
        "self-contained report.html with a β smoothing slider.")
    p.add_argument("names", nargs="*", metavar="FIGURE",
                   help=f"which figures, by number or name (default: all): {listing}")
    p.add_argument("--out", default="gdlab-figures", help="folder to write (default: "
                   "gdlab-figures)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, the "
                   "initialization and the mini-batch order (default: 0)")
    p.add_argument("--no-report", action="store_true", help="PNG files only, no report.html")
    p.add_argument("--force", action="store_true",
                   help="write into --out even if it holds something else")
    p.set_defaults(run=cmd_figures)

    p = commands.add_parser(
        "smooth", help="exponentially weighted averages of a column of a CSV file",
        description="Smooth one column θ_t of a CSV file (header row) with the EWA "
        "v_t = β·v_{t-1} + (1-β)·θ_t for each β; print the averages as CSV, or plot them "
        "with --out. Empty cells are gaps that do not update the averages.")
    p.add_argument("file", help="CSV file with a header row")
    p.add_argument("--column", required=True, help="the column to smooth")
    p.add_argument("--beta", default="0.5,0.9,0.98",
                   help="comma-separated β values in [0, 1) (default: 0.5,0.9,0.98)")
    p.add_argument("--bias-correction", action="store_true",
                   help="divide by 1-β^t (v̂_t), so the averages don't start near 0")
    p.add_argument("--out", help="write the plot to this PNG file (else print CSV)")
    p.add_argument("--print", action="store_true", help="print the CSV even with --out")
    p.set_defaults(run=cmd_smooth)

    p = commands.add_parser(
        "landscape", help="optimizer paths over a 2-D test function, as PNG or GIF",
        description="Run GD, Momentum, RMSProp and Adam from the same start over a "
        "two-parameter test function and draw their paths over its contours.")
    p.add_argument("--function", default="elongated",
                   help=f"{' | '.join(LANDSCAPES)} (default: elongated)")
    p.add_argument("--optimizers", default="gd,momentum,rmsprop,adam",
                   help="comma-separated subset of gd,momentum,rmsprop,adam")
    p.add_argument("--lr", help="one α for all, or per optimizer like gd=0.9,adam=0.25 "
                   "(default: an α that suits each optimizer on the function)")
    p.add_argument("--steps", type=int, help="number of steps (default: the function's)")
    p.add_argument("--start", help="starting point w1,w2, e.g. --start=-1.5,2 (default: the "
                   "function's)")
    p.add_argument("--gif", action="store_true", help="an animated GIF instead of a PNG")
    p.add_argument("--out", help="image file (default: landscape-FUNCTION.png or .gif)")
    p.set_defaults(run=cmd_landscape)

    p = commands.add_parser(
        "schedule", help="print and plot α per epoch of a learning-rate decay schedule",
        description="Print α per epoch of a decay schedule from gdlab.schedules, e.g. "
        "inverse_time: α = α₀/(1 + decay_rate·⌊epoch_num/time_interval⌋); plot it with --out.")
    p.add_argument("--kind", default="inverse_time",
                   help="inverse_time, exponential, inverse_sqrt, staircase or constant "
                   "(default: inverse_time)")
    p.add_argument("--lr0", type=float, default=0.2, help="α₀ (default: 0.2)")
    p.add_argument("--decay-rate", type=float, help="inverse_time's decay_rate (default "
                   f"{DEFAULT_DECAY_RATE:g}: α = α₀/(1 + ⌊epoch_num/time_interval⌋))")
    p.add_argument("--time-interval", type=int, help="inverse_time's time_interval")
    p.add_argument("--base", type=float, help="exponential's base (default 0.95)")
    p.add_argument("--k", type=float, help="inverse_sqrt's k (default 1)")
    p.add_argument("--per", choices=("epoch", "step"), help="inverse_sqrt: per epoch or "
                   "per mini-batch step t")
    p.add_argument("--factor", type=float, help="staircase's factor (default 0.5)")
    p.add_argument("--every", type=int, help="staircase's interval in epochs (default 10)")
    p.add_argument("--epochs", type=int, default=10, help="epochs to show (default: 10)")
    p.add_argument("--batches-per-epoch", type=int, default=1,
                   help="mini-batches per epoch, for per-step schedules (α at each epoch's "
                   "first mini-batch; default: 1)")
    p.add_argument("--out", help="write the plot to this PNG file")
    p.set_defaults(run=cmd_schedule)
