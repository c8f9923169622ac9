"""``write_report()``: a report folder with one self-contained ``report.html``, the PNG
figures and the CSV data behind them.

Security: every string that can come from the user or their data (run labels, optimizer and
schedule names, dataset, feature and class names, config keys and values, the title) goes
through :func:`html.escape` before it reaches the page, and the JSON embedded in the page
cannot close its ``<script>`` element. The page loads nothing from the network.
"""

from __future__ import annotations

import base64
import csv
import datetime
import io
import json
import math
from html import escape
from importlib import resources
from itertools import repeat
from pathlib import Path

import numpy as np

from .._files import atomic_path, atomic_write
from ..ewa import ewa
from . import figures
from .style import DPI, is_decayed, optimizer_color

DEFAULT_BETA = 0.98
REPORT = "report.html"
HISTORY_COLUMNS = ("run", "optimizer", "schedule", "epoch", "cost", "lr", "time")
MINIBATCH_COLUMNS = ("run", "t", "epoch", "cost", "smoothed")
_TABLE_SKIP = {"optimizer", "schedule", "label"}  # already columns of the results table
_LONG_LIST = 12  # lists longer than this are shortened in the setup summary

__all__ = ["write_report", "write_figures_report", "DEFAULT_BETA"]


def write_report(out_dir, runs, dataset, *, title: str = "gdlab compare", config=None,
                 beta: float = DEFAULT_BETA, extra_figures=()) -> Path:
    """Write the report of ``runs`` (a list of :class:`gdlab.lab.runs.RunResult`) trained on
    ``dataset`` (a :class:`gdlab.data.datasets.Dataset`) into ``out_dir`` (created if needed) and
    return the path of its ``report.html``.

    The folder gets ``report.html`` (self-contained: figures embedded as data URIs, inline
    CSS/JS, works offline), ``cost_per_iteration.png``, ``epoch_cost.png``,
    ``learning_rate.png``, ``decision_boundary.png`` (classification with two features only),
    ``history.csv`` (one row per run per epoch) and ``minibatch_costs.csv`` (one row per run
    per mini-batch, with the bias-corrected EWA of J^{t} with ``beta``), each written
    atomically (:func:`gdlab._files.atomic_write`).

    ``config`` (a dict: data, network, epochs, batch size, seed, ...) is summarised at the
    top; without it, the settings every run's ``config`` shares are. Settings that differ
    between runs appear in the results table. ``extra_figures`` — (file name, Figure, caption)
    — are saved and shown after the standard figures (e.g. a sweep's α against cost).
    """
    runs = list(runs)
    if not runs:
        raise ValueError("runs must hold at least one RunResult, got none")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    beta = float(beta)
    smoothed = [ewa(_floats(run.history.costs), beta, bias_correction=True) for run in runs]

    pictures = []
    planned = [(name, make(), caption)
               for name, make, caption in _figure_plan(runs, dataset, beta, smoothed)]
    for name, fig, caption in [*planned, *extra_figures]:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
        png = buffer.getvalue()
        atomic_write(out / name, png)
        pictures.append((name, png, caption))
    for name, still in (("decision_boundary.png", figures.has_decision_boundary(dataset)),
                        ("cost_over_time.png", figures.has_times(runs))):
        if not still:
            (out / name).unlink(missing_ok=True)  # stale, from an earlier report

    _write_history_csv(out / "history.csv", runs)
    _write_minibatch_csv(out / "minibatch_costs.csv", runs, smoothed)
    page = _page(runs, dataset, title=title, config=config, beta=beta, pictures=pictures)
    return atomic_write(out / REPORT, page)


# ---------------------------------------------------------------------------- numbers


def _floats(values) -> np.ndarray:
    return np.asarray(list(values), dtype=np.float64)


def _final_cost(run) -> float:
    costs = run.history.epoch_costs
    return float(costs[-1]) if costs else math.nan


def _seconds(run) -> float:
    if run.seconds:
        return float(run.seconds)
    return float(run.history.times[-1]) if run.history.times else math.nan


def _batches_per_epoch(run) -> int:
    """Mini-batches per epoch (fit() takes ⌈m / batch size⌉ in every epoch)."""
    n, epochs = len(run.history.costs), len(run.history.epoch_costs)
    return max(1, math.ceil(n / epochs)) if epochs else max(1, n)


def _at(values, i):
    return float(values[i]) if i < len(values) and values[i] is not None else ""


