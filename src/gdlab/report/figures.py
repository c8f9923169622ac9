"""The figures of a comparison report, each a :class:`matplotlib.figure.Figure` built from a
list of :class:`gdlab.lab.runs.RunResult`.

- :func:`cost_per_iteration`: J^{t} of every mini-batch and its bias-corrected EWA, one panel
  per run: the lecture's "noisy but trending down" plot.
- :func:`epoch_cost`: the cost of each epoch, all runs on one axis.
- :func:`learning_rate`: α of each epoch, all runs on one axis.
- :func:`decision_boundary`: what each trained network predicts over the input plane
  (classification data with exactly two features).

Colours and line styles come from :mod:`gdlab.report.style`. Long series are thinned for
drawing only (``max_points``): the raw costs keep each bucket's minimum and maximum, so the
zig-zag looks the same, and the smoothed curve keeps every k-th point. Below ``max_points``
every point is drawn as is.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..ewa import ewa
from ..models import predict
from .style import CLASS_COLORS, lighten, optimizer_marker, plain, run_style, styled

MAX_POINTS = 2000
CLASSIFICATION_TASKS = ("binary", "multiclass")

__all__ = ["cost_per_iteration", "epoch_cost", "cost_over_time", "learning_rate",
           "decision_boundary", "has_decision_boundary", "accuracy_text", "has_times"]


def _check_runs(runs) -> list:
    runs = list(runs)
    if not runs:
        raise ValueError("runs must hold at least one RunResult, got none")
    return runs


def _grid(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(n, ncols))
    return math.ceil(n / ncols), ncols


def _tidy_grid(fig, axes, n: int, ncols: int) -> None:
    """Remove the unused panels of a shared-axes grid; show x tick labels and the x label only
    on the lowest panel of each column, the y label only in the first column. (Hidden labels
    keep their text.)"""
    for ax in axes[n:]:
        fig.delaxes(ax)
    for i, ax in enumerate(axes[:n]):
        bottom = i + ncols >= n
        ax.xaxis.set_tick_params(labelbottom=bottom)
        ax.xaxis.label.set_visible(bottom)
        ax.yaxis.label.set_visible(i % ncols == 0)


def _drawable(y: np.ndarray) -> np.ndarray:
    """±inf would wreck the axis limits; draw them as gaps, as NaN is."""
    return np.where(np.isfinite(y), y, np.nan)


def _envelope_indices(y: np.ndarray, max_points: int | None) -> np.ndarray:
    """Indices of the points to draw: all of them, or each bucket's min and max, in order."""
    n = len(y)
    if max_points is None or n <= max_points:
        return np.arange(n)
    k = math.ceil(n / max(1, max_points // 2))
    buckets = math.ceil(n / k)
    padded = np.full(buckets * k, np.nan)
    padded[:n] = y
    padded = padded.reshape(buckets, k)
    finite = np.isfinite(padded)
    base = np.arange(buckets) * k
    lo = np.argmin(np.where(finite, padded, np.inf), axis=1) + base
    hi = np.argmax(np.where(finite, padded, -np.inf), axis=1) + base
    idx = np.unique(np.concatenate([lo, hi, [0, n - 1]]))
    return idx[idx < n]


def _stride_indices(n: int, max_points: int | None) -> np.ndarray:
    if max_points is None or n <= max_points:
        return np.arange(n)
    k = math.ceil(n / max_points)
    return np.unique(np.append(np.arange(0, n, k), n - 1))


def _use_log(values) -> bool:
    """Log scale when every value is positive and they span a decade or more."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    return finite.size > 1 and bool(finite.min() > 0) and finite.max() / finite.min() >= 10


def accuracy_text(accuracy) -> str:
    """An accuracy (a fraction of 1) as "97.5 %", or "—" when there is none (regression)."""
    if accuracy is None or not math.isfinite(float(accuracy)):
        return "—"
    return f"{100 * float(accuracy):.1f} %"


@styled
def cost_per_iteration(runs, beta: float = 0.98, *, max_points: int | None = MAX_POINTS,
                       ncols: int = 2, smoothed=None) -> Figure:
    """One panel per run: the cost J^{t} of every mini-batch t, faint, and on top its
    exponentially weighted average with bias correction, v̂_t = v_t/(1-β^t), over about
    1/(1-β) mini-batches (``gdlab.ewa(costs, beta, bias_correction=True)``).

    Each panel has two lines, raw then smoothed; all panels share their axes. ``smoothed``
    may pass those averages already computed (one array per run), to save computing them twice.
    """
    runs = _check_runs(runs)
    beta = float(beta)
    nrows, ncols = _grid(len(runs), ncols)
    width, height = (5.0, 2.3) if ncols > 1 else (8.0, 3.4)
    fig = Figure(figsize=(width * ncols, height * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    top, bottom = -np.inf, 0.0
    if smoothed is None:
        smoothed = [None] * len(runs)
    for ax, run, smooth in zip(axes, runs, smoothed, strict=False):
        costs = np.asarray(run.history.costs, dtype=np.float64)
        if smooth is None:
            smooth = ewa(costs, beta, bias_correction=True)
        smooth = np.asarray(smooth, dtype=np.float64)
        t = np.arange(1, len(costs) + 1)
        style = run_style(run)
        raw_idx = _envelope_indices(costs, max_points)
        smooth_idx = _stride_indices(len(costs), max_points)
        ax.plot(t[raw_idx], _drawable(costs[raw_idx]), color=style["color"], alpha=0.3,
                linewidth=0.6 if len(raw_idx) > 300 else 1.0,
                label=r"$J^{\{t\}}$ of each mini-batch")
        ax.plot(t[smooth_idx], _drawable(smooth[smooth_idx]), color=style["color"],
                linestyle=style["linestyle"], linewidth=1.6,
                label=f"EWA, β = {beta:g}, bias-corrected")
        ax.set_title(plain(run.label))
        ax.set_xlabel("iteration t (mini-batch)")
        ax.set_ylabel("cost J")
        finite = costs[np.isfinite(costs)]
        if finite.size:
            # the top of the zig-zag, ignoring the rare spike, and all of the smoothed curve
            top = max(top, float(np.quantile(finite, 0.995)),
                      float(np.max(smooth[np.isfinite(smooth)], initial=-np.inf)))
            bottom = min(bottom, float(finite.min()))
    _tidy_grid(fig, axes, len(runs), ncols)
    if math.isfinite(top) and top > bottom:
        axes[0].set_ylim(bottom, top + 0.04 * (top - bottom))
    axes[0].legend(loc="upper right")
    window = 1 / (1 - beta) if beta < 1 else math.inf
    fig.suptitle(r"Mini-batch cost $J^{\{t\}}$ and its exponentially weighted average "
                 f"(β = {beta:g}, about {window:.0f} mini-batches)")
    return fig


def _per_epoch_figure(runs, series, ylabel: str, title: str, dotted=None, x=None,
                      xlabel: str = "epoch") -> Figure:
    """Every run's per-epoch ``series(run)`` on one axis, against ``x(run)`` (default: the
    epoch), and ``dotted(run)`` (e.g. the validation cost; None where a run has none) as a thin
    dotted line of the same colour. Runs of one label (the seeds of one run) are drawn as
    their median with their range as a band. Markers (one shape per optimizer) sit on about
    ten points per line, staggered between runs, so coinciding lines stay visible."""
    runs = _check_runs(runs)
    groups: dict[str, list] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    fig = Figure(figsize=(8.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    everything = []
    for i, group in enumerate(groups.values()):
        run, (xs, y, low, high) = group[0], _median_of(group, series, x)
        everything.extend(y.tolist())
        step = max(1, math.ceil(len(y) / 10))
        label = plain(run.label) + (f" (median of {len(group)})" if len(group) > 1 else "")
        line, = ax.plot(xs, _drawable(y), linewidth=1.6, label=label,
                        marker=optimizer_marker(run.optimizer), markersize=4,
                        markevery=((i * step // len(groups)) % step, step), **run_style(run))
        if len(group) > 1:
            ax.fill_between(xs, _drawable(low), _drawable(high), color=line.get_color(),
                            alpha=0.15, linewidth=0)
        if dotted is not None and all(dotted(r) for r in group):
            vx, v, _, _ = _median_of(group, dotted, x)
            everything.extend(v.tolist())
            ax.plot(vx, _drawable(v), linewidth=1.0, linestyle=":", color=line.get_color(),
                    label=f"{plain(run.label)} (validation)")
    if _use_log(everything):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def _median_of(group, series, x):
    """(x, median, min, max) of ``series`` over the runs of a group, element by element (as
    long as the shortest run), against the median of ``x(run)`` (default: the epoch 1, 2, …)."""
    values = [np.asarray(series(run), dtype=np.float64) for run in group]
    n = min(len(v) for v in values)
    stacked = np.stack([v[:n] for v in values])
    if x is None:
        xs = np.arange(1, n + 1)
    else:
        xs = np.median(np.stack([np.asarray(x(run), dtype=np.float64)[:n] for run in group]), 0)
    if len(group) == 1:
        return xs, stacked[0], stacked[0], stacked[0]
    return xs, np.median(stacked, 0), stacked.min(0), stacked.max(0)


def has_times(runs) -> bool:
    """Whether every run recorded the time of each of its epochs (:func:`cost_over_time`)."""
    return all(run.history.epoch_costs and len(run.history.times) >= len(run.history.epoch_costs)
               for run in runs)


@styled
def cost_over_time(runs) -> Figure:
    """The cost J of each epoch against the wall-clock seconds since its run began (the runs'
    History.times): what each optimizer reaches in a given time."""
    has_val = any(run.history.metrics.get("val_cost") for run in runs)
    return _per_epoch_figure(runs, lambda run: run.history.epoch_costs, "cost J",
                             "Cost J against wall-clock time"
                             + ("; dotted: on the validation data" if has_val else ""),
                             dotted=lambda run: run.history.metrics.get("val_cost"),
                             x=lambda run: run.history.times, xlabel="seconds")


@styled
def epoch_cost(runs) -> Figure:
    """The cost J of each epoch (averaged over all m training examples), every run on one
    axis, and its validation cost dotted where the run has one; logarithmic y when the costs
    span a decade or more."""
    has_val = any(run.history.metrics.get("val_cost") for run in runs)
    return _per_epoch_figure(runs, lambda run: run.history.epoch_costs, "cost J",
                             "Cost J of each epoch (average over the m training examples)"
                             + ("; dotted: on the validation data" if has_val else ""),
                             dotted=lambda run: run.history.metrics.get("val_cost"))


@styled
def learning_rate(runs) -> Figure:
    """The learning rate α of each epoch, every run on one axis; logarithmic y when the rates
    span a decade or more. Decayed runs are dashed."""
    return _per_epoch_figure(runs, lambda run: run.history.lrs, "learning rate α",
                             "Learning rate α of each epoch")


def has_decision_boundary(dataset) -> bool:
    """Whether :func:`decision_boundary` can draw ``dataset``: classification, two features."""
    return dataset.task in CLASSIFICATION_TASKS and dataset.X_train.shape[1] == 2


def _class_indices(Y) -> np.ndarray:
    """Binary Y of shape (m, 1) or class indices of shape (m,) as int class indices (m,)."""
    Y = np.asarray(Y)
    return (Y[:, 0] if Y.ndim > 1 else Y).astype(np.int64)


@styled
def decision_boundary(runs, dataset, *, resolution: int = 150,
                      max_points: int = 2000, ncols: int = 4) -> Figure:
    """One panel per run: the trained network's prediction over a grid around the training
    data (binary: the probability of class 1 with its 0.5 contour; multiclass: the predicted
    class), with the training points coloured by class. Titles give the run's test accuracy.

    Only for classification data with exactly two features (see :func:`has_decision_boundary`).
    At most ``max_points`` training points are scattered (a fixed random subset).
    """
    runs = _check_runs(runs)
    if not has_decision_boundary(dataset):
        raise ValueError("decision_boundary needs a classification dataset (binary or "
                         f"multiclass) with exactly 2 features, got task {dataset.task!r} "
                         f"with {dataset.X_train.shape[1]} features")
    X = np.asarray(dataset.X_train, dtype=np.float64)
    y = _class_indices(dataset.Y_train)
    n_classes = max(2, len(dataset.class_names or ()), int(y.max(initial=0)) + 1)
    names = [str(name) for name in dataset.class_names or []]
    names += [f"class {k}" for k in range(len(names), n_classes)]
    colors = [CLASS_COLORS[k % len(CLASS_COLORS)] for k in range(n_classes)]

    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * (hi - lo) + 0.25
    g0 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    g1 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    xx, yy = np.meshgrid(g0, g1)
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    shown = np.arange(len(X))
    if len(X) > max_points:
        shown = np.sort(np.random.default_rng(0).choice(len(X), max_points, replace=False))

    nrows, ncols = _grid(len(runs), ncols)
    fig = Figure(figsize=(3.2 * ncols + 0.3, 3.0 * nrows + 0.7), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    binary_cmap = LinearSegmentedColormap.from_list(
        "gdlab_binary", [lighten(colors[0], 0.45), "#ffffff", lighten(colors[1], 0.45)])
    feature_names = list(dataset.feature_names or []) + ["x₁", "x₂"]
    for ax, run in zip(axes, runs, strict=False):
        out = predict(run.model, grid).to("cpu", torch.float64).numpy().reshape(len(grid), -1)
        if dataset.task == "binary" and out.shape[1] == 1:
            p = np.ma.masked_invalid(out[:, 0].reshape(xx.shape))
            ax.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap=binary_cmap,
                        extend="both")
            if np.ma.count(p) and p.min() < 0.5 < p.max():
                ax.contour(xx, yy, p, levels=[0.5], colors="#222222", linewidths=1.0)
        else:
            predicted = np.ma.masked_invalid(
                np.where(np.isfinite(out).all(axis=1), out.argmax(axis=1), np.nan)
                .reshape(xx.shape))
            levels = np.arange(n_classes + 1) - 0.5
            ax.contourf(xx, yy, predicted, levels=levels,
                        colors=[lighten(c, 0.6) for c in colors])
            ax.contour(xx, yy, predicted, levels=levels[1:-1], colors="#222222",
                       linewidths=0.6)
        for k in range(n_classes):
            pick = shown[y[shown] == k]
            ax.scatter(X[pick, 0], X[pick, 1], s=10, color=colors[k], edgecolors="#222222",
                       linewidths=0.35)
        ax.set_title(f"{plain(run.label)}\ntest accuracy {accuracy_text(run.test_accuracy)}")
        ax.set_xlabel(plain(feature_names[0]))
        ax.set_ylabel(plain(feature_names[1]))
        ax.grid(False)
        ax.set_xlim(g0[0], g0[-1])
        ax.set_ylim(g1[0], g1[-1])
    _tidy_grid(fig, axes, len(runs), ncols)
    handles = [Line2D([], [], linestyle="", marker="o", markersize=6, color=colors[k],
                      markeredgecolor="#222222", markeredgewidth=0.5, label=plain(names[k]))
               for k in range(n_classes)]
    chars = max(len(h.get_label()) for h in handles) + 6  # marker and gap, in characters
    fits = max(1, int(fig.get_figwidth() * 14 // chars))  # about 14 characters per inch
    fig.legend(handles=handles, loc="outside lower center", ncols=min(n_classes, 8, fits))
    fig.suptitle("Decision boundary of each trained network over the training data")
    return fig
