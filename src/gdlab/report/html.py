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
from itertools import repeat
from pathlib import Path

import numpy as np

from ..ewa import ewa
from . import figures
from .style import DPI, is_decayed, optimizer_color

DEFAULT_BETA = 0.98
REPORT = "report.html"
FIGURE_FILES = ("cost_per_iteration.png", "epoch_cost.png", "learning_rate.png",
                "decision_boundary.png")
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
    per mini-batch, with the bias-corrected EWA of J^{t} with ``beta``).

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
        (out / name).write_bytes(png)
        pictures.append((name, png, caption))
    if not figures.has_decision_boundary(dataset):
        (out / "decision_boundary.png").unlink(missing_ok=True)  # stale, from an earlier report

    _write_history_csv(out / "history.csv", runs)
    _write_minibatch_csv(out / "minibatch_costs.csv", runs, smoothed)
    page = _page(runs, dataset, title=title, config=config, beta=beta, pictures=pictures)
    path = out / REPORT
    path.write_text(page, encoding="utf-8")
    return path


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
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HISTORY_COLUMNS)
        for run in runs:
            h = run.history
            writer.writerows((run.label, run.optimizer, run.schedule, i + 1, float(cost),
                              _at(h.lrs, i), _at(h.times, i))
                             for i, cost in enumerate(h.epoch_costs))


def _write_minibatch_csv(path: Path, runs, smoothed) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
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


def _data_json(runs, beta: float) -> str:
    """The series of every run as JSON that is safe inside a <script> element (no "<" at all):
    {"beta": β, "runs": [{"label", "optimizer", "schedule", "color", "dashed",
    "batches_per_epoch", "costs", "epoch_costs", "lrs"}, ...]}."""
    items = []
    for run in runs:
        meta = json.dumps({"label": str(run.label), "optimizer": str(run.optimizer),
                           "schedule": str(run.schedule),
                           "color": getattr(run, "color", None) or optimizer_color(run.optimizer),
                           "dashed": is_decayed(run.schedule),
                           "batches_per_epoch": _batches_per_epoch(run)},
                          separators=(",", ":"))
        h = run.history
        arrays = ",".join(f'"{key}":{_json_array(values)}' for key, values in
                          (("costs", h.costs), ("epoch_costs", h.epoch_costs), ("lrs", h.lrs)))
        items.append(meta[:-1] + "," + arrays + "}")
    text = '{"beta":' + json.dumps(beta, allow_nan=False) + ',"runs":[' + ",".join(items) + "]}"
    # "<", ">" and "&" occur only inside JSON strings, where \\u escapes mean the same: no
    # "</script", "<!--" (which changes how the parser ends a script) or markup can remain
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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
    return _TEMPLATE.format(
        title=title_html,
        version=escape(__version__),
        subtitle=(f"{len(runs)} {runs_word} ({escape(', '.join(optimizers))}) on "
                  f"<b>{escape(str(dataset.name))}</b> · generated {escape(generated)}"),
        setup=setup,
        table=table,
        note=escape(note),
        figures="\n".join(figures_html),
        explore=_EXPLORE.format(beta=f"{beta:g}"),
        data=_data_json(runs, beta),
        css=_CSS,
        js=_JS,
    )


_CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d8dee4;
  --soft: #f6f8fa; --accent: #0072B2; --best: #fff4d6; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 32px; border-bottom: 1px solid var(--line); padding-bottom: 16px; }
h1 { margin: 0 0 4px; font-size: 28px; letter-spacing: -0.01em; }
h2 { margin: 36px 0 12px; font-size: 20px; border-bottom: 1px solid var(--line);
  padding-bottom: 6px; }
.sub, .note, footer, .file { color: var(--muted); }
.sub { margin: 0; }
dl.setup { display: grid; grid-template-columns: max-content 1fr; gap: 4px 20px; margin: 0;
  padding: 14px 18px; background: var(--soft); border: 1px solid var(--line);
  border-radius: 8px; }