def _format_value(value) -> str:
    """A config value as short text (not yet escaped)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_format_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        items = [_format_value(v) for v in value]
        if len(items) > _LONG_LIST:
            items = items[:_LONG_LIST - 2] + [f"… ({len(value)} in all)"]
        return "[" + ", ".join(items) + "]"
    return str(value)


def _number(value, spec: str) -> str:
    return format(value, spec) if value is not None and math.isfinite(value) else "—"


# ---------------------------------------------------------------------------- CSV files


def _write_history_csv(path: Path, runs) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HISTORY_COLUMNS)
        for run in runs:
            h = run.history
            writer.writerows((run.label, run.optimizer, run.schedule, i + 1, float(cost),
                              _at(h.lrs, i), _at(h.times, i))
                             for i, cost in enumerate(h.epoch_costs))


def _write_minibatch_csv(path: Path, runs, smoothed) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(MINIBATCH_COLUMNS)
        for run, smooth in zip(runs, smoothed, strict=True):
            n = len(smooth)
            epochs = (np.arange(n) // _batches_per_epoch(run) + 1).tolist()
            costs = np.asarray(run.history.costs, dtype=np.float64).tolist()
            writer.writerows(zip(repeat(run.label, n), range(1, n + 1), epochs, costs,
                                 smooth.tolist(), strict=True))


# ---------------------------------------------------------------------------- figures


def _figure_plan(runs, dataset, beta, smoothed):
    """(file name, builder, caption HTML) of each figure, in the order of the page."""
    optimizers = {str(run.optimizer).lower() for run in runs}
    decayed = [run for run in runs if is_decayed(run.schedule)]
    window = f"{1 / (1 - beta):.0f}" if beta < 1 else "∞"
    J_t = "<var>J</var><sup>{<var>t</var>}</sup>"

    cost = (f"Each panel is one run: the faint line is the cost {J_t} of each mini-batch, "
            f"the bold line its bias-corrected exponentially weighted average (β = {beta:g}, "
            f"about {window} mini-batches)")
    smoothers = [name for key, name in (("momentum", "Momentum"), ("adam", "Adam"))
                 if key in optimizers]
    if "gd" in optimizers and smoothers:
        cost += (f"; compare how much {' and '.join(smoothers)}, which average the gradients, "
                 "smooth the zig-zag of mini-batch GD, and how fast each bold line falls.")
    elif len(runs) > 1:
        cost += "; compare how noisy and how fast each run descends."
    else:
        cost += ": the noise comes from each mini-batch being a different sample, the bold "\
                "line is the trend to read."

    epoch = ("The cost <var>J</var> over all <var>m</var> training examples after each epoch: "
             "lower and earlier is better")
    epoch += "; dashed lines are runs with learning-rate decay." if decayed else "."

    if decayed:
        lr = ("The learning rate α of each epoch: solid lines keep α₀, dashed lines decay it so "
              "the steps shrink as the run nears a minimum.")
    else:
        lr = "The learning rate α of each epoch, constant in every run here."

    plan = [("cost_per_iteration.png",
             lambda: figures.cost_per_iteration(runs, beta, smoothed=smoothed), cost),
            ("epoch_cost.png", lambda: figures.epoch_cost(runs), epoch),
            ("learning_rate.png", lambda: figures.learning_rate(runs), lr)]
    if figures.has_times(runs):
        plan.insert(2, ("cost_over_time.png", lambda: figures.cost_over_time(runs),
                        "The same costs against the wall-clock seconds of each run (its own "
                        "time, after the process's one-off warm-up): which optimizer gets "
                        "lowest in a given time."))
    if figures.has_decision_boundary(dataset):
        plan.append(("decision_boundary.png", lambda: figures.decision_boundary(runs, dataset),
                     "What each trained network predicts over the plane of the two features, "
                     "with the training points on top: a good boundary follows the gap "
                     "between the classes without bending around single points."))
    return plan


# ---------------------------------------------------------------------------- HTML


def _common_config(runs) -> dict:
    """The settings all runs share (same key, same value)."""
    first = dict(runs[0].config or {})
    return {k: v for k, v in first.items()
            if all(k in (run.config or {}) and _format_value(run.config[k]) == _format_value(v)
                   for run in runs[1:])}


def _differing_keys(runs) -> list:
    keys = []
    for run in runs:
        for k in run.config or {}:
            if k not in keys and k not in _TABLE_SKIP:
                keys.append(k)
    common = _common_config(runs) if len(runs) > 1 else dict(runs[0].config or {})
    return [k for k in keys if k not in common]


def _setup_rows(runs, dataset, config) -> list[tuple[str, str]]:
    """(key, value) text pairs (not yet escaped) of the setup summary."""
    classification = dataset.task in figures.CLASSIFICATION_TASKS
    rows = [("dataset", f"{dataset.name} ({dataset.task})"),
            ("examples", f"m = {len(dataset.X_train)} train, {len(dataset.X_test)} test"),
            ("features", f"n_x = {dataset.X_train.shape[1]}: "
                         + _format_value(list(dataset.feature_names or []))[1:-1])]
    if classification and dataset.class_names:
        rows.append(("classes", _format_value(list(dataset.class_names))[1:-1]))
    rows.append(("outputs", f"n_y = {dataset.n_outputs}"))
    settings = config if config is not None else _common_config(runs)
    rows += [(str(k), _format_value(v)) for k, v in dict(settings).items()]
    return rows


def _ranked(runs, classification: bool) -> tuple[list, str]:
    def cost(run):
        c = _final_cost(run)
        return c if math.isfinite(c) else math.inf

    def accuracy(run):
        a = run.test_accuracy
        return float(a) if a is not None and math.isfinite(float(a)) else -math.inf

    if classification and any(run.test_accuracy is not None for run in runs):
        ranked = sorted(runs, key=lambda run: (-accuracy(run), cost(run)))
        return ranked, "Sorted by test accuracy (ties by final cost)"
    return sorted(runs, key=cost), "Sorted by final cost"


def _breakable(text: str) -> str:
    """Escaped text with line-break opportunities after "(", "," and "_"."""
    for mark in "(,_":
        text = text.replace(mark, mark + "<wbr>")
    return text


def _swatch(run) -> str:
    dashed = " dashed" if is_decayed(run.schedule) else ""
    color = escape(optimizer_color(run.optimizer))
    return f'<span class="swatch{dashed}" style="--c:{color}" aria-hidden="true"></span>'


def _results_table(runs, dataset) -> tuple[str, str]:
    """The results table and a note saying how it is sorted."""
    classification = dataset.task in figures.CLASSIFICATION_TASKS
    ranked, order = _ranked(runs, classification)
    extra = _differing_keys(runs)
    head = ["#", "run", "optimizer", "schedule"] + (["settings"] if extra else []) + \
        ["final cost J", "train accuracy", "test accuracy", "time (s)"]
    numeric = {"#", "final cost J", "train accuracy", "test accuracy", "time (s)"}
    lines = ["<table class=\"results\">", "<thead><tr>"]
    lines += [f'<th{" class=num" if h in numeric else ""} scope="col">{escape(h)}</th>'
              for h in head]
    lines.append("</tr></thead><tbody>")
    for rank, run in enumerate(ranked, start=1):
        best = rank == 1 and len(ranked) > 1
        cells = [f'<td class="num">{rank}</td>',
                 f'<td class="label">{_swatch(run)}{escape(str(run.label))}'
                 + (' <span class="badge">best</span>' if best else "") + "</td>",
                 f"<td>{escape(str(run.optimizer))}</td>",
                 f'<td class="wrap">{_breakable(escape(str(run.schedule)))}</td>']
        if extra:
            config = run.config or {}
            text = ", ".join(f"{k}={_format_value(config[k])}" for k in extra if k in config)
            cells.append(f'<td class="settings">{escape(text)}</td>')
        cells += [f'<td class="num">{_number(_final_cost(run), ".4g")}</td>',
                  f'<td class="num">{escape(figures.accuracy_text(run.train_accuracy))}</td>',
                  f'<td class="num">{escape(figures.accuracy_text(run.test_accuracy))}</td>',
                  f'<td class="num">{_number(_seconds(run), ".2f")}</td>']
        lines.append(f'<tr{" class=best" if best else ""}>' + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    note = f"{order}; the best run is highlighted." if len(ranked) > 1 else ""
    return "\n".join(lines), note


def _json_array(values) -> str:
    """A JSON array of the values to 7 significant digits (plenty for a plot); non-finite
    values become null."""
    a = np.asarray(list(values), dtype=np.float64)
    parts = list(map("{:.7g}".format, a.tolist()))
    for i in np.flatnonzero(~np.isfinite(a)).tolist():
        parts[i] = "null"
    return "[" + ",".join(parts) + "]"


def _float32_base64(values) -> str:
    """The values as little-endian float32 (non-finite ones NaN), in base64: every mini-batch
    cost of a long run in about 5.3 bytes each (JSON text takes twice that)."""
    a = np.asarray(list(values), dtype="<f4")
    a[~np.isfinite(a)] = np.nan
    return base64.b64encode(a.tobytes()).decode("ascii")


def _data_json(runs, beta: float) -> str:
    """The series of every run as JSON that is safe inside a <script> element (no "<" at all):
    {"beta": β, "runs": [{"label", "optimizer", "schedule", "color", "dashed",
    "batches_per_epoch", "costs_f32", "epoch_costs", "lrs"}, ...]}. ``costs_f32`` holds every
    mini-batch cost (:func:`_float32_base64`): the page smooths the whole series, exactly,
    and draws it downsampled to the pixels it has."""
    items = []
    for run in runs:
        meta = json.dumps({"label": str(run.label), "optimizer": str(run.optimizer),
                           "schedule": str(run.schedule),
                           "color": getattr(run, "color", None) or optimizer_color(run.optimizer),
                           "dashed": is_decayed(run.schedule),
                           "batches_per_epoch": _batches_per_epoch(run)},
                          separators=(",", ":"))
        h = run.history
        arrays = f'"costs_f32":"{_float32_base64(h.costs)}",' + ",".join(
            f'"{key}":{_json_array(values)}' for key, values in
            (("epoch_costs", h.epoch_costs), ("lrs", h.lrs)))
        items.append(meta[:-1] + "," + arrays + "}")
    text = '{"beta":' + json.dumps(beta, allow_nan=False) + ',"runs":[' + ",".join(items) + "]}"
    # "<", ">" and "&" occur only inside JSON strings, where \\u escapes mean the same: no
    # "</script", "<!--" (which changes how the parser ends a script) or markup can remain
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    """The text of ``assets/<name>``, shipped as package data: ``report.css``, ``report.js``
    and the page's parts ``head.html``, ``compare.html`` (setup and results of a compare
    report), ``tail.html`` (figures, explorer, data, script) and ``explore.html`` (the
    smoothing explorer). The ``.html`` parts are :meth:`str.format` templates: ``{name}`` is
    filled in, ``{{`` and ``}}`` are literal braces."""
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _page_template(body: str | None = None) -> str:
    """The page: head, then ``body`` (an asset's name) if given, then figures and script."""
    parts = ["head.html", body, "tail.html"] if body else ["head.html", "tail.html"]
    return "".join(map(_asset, parts))


def _page(runs, dataset, *, title, config, beta, pictures) -> str:
    from .. import __version__

    title_html = escape(str(title))
    optimizers = []
    for run in runs:
        if str(run.optimizer) not in optimizers:
            optimizers.append(str(run.optimizer))
    generated = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    setup = "\n".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>"
                      for k, v in _setup_rows(runs, dataset, config))
    table, note = _results_table(runs, dataset)
    figures_html = []
    for name, png, caption in pictures:
        data = base64.b64encode(png).decode("ascii")
        alt = escape(name.removesuffix(".png").replace("_", " "))
        figures_html.append(
            f'<figure id="fig-{escape(name.removesuffix(".png"))}">'
            f'<img src="data:image/png;base64,{data}" alt="{alt}">'
            f"<figcaption>{caption} <span class=\"file\">({escape(name)})</span>"
            "</figcaption></figure>")
    runs_word = "run" if len(runs) == 1 else "runs"
    return _page_template("compare.html").format(
        title=title_html,
        version=escape(__version__),
        subtitle=(f"{len(runs)} {runs_word} ({escape(', '.join(optimizers))}) on "
                  f"<b>{escape(str(dataset.name))}</b> · generated {escape(generated)}"),
        setup=setup,
        table=table,
        note=escape(note),
        figures="\n".join(figures_html),
        explore=_asset("explore.html").format(beta=f"{beta:g}"),
        data=_data_json(runs, beta),
        css=_asset("report.css"),
        js=_asset("report.js"),
    )


# ---------------------------------------------------------------------------- gdlab figures


def write_figures_report(out_dir, pictures, runs, *, title: str = "gdlab figures",
                         beta: float = 0.9) -> Path:
    """Write the ``report.html`` of ``gdlab figures`` into ``out_dir`` and return its path.

    ``pictures`` are (file name, PNG bytes, caption HTML) in page order, embedded as data
    URIs; ``runs`` (objects with ``label``, ``optimizer``, ``schedule``, ``history`` and
    optionally ``color``) feed the smoothing explorer, which re-smooths their mini-batch
    costs J^{t} with the bias-corrected EWA for the β of its slider (``beta`` at first). The
    page is self-contained and works offline.
    """
    from .. import __version__

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    beta = float(beta)
    figures_html = []
    for name, png, caption in pictures:
        data = base64.b64encode(png).decode("ascii")
        stem = escape(name.removesuffix(".png"))
        figures_html.append(
            f'<figure id="fig-{stem}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(stem.replace("_", " "))}"><figcaption>{caption} '
            f'<span class="file">({escape(name)})</span></figcaption></figure>')
    runs = list(runs)
    generated = escape(datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    page = _page_template().format(
        title=escape(str(title)), version=escape(__version__),
        subtitle=("Every figure is computed by gdlab's own optimizers, schedules, mini-batches "
                  f"and exponentially weighted averages, seeded · generated {generated}"),
        figures="\n".join(figures_html),
        explore=_asset("explore.html").format(beta=f"{beta:g}") if runs else "",
        data=_data_json(runs, beta) if runs else '{"beta":0.9,"runs":[]}',
        css=_asset("report.css"), js=_asset("report.js"))
    return atomic_write(out / REPORT, page)