dl.setup dt { font-weight: 600; color: var(--muted); }
dl.setup dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
.table-wrap { overflow-x: auto; }
table.results { border-collapse: collapse; width: 100%; font-size: 14px; }
table.results th, table.results td { padding: 7px 8px; border-bottom: 1px solid var(--line);
  text-align: left; white-space: nowrap; }
table.results th { background: var(--soft); font-weight: 600; }
table.results td.wrap, table.results td.label { white-space: normal; }
table.results td.label { min-width: 12em; }
table.results td.settings { white-space: normal; color: var(--muted); font-size: 13px; }
table.results .num { text-align: right; font-variant-numeric: tabular-nums; }
table.results tbody tr:hover { background: var(--soft); }
table.results tr.best, table.results tr.best:hover { background: var(--best); }
table.results tr.best td.label { font-weight: 600; }
.badge { display: inline-block; margin-left: 6px; padding: 0 7px; border-radius: 9px;
  background: #E69F00; color: #000; font-size: 11px; font-weight: 600; vertical-align: 1px; }
.swatch { display: inline-block; width: 22px; height: 0; margin-right: 8px;
  border-top: 3px solid var(--c); vertical-align: middle; }
.swatch.dashed { border-top-style: dashed; }
figure { margin: 24px 0; break-inside: avoid; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto;
  border: 1px solid var(--line); border-radius: 6px; }
figcaption { margin-top: 8px; font-size: 14px; }
.file { font-size: 12px; }
.controls { display: flex; flex-wrap: wrap; gap: 8px 22px; align-items: center;
  margin-bottom: 8px; font-size: 14px; }
.controls input[type=range] { width: 240px; vertical-align: middle; }
#run-toggles { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 13px;
  margin-bottom: 8px; }
#run-toggles label { white-space: nowrap; cursor: pointer; }
canvas#explorer { display: block; width: 100%; height: 380px; border: 1px solid var(--line);
  border-radius: 6px; background: #fff; cursor: crosshair; }
.plot-wrap { position: relative; }
.hover { position: absolute; top: 16px; z-index: 2; pointer-events: none; padding: 6px 9px;
  background: rgba(255, 255, 255, 0.94); border: 1px solid var(--line); border-radius: 6px;
  font-size: 12px; line-height: 1.45; white-space: nowrap;
  font-variant-numeric: tabular-nums; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.12); }
.hover .swatch { width: 14px; margin-right: 5px; }
footer { margin-top: 40px; padding-top: 12px; padding-bottom: 32px;
  border-top: 1px solid var(--line); font-size: 13px; }
a { color: var(--accent); }
@media print { .explore { display: none; } }
"""

_JS = r"""
(function () {
  "use strict";
  var source = document.getElementById("gdlab-data");
  var canvas = document.getElementById("explorer");
  if (!source || !canvas || !canvas.getContext) { return; }
  var data = JSON.parse(source.textContent);
  var ctx = canvas.getContext("2d");
  var betaInput = document.getElementById("beta");
  var betaOut = document.getElementById("beta-out");
  var rawBox = document.getElementById("show-raw");
  var logBox = document.getElementById("log-y");
  var correctBox = document.getElementById("bias-correction");
  var shown = data.runs.map(function () { return true; });
  var hoverT = null, frame = null;  // the mini-batch under the pointer; the last plot's geometry
  var wrap = document.createElement("div");
  wrap.className = "plot-wrap";
  canvas.parentNode.insertBefore(wrap, canvas);
  wrap.appendChild(canvas);
  var tip = document.createElement("div");
  tip.id = "explorer-hover";
  tip.className = "hover";
  tip.hidden = true;
  wrap.appendChild(tip);
  var toggles = document.getElementById("run-toggles");
  data.runs.forEach(function (run, i) {
    var label = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.addEventListener("change", function () { shown[i] = box.checked; schedule(); });
    var swatch = document.createElement("span");
    swatch.className = "swatch" + (run.dashed ? " dashed" : "");
    swatch.style.setProperty("--c", run.color);
    label.appendChild(box);
    label.appendChild(document.createTextNode(" "));
    label.appendChild(swatch);
    label.appendChild(document.createTextNode(run.label));  // text, never markup
    toggles.appendChild(label);
  });
  document.getElementById("explore").hidden = false;

  // gdlab.ewa: v_t = beta*v_{t-1} + (1-beta)*J_t ; corrected: v_t / (1 - beta^t);
  // non-finite J pass through and do not count in t
  function smooth(costs, beta, corrected) {
    var out = new Array(costs.length), v = 0, t = 0;
    for (var i = 0; i < costs.length; i++) {
      var c = costs[i];
      if (c === null || !isFinite(c)) { out[i] = null; continue; }
      t += 1;
      v = beta * v + (1 - beta) * c;
      out[i] = corrected ? v / (1 - Math.pow(beta, t)) : v;
    }
    return out;
  }
  function niceTicks(a, b, count) {
    var span = b - a, step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = span / count / step;
    if (err >= 7.5) { step *= 10; } else if (err >= 3.5) { step *= 5; }
    else if (err >= 1.5) { step *= 2; }
    var ticks = [];
    for (var v = Math.ceil(a / step) * step; v <= b + step * 1e-9; v += step) { ticks.push(v); }
    return ticks;
  }
  function fmt(v) { return Number(v.toPrecision(3)).toString(); }
  var pending = false, draws = 0;
  function schedule() {
    if (!pending) { pending = true; window.requestAnimationFrame(draw); }
  }
  function draw() {
    pending = false;
    var beta = parseFloat(betaInput.value), log = logBox.checked, raw = rawBox.checked;
    var corrected = correctBox.checked;
    betaOut.textContent = beta.toFixed(3) + "  (about " +
      (beta < 1 ? Math.round(1 / (1 - beta)) : "\u221e") + " mini-batches)";
    var dpr = window.devicePixelRatio || 1;
    var W = canvas.clientWidth, H = canvas.clientHeight;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    var series = [], n = 1, lo = Infinity, hi = -Infinity;
    function extend(values) {
      for (var i = 0; i < values.length; i++) {
        var v = values[i];
        if (v !== null && isFinite(v) && (!log || v > 0)) {
          if (v < lo) { lo = v; } if (v > hi) { hi = v; }
        }
      }
    }
    data.runs.forEach(function (run, i) {
      if (!shown[i]) { return; }
      var s = smooth(run.costs, beta, corrected);
      series.push({ run: run, smooth: s });
      n = Math.max(n, run.costs.length);
      extend(s);
      if (raw) { extend(run.costs); }
    });
    draws += 1;
    // what the plot shows, for scripts and tests: the smoothed series as drawn
    window.gdlabExplorer = {
      draws: draws, beta: beta, corrected: corrected, log: log, raw: raw, hover: hoverT,
      series: series.map(function (s) { return { label: s.run.label, smooth: s.smooth }; })
    };
    var M = { l: 64, r: 14, t: 12, b: 42 };
    var pw = W - M.l - M.r, ph = H - M.t - M.b;
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = "#59636e";
    if (!series.length || !(hi >= lo)) {
      ctx.fillText("no run selected", M.l + 10, M.t + 20);
      frame = null; tip.hidden = true;
      return;
    }
    if (hi === lo) { hi = lo + (log ? lo : 1); }
    var f = log ? Math.log10 : function (v) { return v; };
    var y0 = f(lo), y1 = f(hi);
    var X = function (t) { return M.l + (t - 1) / Math.max(n - 1, 1) * pw; };
    var Y = function (v) { return M.t + (1 - (f(v) - y0) / (y1 - y0)) * ph; };
    ctx.strokeStyle = "#e1e4e8"; ctx.lineWidth = 1; ctx.textAlign = "right";
    var yticks = log ? [] : niceTicks(lo, hi, 5);
    if (log) {
      for (var e = Math.floor(y0); e <= Math.ceil(y1); e++) {
        var p = Math.pow(10, e);
        if (p >= lo && p <= hi) { yticks.push(p); }
      }
      if (yticks.length < 2) { yticks = [lo, hi]; }
    }
    yticks.forEach(function (v) {
      var y = Y(v);
      ctx.beginPath(); ctx.moveTo(M.l, y); ctx.lineTo(M.l + pw, y); ctx.stroke();
      ctx.fillText(fmt(v), M.l - 6, y + 4);
    });
    ctx.textAlign = "center";
    niceTicks(1, n, 6).forEach(function (t) {
      ctx.fillText(fmt(t), X(t), M.t + ph + 16);
    });
    ctx.fillText("iteration t (mini-batch)", M.l + pw / 2, H - 6);
    ctx.save(); ctx.translate(14, M.t + ph / 2); ctx.rotate(-Math.PI / 2);
    ctx.fillText("cost J", 0, 0); ctx.restore();
    ctx.strokeStyle = "#8c959f";
    ctx.strokeRect(M.l, M.t, pw, ph);
    ctx.save();
    ctx.beginPath(); ctx.rect(M.l, M.t, pw, ph); ctx.clip();
    function path(values) {
      var open = false;
      ctx.beginPath();
      for (var i = 0; i < values.length; i++) {
        var v = values[i];
        if (v === null || !isFinite(v) || (log && v <= 0)) { open = false; continue; }
        if (open) { ctx.lineTo(X(i + 1), Y(v)); } else { ctx.moveTo(X(i + 1), Y(v)); }
        open = true;
      }
      ctx.stroke();
    }
    if (raw) {
      ctx.globalAlpha = 0.18; ctx.lineWidth = 0.8; ctx.setLineDash([]);
      series.forEach(function (s) { ctx.strokeStyle = s.run.color; path(s.run.costs); });
    }
    ctx.globalAlpha = 1; ctx.lineWidth = 1.8;
    series.forEach(function (s) {
      ctx.strokeStyle = s.run.color;
      ctx.setLineDash(s.run.dashed ? [7, 4] : []);
      path(s.smooth);
    });
    ctx.restore();
    frame = { l: M.l, pw: pw, n: n };
    showHover(series, X, Y, M.t, ph, W, corrected);
  }
  function showHover(series, X, Y, top, ph, W, corrected) {
    if (hoverT === null || hoverT > frame.n) { tip.hidden = true; return; }
    var x = X(hoverT);
    ctx.save();
    ctx.strokeStyle = "#59636e"; ctx.lineWidth = 1; ctx.setLineDash([3, 3]);
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + ph); ctx.stroke();
    ctx.restore();
    while (tip.firstChild) { tip.removeChild(tip.firstChild); }
    var head = document.createElement("div");
    head.textContent = "t = " + hoverT;
    tip.appendChild(head);
    series.forEach(function (s) {
      var v = s.smooth[hoverT - 1], c = s.run.costs[hoverT - 1];
      if (v === undefined) { return; }  // a shorter run
      if (v !== null && isFinite(v)) {
        ctx.fillStyle = s.run.color;
        ctx.beginPath(); ctx.arc(x, Y(v), 3.5, 0, 2 * Math.PI); ctx.fill();
      }
      var row = document.createElement("div");
      var swatch = document.createElement("span");
      swatch.className = "swatch" + (s.run.dashed ? " dashed" : "");
      swatch.style.setProperty("--c", s.run.color);
      row.appendChild(swatch);
      row.appendChild(document.createTextNode(s.run.label + ": " +
        (corrected ? "v\u0302" : "v") + " = " + num(v) + ", J = " + num(c)));
      tip.appendChild(row);
    });
    tip.hidden = false;
    if (x < W / 2) { tip.style.left = (x + 12) + "px"; tip.style.right = ""; }
    else { tip.style.right = (W - x + 12) + "px"; tip.style.left = ""; }
  }
  function num(v) {
    if (v === null || v === undefined || !isFinite(v)) { return "\u2014"; }
    return Number(v.toPrecision(5)).toString();
  }
  canvas.addEventListener("mousemove", function (event) {
    if (!frame) { return; }
    var x = event.clientX - canvas.getBoundingClientRect().left;
    var t = Math.round(1 + (x - frame.l) / frame.pw * Math.max(frame.n - 1, 1));
    hoverT = x < frame.l || x > frame.l + frame.pw ? null : Math.max(1, Math.min(frame.n, t));
    schedule();
  });
  canvas.addEventListener("mouseleave", function () { hoverT = null; schedule(); });
  [betaInput, rawBox, logBox, correctBox].forEach(function (input) {
    input.addEventListener("input", schedule);
    input.addEventListener("change", schedule);
  });
  window.addEventListener("resize", schedule);
  schedule();
})();
"""

_EXPLORE = """<section id="explore" class="explore" hidden>
<h2>Explore the smoothing</h2>
<p>The bias-corrected exponentially weighted average
v&#770;<sub>t</sub> = v<sub>t</sub>/(1&minus;&beta;<sup>t</sup>) of the mini-batch cost
<var>J</var><sup>{{<var>t</var>}}</sup>, with
v<sub>t</sub> = &beta;&middot;v<sub>t&minus;1</sub> +
(1&minus;&beta;)&middot;<var>J</var><sup>{{<var>t</var>}}</sup>:
a larger &beta; averages over more mini-batches (about 1/(1&minus;&beta;)) and lags more.
Turn bias correction off to see the average start too low; untick a run to hide it; point
at the plot to read the values.</p>
<div class="controls">
<label>&beta; <input type="range" id="beta" min="0" max="0.999" step="0.001" value="{beta}"></label>
<output id="beta-out" for="beta">{beta}</output>
<label><input type="checkbox" id="bias-correction" checked> bias correction</label>
<label><input type="checkbox" id="show-raw" checked>
raw <var>J</var><sup>{{<var>t</var>}}</sup></label>
<label><input type="checkbox" id="log-y"> log scale</label>
</div>
<div id="run-toggles"></div>
<canvas id="explorer" role="img" aria-label="mini-batch cost and its average, interactive"></canvas>
</section>
"""

_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="gdlab {version}">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<p class="sub">{subtitle}</p>
</header>
<main>
"""

_TAIL = """<section id="figures">
<h2>Figures</h2>
{figures}
</section>
{explore}
</main>
<footer>Made by gdlab {version}. This page is self-contained: it works offline and loads
nothing from the network.</footer>
<script type="application/json" id="gdlab-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""

_TEMPLATE = _HEAD + """<section id="setup">
<h2>Setup</h2>
<dl class="setup">
{setup}
</dl>
</section>
<section id="results">
<h2>Results</h2>
<div class="table-wrap">
{table}
</div>
<p class="note">{note} Accuracies are the share of examples classified correctly; time is
wall-clock training time. Data: <a href="history.csv">history.csv</a> (per epoch),
<a href="minibatch_costs.csv">minibatch_costs.csv</a> (per mini-batch).</p>
</section>
""" + _TAIL


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
    page = _FIGURES_TEMPLATE.format(
        title=escape(str(title)), version=escape(__version__),
        subtitle=("Every figure is computed by gdlab's own optimizers, schedules, mini-batches "
                  f"and exponentially weighted averages, seeded · generated {generated}"),
        figures="\n".join(figures_html),
        explore=_EXPLORE.format(beta=f"{beta:g}") if runs else "",
        data=_data_json(runs, beta) if runs else '{"beta":0.9,"runs":[]}',
        css=_CSS, js=_JS)
    path = out / REPORT
    path.write_text(page, encoding="utf-8")
    return path


_FIGURES_TEMPLATE = _HEAD + _TAIL
