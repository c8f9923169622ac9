"""The lecture's figures, drawn from real runs of gdlab's own optimizers, schedules, EWA and
mini-batches, on real data, seeded.

1. :func:`minibatch_cost` — the cost per iteration of batch gradient descent (it falls at every
   step) beside mini-batch gradient descent (noisy, trending down): same network, same data.
2. :func:`batch_sgd_paths` — batch GD, SGD and mini-batch GD over the cost contours of a
   logistic regression with two weights: steady, wandering, in between.
3. :func:`ewa_temperatures` — the EWA of a year of daily temperatures with β = 0.9, 0.98 and
   0.5 (about 10, 50 and 2 days).
4. :func:`bias_correction` — β = 0.98 over the first weeks with and without bias correction.
5. :func:`oscillation` — GD and Momentum with the same α near GD's stability limit, then
   RMSProp and Adam, on an elongated bowl: paths, and w₂ and w₁ against the step.
6. :func:`learning_rate_decay` — a noisy mini-batch path near the minimum with constant α and
   with decay, and α per epoch for every schedule.
7. :func:`batch_timing` — do powers of two run faster? The time per example of a training step
   against the mini-batch size, measured on this machine.

Every title states what its data show, written from numbers measured on those data (each
figure has a function that computes them, e.g. :func:`oscillation_title`,
:func:`minibatch_cost_measures`, :func:`smoothness`, :func:`spread`, :func:`powers_of_two`),
so that a title cannot claim more than its runs show.

Each function returns a :class:`matplotlib.figure.Figure` (no pyplot; PNGs render with Agg).
:func:`write_figures` writes them all (or some) as PNG files with the report page, and
:func:`save_figure` one figure; both write atomically. :func:`schedule_figure` draws α per epoch
of any schedule and :func:`read_column` reads the numbers of a CSV column (``gdlab schedule``
and ``gdlab smooth``).

Data: the daily temperatures are Seattle's (``seattle-weather.csv``, shipped inside the
``vega_datasets`` package and read from its files, no network); figure 1 uses the ``moons``
set and figures 2 and 6 two features of scikit-learn's bundled breast-cancer set; figure 7
times the ``moons`` set and scikit-learn's bundled 8×8 digits.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from .. import schedules
from .._checks import check_positive_int
from .._files import atomic_write
from ..data.datasets import load_data
from ..ewa import ewa
from ..losses import binary_cross_entropy
from ..models import MLP
from ..optim import GD
from ..report.style import DPI, OKABE_ITO, optimizer_color, styled
from ..train import History, fit
from . import landscape
from .weight_decay import weight_decay_figure

#: colours of the three batch sizes (batch GD has plain GD's colour)
BATCH_COLORS = {"batch": optimizer_color("gd"), "mini-batch": OKABE_ITO["orange"],
                "sgd": OKABE_ITO["vermillion"]}
#: colours of the three averages of figure 3 (the lecture's red, green and yellow)
BETA_COLORS = {0.9: OKABE_ITO["vermillion"], 0.98: OKABE_ITO["bluish_green"],
               0.5: OKABE_ITO["orange"]}
DATA_COLOR = "#6e7781"
J_T = r"$J^{\{t\}}$"


@dataclass
class CostRun:
    """A training run whose mini-batch costs the report's smoothing explorer shows (the fields
    the report reads from a :class:`gdlab.lab.runs.RunResult`, and its own colour)."""

    label: str
    optimizer: str
    schedule: str
    history: History
    color: str
    config: dict = field(default_factory=dict)


# ---------------------------------------------------------------- 1. batch vs mini-batch


def minibatch_cost_runs(*, iterations: int = 300, batch_size: int = 64, lr: float = 0.3,
                        seed: int = 0) -> list[CostRun]:
    """Batch GD (one step per epoch on all m examples) and mini-batch GD (``batch_size``) on
    the moons data, from the same initialization of the network [2, 16, 8, 1], with the same
    α, for the same number of iterations t."""
    data = load_data("moons", seed=seed)
    X, Y = data.X_train, data.Y_train
    m = len(X)
    torch.manual_seed(seed)
    initial = MLP([2, 16, 8, 1], output="sigmoid").double()
    runs = []
    for label, size, color in (("batch GD", m, BATCH_COLORS["batch"]),
                               (f"mini-batch GD (size {batch_size})", batch_size,
                                BATCH_COLORS["mini-batch"])):
        model = MLP([2, 16, 8, 1], output="sigmoid").double()
        model.load_state_dict(initial.state_dict())
        per_epoch = math.ceil(m / size)
        history = fit(model, X, Y, GD(model.parameters(), lr=lr),
                      epochs=math.ceil(iterations / per_epoch), batch_size=size, seed=seed,
                      progress=False)
        history.costs = history.costs[:iterations]
        runs.append(CostRun(label, "gd", "constant", history, color,
                            {"batch_size": size, "lr": lr, "m": m}))
    return runs


@dataclass(frozen=True)
class CostMeasures:
    """What figure 1 shows, counted: how many of the ``steps`` steps t → t+1 raise the cost
    J^{t} of batch GD (``batch_rises``) and of mini-batch GD (``minibatch_rises``), and the mean
    mini-batch cost over the first and the last ``window`` iterations."""

    steps: int
    batch_rises: int
    minibatch_rises: int
    window: int
    minibatch_first: float
    minibatch_last: float


def minibatch_cost_measures(runs: list[CostRun], window: int = 50) -> CostMeasures:
    """The :class:`CostMeasures` of figure 1's two runs (batch GD first)."""
    batch, mini = (np.asarray(run.history.costs, dtype=np.float64) for run in runs)
    window = min(window, len(mini) // 2)
    return CostMeasures(len(batch) - 1, int(np.sum(np.diff(batch) > 0)),
                        int(np.sum(np.diff(mini) > 0)), window, float(mini[:window].mean()),
                        float(mini[-window:].mean()))


def minibatch_cost_title(runs: list[CostRun], measures: CostMeasures) -> str:
    """Figure 1's claim, written from :func:`minibatch_cost_measures`."""
    m = measures
    batch = ("falls at every step" if m.batch_rises == 0 else
             f"rises at {m.batch_rises} of {m.steps} steps")
    trend = "falls" if m.minibatch_last < m.minibatch_first else "does not fall"
    return (f"Batch vs mini-batch gradient descent (moons, m = {runs[0].config['m']}, network "
            f"[2, 16, 8, 1]): batch GD's cost {batch};\nmini-batch GD's rises at "
            f"{m.minibatch_rises} of {m.steps} steps, yet its mean {trend} from "
            f"{m.minibatch_first:.3f} (first {m.window}) to {m.minibatch_last:.3f} "
            f"(last {m.window})")


@styled
def minibatch_cost(runs: list[CostRun] | None = None, *, beta: float = 0.9, **kwargs) -> Figure:
    """Two panels, the same y axis: the cost J^{t} of each iteration t of batch GD (falls every
    step) and of mini-batch GD (noisy, trending down, with its bias-corrected EWA)."""
    runs = runs if runs is not None else minibatch_cost_runs(**kwargs)
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, run in zip(axes, runs, strict=True):
        costs = np.asarray(run.history.costs)
        t = np.arange(1, len(costs) + 1)
        batch = run.config["batch_size"] == run.config["m"]
        ax.plot(t, costs, color=run.color, linewidth=1.5 if batch else 0.9,
                alpha=1 if batch else 0.75, label=J_T + (" (all m examples)" if batch else
                                                          " of each mini-batch"))
        if not batch:
            ax.plot(t, ewa(costs, beta, bias_correction=True), color="black", linewidth=1.4,
                    label=f"EWA, β = {beta:g}, bias-corrected")
        ax.set_title(f"{run.label}, α = {run.config['lr']:g}")
        ax.set_xlabel("iteration t (# of mini-batches)" if not batch else "iteration t")
        ax.legend(loc="upper right")
    axes[0].set_ylabel("cost J")
    fig.suptitle(minibatch_cost_title(runs, minibatch_cost_measures(runs)))
    return fig


# ---------------------------------------------------------------- 2. paths on contours


class LogisticRegression(nn.Module):
    """z = X·W with two weights and no bias (so the cost is a function of W = (w₁, w₂) only);
    the cost is the binary cross-entropy of σ(z)."""

    def __init__(self, start=(0.0, 0.0)):
        super().__init__()
        self.W = nn.Parameter(torch.tensor(start, dtype=torch.float64))

    def forward(self, X):
        return X @ self.W


FEATURES = ("mean texture", "mean smoothness")
PATH_START = (2.5, 2.5)


@dataclass
class PathProblem:
    """Logistic regression with two weights on two standardized features of the breast-cancer
    data: X (m, 2), Y (m,), the minimum W* and a window around it for the contours."""

    X: torch.Tensor
    Y: torch.Tensor
    features: tuple[str, str]
    minimum: np.ndarray

    def cost(self, W1: np.ndarray, W2: np.ndarray) -> np.ndarray:
        """J(w₁, w₂) over a grid: the mean binary cross-entropy over all m examples."""
        grid = torch.as_tensor(np.stack([W1.ravel(), W2.ravel()]), dtype=torch.float64)
        Z = self.X @ grid
        J = F.binary_cross_entropy_with_logits(Z, self.Y[:, None].expand_as(Z),
                                               reduction="none").mean(0)
        return J.numpy().reshape(W1.shape)


@functools.lru_cache(maxsize=4)
def path_problem(seed: int = 0) -> PathProblem:
    """The two-weight problem on the training split of ``seed`` (computed once per seed)."""
    data = load_data("breast-cancer", seed=seed)
    index = [data.feature_names.index(name) for name in FEATURES]
    X = torch.as_tensor(data.X_train[:, index], dtype=torch.float64)
    Y = torch.as_tensor(data.Y_train, dtype=torch.float64).reshape(-1)
    # the minimum, by batch GD (the cost is convex; α = 8 is below 2/λ_max of its Hessian)
    model = LogisticRegression()
    optimizer = GD(model.parameters(), lr=8.0)
    for _ in range(150):
        optimizer.zero_grad()
        binary_cross_entropy(model(X), Y).backward()
        optimizer.step()
    return PathProblem(X, Y, FEATURES, model.W.detach().numpy().copy())


def train_path(problem: PathProblem, *, batch_size: int, lr: float, epochs: int, seed: int = 0,
               schedule=None, start=PATH_START, max_steps: int | None = None):
    """Train the two weights with gdlab.fit (GD, mini-batches of ``batch_size``) and return
    (path, history): path[k] is W after k steps (row 0 the start)."""
    model = LogisticRegression(start)
    optimizer = GD(model.parameters(), lr=lr)
    path = [model.W.detach().numpy().copy()]
    optimizer.register_step_post_hook(
        lambda *_: path.append(model.W.detach().numpy().copy()))
    history = fit(model, problem.X, problem.Y, optimizer, epochs=epochs, batch_size=batch_size,
                  loss=binary_cross_entropy, schedule=schedule, seed=seed, progress=False)
    path = np.asarray(path)
    return (path if max_steps is None else path[:max_steps + 1]), history


def _contours(ax, problem: PathProblem, xlim, ylim, n_levels: int = 14) -> None:
    w1 = np.linspace(*xlim, 200)
    w2 = np.linspace(*ylim, 200)
    G1, G2 = np.meshgrid(w1, w2)
    J = problem.cost(G1, G2)
    low = problem.cost(*np.meshgrid([problem.minimum[0]], [problem.minimum[1]])).item()
    levels = low + (J.max() - low) * np.linspace(0.004, 1, n_levels) ** 2
    ax.contourf(G1, G2, J, levels=np.concatenate([[low], levels]), cmap="Greys_r", alpha=0.3)
    ax.contour(G1, G2, J, levels=levels, colors="#888888", linewidths=0.5)
    ax.plot(*problem.minimum, marker="*", markersize=13, color="black", linestyle="",
            label="minimum W*", zorder=6)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(f"$w_1$ ({problem.features[0]})")
    ax.set_ylabel(f"$w_2$ ({problem.features[1]})")
    ax.grid(False)


@dataclass
class Paths:
    problem: PathProblem
    paths: dict  # label -> (path, color, config)


def batch_sgd_paths_data(*, seed: int = 0, lr: float = 1.0, batch_size: int = 16,
                         steps: int = 50, sgd_steps: int = 100) -> Paths:
    """Batch GD and mini-batch GD for ``steps`` steps and SGD for ``sgd_steps``, all with α =
    ``lr`` from the same start, on the same data and (for the shuffled ones) the same seed."""
    problem = path_problem(seed)
    m = len(problem.X)
    plan = (("SGD (size 1)", 1, sgd_steps, "sgd"),
            (f"mini-batch GD (size {batch_size})", batch_size, steps, "mini-batch"),
            (f"batch GD (size m = {m})", m, steps, "batch"))
    paths = {}
    for label, size, n_steps, key in plan:
        epochs = math.ceil(n_steps / math.ceil(m / size))
        path, _ = train_path(problem, batch_size=size, lr=lr, epochs=epochs, seed=seed,
                             max_steps=n_steps)
        paths[label] = (path, BATCH_COLORS[key], {"batch_size": size, "lr": lr})
    return Paths(problem, paths)


def spread(path: np.ndarray, minimum, last: int = 30) -> float:
    """How far a path stays from the minimum W* at the end: the mean distance |W - W*| over
    its ``last`` steps."""
    return float(np.linalg.norm(np.asarray(path)[-last:] - minimum, axis=1).mean())


def batch_sgd_paths_title(data: Paths, last: int = 30) -> str:
    """Figure 2's claim, written from the paths: whether batch GD's cost falls at every step,
    and each path's :func:`spread` around the minimum over its last ``last`` steps."""
    spreads = {label: spread(path, data.problem.minimum, last)
               for label, (path, _, _) in data.paths.items()}
    batch_label = next(label for label in data.paths if label.startswith("batch"))
    batch = data.paths[batch_label][0]
    rises = int(np.sum(np.diff(data.problem.cost(batch[:, 0], batch[:, 1])) > 0))
    falls = ("lowers J at every step" if rises == 0 else
             f"raises J at {rises} of {len(batch) - 1} steps")
    lr = next(iter(data.paths.values()))[2]["lr"]
    ranked = " < ".join(f"{label.split(' (')[0]} {spreads[label]:.3f}"
                        for label in sorted(spreads, key=spreads.get))
    return (f"Batch, mini-batch and stochastic gradient descent over the contours of J, "
            f"α = {lr:g}\n(logistic regression with two weights, breast-cancer data, "
            f"m = {len(data.problem.X)})\nbatch GD {falls}; mean distance from W* over the "
            f"last {last} steps:\n{ranked}")


@styled
def batch_sgd_paths(data: Paths | None = None, **kwargs) -> Figure:
    """Contours of the logistic-regression cost J(w₁, w₂) with the paths of batch GD (steady),
    mini-batch GD (a little noisy) and SGD (wandering around the minimum), same α and start."""
    data = data if data is not None else batch_sgd_paths_data(**kwargs)
    fig = Figure(figsize=(8.0, 5.2), layout="constrained")
    ax = fig.add_subplot()
    points = np.concatenate([p for p, _, _ in data.paths.values()] + [[data.problem.minimum]])
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = 0.12 * (hi - lo) + 0.2
    _contours(ax, data.problem, (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1],
                                                                      hi[1] + pad[1]))
    for label, (path, color, config) in data.paths.items():
        n = len(path) - 1
        sgd = config["batch_size"] == 1
        ax.plot(path[:, 0], path[:, 1], color=color, linewidth=0.9 if sgd else 1.4,
                marker="o", markersize=1.6 if sgd else 2.4, alpha=0.85 if sgd else 1,
                label=f"{label}: {n} steps", zorder=3)
    start = next(iter(data.paths.values()))[0][0]
    ax.plot(*start, marker="o", markersize=7, color="black", linestyle="", label="start",
            zorder=5)
    fig.suptitle(batch_sgd_paths_title(data))
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


# ---------------------------------------------------------------- 3, 4. EWA


def _vega_file(name: str) -> Path:
    """A data file shipped inside the vega_datasets package, found without importing it."""
    spec = importlib.util.find_spec("vega_datasets")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the temperature figures need the vega_datasets package "
                         "(pip install vega_datasets)")
    return Path(next(iter(spec.submodule_search_locations))) / "_data" / name


@dataclass
class Temperatures:
    dates: list[str]
    theta: np.ndarray  # θ_t, °C
    place: str = "Seattle"
    what: str = "daily high temperature"


def seattle_temperatures(year: int = 2012) -> Temperatures:
    """θ_t: the daily maximum temperature (°C) in Seattle in ``year`` (2012–2015), from
    vega_datasets' seattle-weather.csv."""
    text = _vega_file("seattle-weather.csv").read_text(encoding="utf-8")
    dates, theta = [], []
    for row in csv.DictReader(io.StringIO(text)):
        if row["date"].startswith(f"{year}/"):
            dates.append(row["date"].replace("/", "-"))
            theta.append(float(row["temp_max"]))
    if not dates:
        raise ValueError(f"seattle-weather.csv has no days in {year}; it covers 2012 to 2015")
    return Temperatures(dates, np.asarray(theta), what=f"daily high temperature, {year}")


def _window(beta: float, unit: str = "days") -> str:
    return f"1/(1−β) = {1 / (1 - beta):.3g} {unit}" if beta < 1 else "∞"


def _beta_colors(betas) -> list[str]:
    """The lecture's colours for 0.9, 0.98 and 0.5; other β get the rest of the palette."""
    spare = [OKABE_ITO[k] for k in ("blue", "reddish_purple", "sky_blue", "black", "yellow")]
    colors = []
    for beta in betas:
        colors.append(BETA_COLORS.get(beta) or spare[len([c for c in colors
                                                          if c in spare]) % len(spare)])
    return colors


@styled
def smoothing_figure(theta, betas, *, bias_correction: bool = True, name: str = "θ",
                     unit: str = "", xlabel: str = "t", ylabel: str | None = None,
                     title: str | None = None, window_unit: str = "steps") -> Figure:
    """A series θ_t as points and its EWA with each β (``gdlab.ewa``; v̂_t if
    ``bias_correction``), the window 1/(1-β) of each in the legend. Non-finite points are
    gaps and do not update the averages."""
    theta = np.asarray(theta, dtype=np.float64)
    fig = Figure(figsize=(9.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    t = np.arange(1, len(theta) + 1)
    small = len(theta) > 500
    ax.plot(t, theta, linestyle="", marker="o", markersize=1.6 if small else 2.6,
            color=DATA_COLOR, alpha=0.7, label=rf"$\theta_t$: {name}")
    v = r"$\hat v_t$" if bias_correction else "$v_t$"
    for beta, color in zip(betas, _beta_colors(betas), strict=True):
        ax.plot(t, ewa(theta, beta, bias_correction=bias_correction), linewidth=1.8,
                color=color, label=f"{v}, β = {beta:g}  (about {_window(beta, window_unit)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or rf"$\theta_t$ {unit}".strip())
    ax.set_title(title or rf"Exponentially weighted averages $v_t = \beta v_{{t-1}} + "
                 rf"(1-\beta)\theta_t$ of {name}"
                 + (" (bias-corrected)" if bias_correction else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


@dataclass(frozen=True)
class Smoothness:
    """What an average of figure 3 shows, measured: ``change``, the mean day-to-day change
    |v̂_t - v̂_{t-1}| (smaller is smoother), and ``lag``, the shift s in days that best aligns
    v̂_t with the data θ_{t-s} (the largest correlation; larger is later)."""

    change: float
    lag: int


def smoothness(theta, beta: float, max_lag: int = 120) -> Smoothness:
    """The :class:`Smoothness` of the bias-corrected EWA of ``theta`` with ``beta``."""
    theta = np.asarray(theta, dtype=np.float64)
    v_hat = ewa(theta, beta, bias_correction=True)
    n = len(theta)
    correlations = [np.corrcoef(v_hat[s:], theta[:n - s])[0, 1]
                    for s in range(min(max_lag, n - 2) + 1)]
    return Smoothness(float(np.abs(np.diff(v_hat)).mean()), int(np.argmax(correlations)))


def ewa_temperatures_title(temps: Temperatures, betas) -> str:
    """Figure 3's claim, written from :func:`smoothness` of each average, β in rising order."""
    betas = sorted(betas)
    measured = [smoothness(temps.theta, beta) for beta in betas]
    smoother = all(a.change > b.change for a, b in zip(measured, measured[1:]))
    later = all(a.lag <= b.lag for a, b in zip(measured, measured[1:]))
    verdict = ("the larger β, the smoother" if smoother else "not smoother with β") + (
        " and the later" if later else ", not later")
    return (rf"Exponentially weighted averages $v_t = \beta v_{{t-1}} + (1-\beta)\theta_t$ "
            f"of the {temps.what} in {temps.place} (bias-corrected)\n{verdict} (the mean "
            "day-to-day change; the lag that best aligns the average with the data):\n"
            + " · ".join(f"β = {beta:g}: {m.change:.2f} °C a day, lag {m.lag} days"
                         for beta, m in zip(betas, measured, strict=True)))


@styled
def ewa_temperatures(temps: Temperatures | None = None, betas=(0.9, 0.98, 0.5)) -> Figure:
    """The daily temperatures θ_t as points and their bias-corrected EWA v̂_t with each β:
    β = 0.9 follows the weather of about 10 days, 0.98 is smoother and lags, 0.5 is noisy
    (the title gives each one's measured :func:`smoothness`)."""
    temps = temps if temps is not None else seattle_temperatures()
    fig = smoothing_figure(
        temps.theta, betas, name="temperature each day", unit="(°C)",
        ylabel=r"temperature $\theta_t$ (°C)",
        xlabel=f"day t (1 = {temps.dates[0]})", window_unit="days",
        title=ewa_temperatures_title(temps, betas))
    fig.axes[0].legend(loc="upper left")
    return fig


def bias_correction_title(temps: Temperatures, beta: float, days: int) -> str:
    """Figure 4's claim, written from the two averages over the first ``days`` days: v₁ and
    v̂₁ against θ₁, and how far v_t still is below v̂_t on the last day."""
    theta = temps.theta[:days]
    v, v_hat = ewa(theta, beta), ewa(theta, beta, bias_correction=True)
    short = 1 - v[-1] / v_hat[-1]
    return (f"Bias correction over the first {len(theta) // 7} weeks ({temps.what}, "
            f"{temps.place}), β = {beta:g}:\non day 1, v₁ = {v[0]:.2f} °C and "
            f"v̂₁ = {v_hat[0]:.1f} °C for θ₁ = {theta[0]:.1f} °C; on day {len(theta)} $v_t$ "
            f"is still {short:.0%} below " r"$\hat v_t$")


@styled
def bias_correction(temps: Temperatures | None = None, beta: float = 0.98,
                    days: int = 56) -> Figure:
    """The first ``days`` days: v_t with β = 0.98 starts at v₀ = 0 and stays far below the
    data for weeks; v̂_t = v_t/(1-β^t) tracks the data from the first day."""
    temps = temps if temps is not None else seattle_temperatures()
    theta = temps.theta[:days]
    t = np.arange(1, len(theta) + 1)
    fig = Figure(figsize=(8.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(t, theta, linestyle="", marker="o", markersize=3.5, color=DATA_COLOR,
            label=r"$\theta_t$ (each day)")
    ax.plot(t, ewa(theta, beta), linewidth=1.8, color=OKABE_ITO["reddish_purple"],
            label=rf"$v_t$, β = {beta:g}, no correction (starts at $v_0 = 0$)")
    ax.plot(t, ewa(theta, beta, bias_correction=True), linewidth=1.8,
            color=BETA_COLORS[0.98] if beta == 0.98 else OKABE_ITO["blue"],
            label=r"$\hat v_t = v_t/(1-\beta^t)$, bias-corrected")
    ax.set_xlim(0, len(theta) + 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"day t (1 = {temps.dates[0]})")
    ax.set_ylabel(r"temperature $\theta_t$ (°C)")
    ax.set_title(bias_correction_title(temps, beta, days))
    ax.legend(loc="lower right")
    return fig


# ---------------------------------------------------------------- 5. oscillation


@dataclass
class OscillationRow:
    """Optimizers run with one α on the bowl: ``paths`` {name: path (steps + 1, 2)}, the
    hyperparameters beyond α of each (``hyper``) and what each path shows (``swings``)."""

    lr: float
    paths: dict
    hyper: dict
    swings: dict


@dataclass
class Oscillation:
    """Figure 5's runs on the elongated bowl, from the landscape's start, ``steps`` steps:
    GD and Momentum with the same α near GD's stability limit 2/λ_max (``limit``), then
    RMSProp and Adam with the same α of their own; swings measured from step ``k`` on."""

    function: str
    limit: float
    k: int
    steps: int
    rows: list


def oscillation_data(*, lr: float = 0.99, beta: float = 0.9, adaptive_lr: float = 0.1,
                     steps: int = 60, k: int = 30) -> Oscillation:
    """GD and Momentum (β = ``beta``, the lecture's form v := β·v + (1-β)·dW) with the same
    α = ``lr`` (default 0.99, GD's limit along w₂ being α < 2/λ₂ = 1), and RMSProp and Adam
    with α = ``adaptive_lr`` (their other hyperparameters gdlab's defaults), on
    J = 0.01·w₁² + w₂², measured with :func:`gdlab.lab.landscape.swing` from step ``k``."""
    function = "elongated"
    land = landscape.get_landscape(function)
    rows = []
    for alpha, plan in ((lr, {"gd": {}, "momentum": {"beta": beta}}),
                        (adaptive_lr, {"rmsprop": {}, "adam": {}})):
        paths = {name: landscape.trajectory(function, name, alpha, steps, **hyper)
                 for name, hyper in plan.items()}
        swings = {name: landscape.swing(path, k, land.minimum) for name, path in paths.items()}
        rows.append(OscillationRow(alpha, paths, plan, swings))
    return Oscillation(function, landscape.gd_stability_limit(function), k, steps, rows)


def _times(a: float, b: float) -> str:
    """How a compares with b, in words: "3.3× less", "2× more", "over 100× less" or "about as
    much"."""
    if 0.95 <= a / b <= 1.05:
        return "about as much"
    ratio, word = (b / a, "less") if a < b else (a / b, "more")
    return f"over 100× {word}" if ratio > 100 else f"{ratio:.2g}× {word}"


def oscillation_title(data: Oscillation) -> str:
    """The figure's claim, written from the measured swings (so it cannot say more than the
    runs show): how much less each optimizer swings across the valley than GD after k steps,
    and how far GD and Momentum go along it."""
    gd, momentum = (data.rows[0].swings[name] for name in ("gd", "momentum"))
    rmsprop, adam = (data.rows[1].swings[name] for name in ("rmsprop", "adam"))
    beta = data.rows[0].hyper["momentum"]["beta"]
    along = ("as far" if abs(momentum.distance - gd.distance) <= 0.05 * abs(gd.distance)
             else "further" if momentum.distance > gd.distance else "less far")
    formula = landscape.get_landscape(data.function).formula
    oscillates = "GD oscillates: " if gd.crossings >= data.steps // 2 else ""
    return (f"On the bowl {formula}, {data.steps} steps from the same start. {oscillates}"
            f"$w_2$ changes sign at {gd.crossings} of GD's {data.steps} steps, at "
            f"{momentum.crossings} of Momentum's;\n"
            f"with the same α = {data.rows[0].lr:g} (GD's limit: α < {data.limit:g}), Momentum "
            f"(β = {beta:g}) swings {_times(momentum.amplitude, gd.amplitude)} than GD across "
            f"the valley after {data.k} steps and goes {along} along it "
            f"({momentum.distance:.2f} vs {gd.distance:.2f});\n"
            f"with α = {data.rows[1].lr:g}, RMSProp swings "
            f"{_times(rmsprop.amplitude, gd.amplitude)} than GD and Adam "
            f"{_times(adam.amplitude, gd.amplitude)}")


def _hyper_text(name: str, hyper: dict) -> str:
    symbols = {"beta": "β", "beta1": "β₁", "beta2": "β₂", "eps": "ε"}
    return "".join(f", {symbols.get(k, k)} = {v:g}" for k, v in hyper.items())


@styled
def oscillation(data: Oscillation | None = None, **kwargs) -> Figure:
    """Two rows on the elongated bowl J = 0.01·w₁² + w₂²: GD and Momentum with the same α near
    GD's stability limit, then RMSProp and Adam with their own α. Each row: the paths over the
    contours (a legend with that row's α), w₂ against the step (the swing across the valley,
    its size after k steps printed) and w₁ against the step (the way along it, the distance
    after N steps printed). The title is :func:`oscillation_title` of the measurements."""
    data = data if data is not None else oscillation_data(**kwargs)
    land = landscape.get_landscape(data.function)
    fig = Figure(figsize=(14.0, 7.6), layout="constrained")
    axes = fig.subplots(len(data.rows), 3, width_ratios=[1.25, 1, 1])
    for (ax_path, ax_w2, ax_w1), row in zip(axes, data.rows, strict=True):
        extras = {name: _hyper_text(name, hyper) for name, hyper in row.hyper.items()}
        landscape.draw_paths(ax_path, land, row.paths, {name: row.lr for name in row.paths},
                             extras)
        names = " and ".join(landscape.NAMES[name] for name in row.paths)
        ax_path.set_title(f"{names}, the same α = {row.lr:g}, {data.steps} steps")
        ax_path.legend(loc="lower right", fontsize=7)
        ax_w2.axvspan(data.k, data.steps, color="#eeeeee", zorder=0)
        amplitude = [f"max |w₂| over steps {data.k}–{data.steps}:"]
        distance = [f"w₁ covered in {data.steps} steps:"]
        for name, path in row.paths.items():
            steps = np.arange(len(path))
            style = {"color": optimizer_color(name), "linewidth": 1.2,
                     "label": landscape.NAMES[name]}
            ax_w2.plot(steps, path[:, 1], marker="o", markersize=2, **style)
            ax_w1.plot(steps, path[:, 0], **style)
            amplitude.append(f"{landscape.NAMES[name]}: {row.swings[name].amplitude:.3g}")
            distance.append(f"{landscape.NAMES[name]}: {row.swings[name].distance:.3g}")
        for ax, lines, where in ((ax_w2, amplitude, "upper right"),
                                 (ax_w1, distance, "lower right")):
            ax.text(0.98, 0.97 if where == "upper right" else 0.04, "\n".join(lines),
                    transform=ax.transAxes, ha="right",
                    va="top" if where == "upper right" else "bottom", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "#cccccc", "alpha": 0.9})
        ax_w2.axhline(land.minimum[1], color="black", linewidth=0.6)
        ax_w2.set_title("across the valley: $w_2$ against the step")
        ax_w2.set_xlabel("step k")
        ax_w2.set_ylabel("$w_2$")
        ax_w2.legend(loc="lower right", fontsize=7)
        ax_w1.axhline(land.minimum[0], color="black", linewidth=0.6)
        ax_w1.set_title("along the valley: $w_1$ against the step")
        ax_w1.set_xlabel("step k")
        ax_w1.set_ylabel("$w_1$")
        ax_w1.legend(loc="upper left", bbox_to_anchor=(0.0, 0.93), fontsize=7)
    fig.suptitle(oscillation_title(data))
    return fig


# ---------------------------------------------------------------- 6. decay


@dataclass
class Decay:
    problem: PathProblem
    constant: np.ndarray  # the path with constant α (row k: W after k steps)
    decayed: np.ndarray  # the same run with inverse-time decay
    lr0: float
    decay_rate: float
    batch_size: int
    epochs: int
    steps_per_epoch: int
    schedule_curves: dict  # label -> α per epoch


def learning_rate_decay_data(*, seed: int = 0, lr0: float = 1.0, decay_rate: float = 1.0,
                             batch_size: int = 16, epochs: int = 8, schedule_lr0: float = 0.2,
                             schedule_epochs: int = 50) -> Decay:
    """Two runs of mini-batch GD on the two-weight problem, same start, data order and α₀:
    constant α and α = α₀/(1 + decay_rate·epoch_num); and α per epoch of every schedule
    (plateau's from a real run, since it depends on the cost)."""
    problem = path_problem(seed)
    constant, _ = train_path(problem, batch_size=batch_size, lr=lr0, epochs=epochs, seed=seed,
                             schedule=schedules.constant(lr0))
    decayed, _ = train_path(problem, batch_size=batch_size, lr=lr0, epochs=epochs, seed=seed,
                            schedule=schedules.inverse_time(lr0, decay_rate))
    curves = {}
    epoch_nums = range(1, schedule_epochs + 1)
    for label, schedule in (
            ("constant", schedules.constant(schedule_lr0)),
            ("inverse_time, decay_rate = 1", schedules.inverse_time(schedule_lr0, 1)),
            ("exponential, base = 0.95", schedules.exponential(schedule_lr0, 0.95)),
            ("inverse_sqrt, k = 1", schedules.inverse_sqrt(schedule_lr0, 1)),
            ("staircase, ×0.5 every 10", schedules.staircase(schedule_lr0, 0.5, 10))):
        curves[label] = np.array([schedule(e) for e in epoch_nums])
    plateau = schedules.plateau(schedule_lr0, factor=0.5, patience=5, beta=0.5,
                                threshold=1e-3)
    _, history = train_path(problem, batch_size=32, lr=schedule_lr0, epochs=schedule_epochs,
                            seed=seed, schedule=plateau)
    curves["plateau, ×0.5 when the cost stalls (a real run)"] = np.asarray(history.lrs)
    return Decay(problem, constant, decayed, lr0, decay_rate, batch_size, epochs,
                  math.ceil(len(problem.X) / batch_size), curves)


def learning_rate_decay_title(data: Decay) -> str:
    """Figure 6's claim, written from the two paths: the :func:`spread` of each around the
    minimum over its last epoch."""
    last = data.steps_per_epoch
    constant, decayed = (spread(path, data.problem.minimum, last)
                         for path in (data.constant, data.decayed))
    verdict = (f"decay settles {constant / decayed:.2g}× closer" if decayed < constant else
               "decay does not settle closer")
    return (f"Learning-rate decay near the minimum: mini-batch GD (size {data.batch_size}), "
            f"the same start and mini-batches, {data.epochs} epochs\n{verdict}: mean "
            f"distance from W* over the last epoch {decayed:.3f} with decay, {constant:.3f} "
            f"with constant α")


SCHEDULE_COLORS = [OKABE_ITO[k] for k in ("black", "blue", "vermillion", "bluish_green",
                                          "reddish_purple", "orange")]
SCHEDULE_STYLES = [(0, (5, 3)), "-", "-", "-", "-", "-"]


@styled
def learning_rate_decay(data: Decay | None = None, **kwargs) -> Figure:
    """Left and middle: near the minimum, mini-batch GD with constant α keeps circling it; the
    same run with α = α₀/(1 + decay_rate·epoch_num) settles into it (both drawn from the
    second epoch on, the same window). Right: α per epoch of each schedule."""
    data = data if data is not None else learning_rate_decay_data(**kwargs)
    fig = Figure(figsize=(14.0, 4.6), layout="constrained")
    ax_const, ax_decay, ax_lr = fig.subplots(1, 3, width_ratios=[1, 1, 1.15])
    first = data.steps_per_epoch  # W after the first epoch
    tails = {"constant": data.constant[first:], "decayed": data.decayed[first:]}
    points = np.concatenate([tails["constant"], tails["decayed"], [data.problem.minimum]])
    center = data.problem.minimum
    radius = 1.08 * np.abs(points - center).max()
    window = ((center[0] - radius, center[0] + radius), (center[1] - radius, center[1] + radius))
    for ax, key, color, title in (
            (ax_const, "constant", BATCH_COLORS["mini-batch"], f"constant α = {data.lr0:g}"),
            (ax_decay, "decayed", OKABE_ITO["blue"],
             f"α = α₀/(1 + {data.decay_rate:g}·epoch_num), α₀ = {data.lr0:g}")):
        _contours(ax, data.problem, *window, n_levels=18)
        path = tails[key]
        ax.plot(path[:, 0], path[:, 1], color=color, linewidth=0.9, marker="o",
                markersize=2.0, label=f"W, epochs 2–{data.epochs}", zorder=4)
        ax.plot(*path[-1], marker="X", markersize=10, color=color, markeredgecolor="black",
                linestyle="", zorder=7, label="last step")
        ax.set_title(title)
        ax.set_aspect("equal", adjustable="box")
        ax.legend(loc="upper left", fontsize=7)
    ax_decay.yaxis.label.set_visible(False)
    for (label, alpha), color, style in zip(data.schedule_curves.items(), SCHEDULE_COLORS,
                                            SCHEDULE_STYLES, strict=False):
        epochs = np.arange(1, len(alpha) + 1)
        step = "staircase" in label or "plateau" in label
        ax_lr.plot(epochs, alpha, color=color, linewidth=1.6, linestyle=style,
                   drawstyle="steps-post" if step else "default", label=label)
    ax_lr.set_xlabel("epoch_num")
    ax_lr.set_ylabel("learning rate α")
    alpha0 = next(iter(data.schedule_curves.values()))[0]
    ax_lr.set_title(f"α per epoch of each schedule, α₀ = {alpha0:g}")
    ax_lr.set_ylim(0, alpha0 * 1.08)
    ax_lr.legend(loc="center right", bbox_to_anchor=(1.0, 0.6), fontsize=7)
    fig.suptitle(learning_rate_decay_title(data))
    return fig


# ---------------------------------------------------------------- 7. powers of two


#: mini-batch sizes of figure 7: powers of two, their neighbours and round numbers between
BATCH_SIZES = (48, 63, 64, 65, 96, 100, 127, 128, 129, 192, 256, 384, 500, 512)


def digits_cnn() -> nn.Module:
    """A small convolutional network for 1×8×8 digit images: two 3×3 convolutions (4 and 8
    channels, ReLU), 2×2 max pooling, a linear layer to the 10 classes."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


@dataclass
class TimingProblem:
    """A network figure 7 times: ``build()`` makes it, ``X``, ``Y`` and ``loss`` train it."""

    label: str
    build: Callable
    X: torch.Tensor
    Y: torch.Tensor
    loss: Callable | None = None


def timing_problems(seed: int = 0) -> list[TimingProblem]:
    """gdlab's default MLP [2, 16, 8, 1] on the moons data and :func:`digits_cnn` on
    scikit-learn's 8×8 digits, in float32."""
    moons = load_data("moons", seed=seed)
    digits = load_data("digits", seed=seed)
    return [TimingProblem("MLP [2, 16, 8, 1], moons",
                          lambda: MLP([2, 16, 8, 1], output="sigmoid"),
                          torch.as_tensor(moons.X_train, dtype=torch.float32),
                          torch.as_tensor(moons.Y_train, dtype=torch.float32)),
            TimingProblem("CNN (2 conv layers), 8×8 digits", digits_cnn,
                          torch.as_tensor(digits.X_train.reshape(-1, 1, 8, 8),
                                          dtype=torch.float32),
                          torch.as_tensor(digits.Y_train), F.cross_entropy)]


@dataclass
class BatchTiming:
    """Figure 7's measurements: ``seconds[label]`` has one row per repeat and one column per
    size in ``sizes``: the seconds per example of an epoch of training steps (gdlab.fit, GD)
    with mini-batches of that size, on ``machine``."""

    sizes: tuple
    seconds: dict
    repeats: int
    machine: str

    def medians(self, label: str) -> np.ndarray:
        """The median over the repeats of the seconds per example at each size."""
        return np.median(self.seconds[label], axis=0)

    def spread(self, label: str) -> float:
        """Run-to-run noise: the median over the sizes of (max - min)/median of the repeats."""
        table = self.seconds[label]
        return float(np.median((table.max(axis=0) - table.min(axis=0)) / self.medians(label)))


def _machine(threads: int) -> str:
    import platform

    cpu = platform.processor() or platform.machine() or "unknown CPU"
    return f"{cpu}, {threads} torch thread{'s' if threads != 1 else ''}, torch {torch.__version__}"


def _seconds_per_example(problem: TimingProblem, X, Y, size: int, examples: int,
                         threads: int, seed: int) -> float:
    """One epoch of gdlab.fit (GD) over the first ⌈examples/size⌉·size rows of X, Y in
    mini-batches of ``size``: its seconds divided by its examples."""
    m = math.ceil(examples / size) * size
    torch.manual_seed(seed)
    model = problem.build()
    history = fit(model, X[:m], Y[:m], GD(model.parameters(), lr=0.01), epochs=1,
                  batch_size=size, loss=problem.loss, seed=seed, num_threads=threads,
                  progress=False)
    return history.times[0] / m


def batch_timing_data(*, sizes=BATCH_SIZES, examples: int = 1024, repeats: int = 5,
                      threads: int = 1, seed: int = 0, problems=None) -> BatchTiming:
    """Time a training step per example at each mini-batch size for each network of
    ``problems`` (default :func:`timing_problems`): one measurement is one epoch of about
    ``examples`` examples. Each network is warmed up with one fit first; then the sizes are
    visited in a fresh random order in each of the ``repeats`` rounds (interleaved, so that a
    slow moment of the machine does not fall on one size). ``threads`` torch threads for every
    size (one by default: on a shared or small machine more threads mostly time contention)."""
    sizes = tuple(check_positive_int("size", size) for size in sizes)
    threads = check_positive_int("threads", threads)
    rng = np.random.default_rng(seed)
    seconds = {}
    examples = check_positive_int("examples", examples)
    for problem in problems if problems is not None else timing_problems(seed):
        rows = torch.arange(examples + max(sizes)) % len(problem.X)  # the data, repeated
        X, Y = problem.X[rows], problem.Y[rows]
        _seconds_per_example(problem, X, Y, sizes[0], examples, threads, seed)  # warm-up
        table = np.zeros((check_positive_int("repeats", repeats), len(sizes)))
        for r in range(repeats):
            for i in rng.permutation(len(sizes)):
                table[r, i] = _seconds_per_example(problem, X, Y, sizes[i], examples, threads,
                                                   seed)
        seconds[problem.label] = table
    return BatchTiming(sizes, seconds, repeats, _machine(threads))


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def powers_of_two(timing: BatchTiming, label: str) -> dict:
    """{p: t(p) / mean t(p ± 1)} for each power of two p among the sizes whose neighbours
    p - 1 or p + 1 were timed too (medians): below 1, p ran faster per example."""
    median = dict(zip(timing.sizes, timing.medians(label), strict=True))
    ratios = {}
    for p in timing.sizes:
        neighbours = [median[n] for n in (p - 1, p + 1) if n in median]
        if _is_power_of_two(p) and neighbours:
            ratios[p] = float(median[p] / np.mean(neighbours))
    return ratios


def batch_timing_verdict(ratios: dict, spread: float) -> tuple[str, str]:
    """The answer for one network and the numbers behind it: the geometric mean of the ratios
    of :func:`powers_of_two` against the run-to-run ``spread`` (a difference within
    max(5 %, spread) is no difference)."""
    if not ratios:
        return "no power of two was timed beside its neighbours ±1", ""
    mean = float(np.exp(np.mean(np.log(list(ratios.values())))))
    margin = max(0.05, spread)
    verdict = ("yes, faster" if mean < 1 - margin else "no, slower" if mean > 1 + margin else
               "no difference beyond the noise")
    detail = (", ".join(f"{p}: {r:.2f}×" for p, r in ratios.items())
              + f" the time of its neighbours ±1 (run-to-run spread {spread:.0%})")
    return verdict, detail


def batch_timing_title(timing: BatchTiming) -> str:
    """Figure 7's answer, written from the medians: the question, the machine, and per network
    the verdict of :func:`batch_timing_verdict`."""
    verdicts = "; ".join(
        f"{label.split()[0]}: "
        + batch_timing_verdict(powers_of_two(timing, label), timing.spread(label))[0]
        for label in timing.seconds)
    return (f"Do powers of two run faster? {verdicts}\n(time per example of a training step, "
            f"median of {timing.repeats} interleaved runs on this machine: {timing.machine})")


@styled
def batch_timing(timing: BatchTiming | None = None, **kwargs) -> Figure:
    """One panel per network: the microseconds per example of a training step at each
    mini-batch size (sizes equally spaced, in order), each repeat a faint point, the median a
    line, powers of two marked; the title is :func:`batch_timing_title`, each panel's that of
    :func:`batch_timing_verdict`."""
    timing = timing if timing is not None else batch_timing_data(**kwargs)
    fig = Figure(figsize=(12.0, 5.0), layout="constrained")
    axes = fig.subplots(1, len(timing.seconds), squeeze=False).ravel()
    x = np.arange(len(timing.sizes))
    power = np.array([_is_power_of_two(n) for n in timing.sizes])
    for ax, (label, table) in zip(axes, timing.seconds.items(), strict=True):
        median = 1e6 * timing.medians(label)
        for row in 1e6 * table:
            ax.plot(x, row, linestyle="", marker=".", markersize=3, color=DATA_COLOR,
                    alpha=0.6)
        ax.plot(x, median, color=OKABE_ITO["blue"], linewidth=1.4, marker="o",
                markersize=3.5, label=f"median of {timing.repeats} runs (points: each run)")
        ax.plot(x[power], median[power], linestyle="", marker="D", markersize=7,
                markerfacecolor="none", markeredgecolor=OKABE_ITO["vermillion"],
                markeredgewidth=1.5, label="powers of two")
        ax.set_xticks(x, [str(n) for n in timing.sizes])
        ax.set_xlabel("mini-batch size")
        ax.set_ylabel("µs per example")
        ax.set_ylim(bottom=0)
        verdict, detail = batch_timing_verdict(powers_of_two(timing, label),
                                               timing.spread(label))
        ax.set_title(f"{label}: {verdict}\n{detail}")
        ax.legend(loc="upper right")
    fig.suptitle(batch_timing_title(timing))
    return fig


# ---------------------------------------------------------------- all of them


@dataclass(frozen=True)
class FigureSpec:
    number: int
    name: str
    file: str
    title: str
    caption: str


FIGURES = {spec.name: spec for spec in (
    FigureSpec(1, "minibatch-cost", "1_minibatch_cost.png", "Batch vs mini-batch cost",
               "Batch gradient descent lowers the cost J at every iteration; mini-batch "
               "gradient descent, on the same network and data, is noisy (each mini-batch is a "
               "different sample) but trends down, and takes many more steps per epoch."),
    FigureSpec(2, "paths", "2_batch_sgd_paths.png", "Batch, mini-batch and SGD paths",
               "Over the contours of a two-weight logistic regression: batch GD heads steadily "
               "to the minimum, SGD (mini-batch size 1) wanders and keeps wandering around it, "
               "mini-batch GD is in between."),
    FigureSpec(3, "ewa", "3_ewa_temperatures.png", "EWA of daily temperatures",
               "The exponentially weighted average of a year of Seattle's daily highs with "
               "β = 0.9, 0.98 and 0.5 averages over about 1/(1−β) = 10, 50 and 2 days: a larger "
               "β is smoother and lags behind the data."),
    FigureSpec(4, "bias-correction", "4_bias_correction.png", "Bias correction",
               "With β = 0.98 and v₀ = 0 the uncorrected average starts near 0 and needs weeks "
               "to reach the data; dividing by 1 − β^t makes it track the data from the first "
               "day."),
    FigureSpec(5, "oscillation", "5_oscillation.png", "Oscillation on an elongated bowl",
               "On the bowl J = 0.01·w₁² + w₂², GD with α near its stability limit (α < 2/λ_max "
               "= 1) zig-zags across the narrow direction at every step. Momentum with the same "
               "α and β = 0.9 averages the zig-zag into a slower, smaller swing (on a quadratic "
               "it is underdamped, so it still swings) and, with the same α, goes no faster "
               "along the valley: its gain there is the larger α it tolerates. RMSProp divides "
               "each direction's step by its root mean square and flattens the zig-zag at once; "
               "Adam, whose first moment is Momentum's, swings like it. Every number in the "
               "title is measured from these runs."),
    FigureSpec(6, "decay", "6_learning_rate_decay.png", "Learning-rate decay",
               "Near the minimum, mini-batch GD with constant α keeps circling it; the same run "
               "with α decaying per epoch takes smaller and smaller steps and settles in. Right: "
               "α per epoch of each schedule in gdlab.schedules."),
    FigureSpec(7, "powers-of-two", "7_powers_of_two.png", "Do powers of two run faster?",
               "The time per example of a training step (gdlab.fit, GD, one torch thread) "
               "against the mini-batch size, powers of two beside their neighbours ±1 and "
               "round sizes between, for gdlab's default MLP and a small CNN: medians of "
               "interleaved runs, measured on the machine that drew this figure. The title "
               "says what it measured there: whether a power of two ran faster than its "
               "neighbours by more than the run-to-run noise."),
    FigureSpec(8, "weight-decay", "8_weight_decay.png", "AdamW is not Adam with L2",
               "Adam with weight_decay=λ (L2: λ·W added to dW) and AdamW (decoupled: W shrinks "
               "by α·λ·W a step) on a bowl J = ½·Σ hᵢ·(Wᵢ − 1)² whose curvatures span six "
               "decades, from W = 0 with the same α and λ. L2's decay goes through Adam's "
               "division by √Ŝ + ε with the gradient, so Adam settles where hᵢ·(Wᵢ − 1) + λ·Wᵢ "
               "= 0, at hᵢ/(hᵢ + λ): the coordinates the loss barely holds are decayed to "
               "nothing, the steep ones not at all. AdamW shrinks every coordinate by the same "
               "fraction. The title's numbers are the runs' final weights."),
)}
ALIASES = {str(spec.number): name for name, spec in FIGURES.items()}


def figure_names(names) -> list[str]:
    """Figure names from names or numbers (``"1"``, ``"ewa"``); all of them when empty."""
    names = list(names or [])
    if not names:
        return list(FIGURES)
    out = []
    for name in names:
        key = ALIASES.get(str(name).strip(), str(name).strip().lower())
        if key not in FIGURES:
            raise ValueError(f"unknown figure {name!r}; allowed: "
                             + ", ".join(f"{s.number} {n}" for n, s in FIGURES.items()))
        if key not in out:
            out.append(key)
    return out


def build(names=None, *, seed: int = 0) -> tuple[dict[str, Figure], list[CostRun]]:
    """The figures by name (all of them by default) and figure 1's runs (for the report's
    smoothing explorer; empty unless figure 1 is built)."""
    names = figure_names(names)
    figs, runs = {}, []
    temps = None
    for name in names:
        if name == "minibatch-cost":
            runs = minibatch_cost_runs(seed=seed)
            figs[name] = minibatch_cost(runs)
        elif name == "paths":
            figs[name] = batch_sgd_paths(seed=seed)
        elif name in ("ewa", "bias-correction"):
            temps = temps or seattle_temperatures()
            figs[name] = (ewa_temperatures if name == "ewa" else bias_correction)(temps)
        elif name == "oscillation":
            figs[name] = oscillation()
        elif name == "decay":
            figs[name] = learning_rate_decay(seed=seed)
        elif name == "weight-decay":
            figs[name] = weight_decay_figure()
        else:
            figs[name] = batch_timing(batch_timing_data(seed=seed))
    return figs, runs


def png_bytes(fig: Figure, dpi: int = DPI, format: str = "png") -> bytes:
    """``fig`` rendered as a PNG file's bytes (or in another ``format`` matplotlib writes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=format, dpi=dpi)
    return buffer.getvalue()


def save_figure(fig: Figure, path, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``path`` atomically, in the format its suffix names (.png, .svg,
    .pdf, ...); ValueError if its folder does not exist."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: the folder {path.parent} does not exist")
    return atomic_write(path, png_bytes(fig, dpi, format=path.suffix[1:].lower() or "png"))


@styled
def schedule_figure(schedule, epochs, alphas) -> Figure:
    """α per epoch (``alphas`` at ``epochs``) of ``schedule``, a :class:`gdlab.schedules.Schedule`
    (its repr labels the line)."""
    fig = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(epochs, alphas, color=OKABE_ITO["blue"], linewidth=1.8, marker="o",
            markersize=3 if len(epochs) <= 100 else 0, label=repr(schedule))
    ax.set_xlabel("epoch_num")
    ax.set_ylabel("learning rate α")
    ax.set_ylim(0, max(alphas) * 1.08)
    ax.set_title(f"α per epoch: {type(schedule).__name__}, α₀ = {schedule.lr0:g}")
    ax.legend(loc="upper right")
    return fig


def read_column(path, column: str) -> tuple[list[float], list[str]]:
    """The numbers of ``column`` in the CSV file ``path`` with a header row (empty cells are
    NaN, gaps the EWA skips), and the header; the delimiter (",", ";" or tab) is the one the
    header uses most. ValueError says what is wrong with the file."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"no such file: {path}" if not file.exists() else
                         f"{path} is not a file")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a UTF-8 text (CSV) file") from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"{path} is empty: expected a header row and one row per point")
    header = [cell.strip() for cell in rows[0]]
    if column not in header:
        raise ValueError(f"unknown column {column!r} in {path}; columns: {', '.join(header)}")
    index = header.index(column)
    values = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        cell = row[index].strip() if index < len(row) else ""
        if cell == "":
            values.append(math.nan)
            continue
        try:
            values.append(float(cell))
        except ValueError:
            raise ValueError(f"column {column!r} of {path} is not numeric: line {number} "
                             f"has {cell[:40]!r}") from None
    if not any(math.isfinite(v) for v in values):
        raise ValueError(f"column {column!r} of {path} has no numbers")
    return values, header


def write_figures(out_dir, names=None, *, seed: int = 0, report: bool = True) -> dict:
    """Write the figures (all of them by default) as PNG files into ``out_dir`` and, with
    ``report``, ``report.html`` showing them with the smoothing explorer over figure 1's
    mini-batch costs, each file atomically. Returns {figure name: Figure}."""
    from ..report.html import write_figures_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs, runs = build(names, seed=seed)
    pictures = []
    for name, fig in figs.items():
        spec = FIGURES[name]
        png = png_bytes(fig)
        atomic_write(out / spec.file, png)
        pictures.append((spec.file, png, f"<b>Figure {spec.number}. {escape(spec.title)}.</b> "
                         + escape(spec.caption)))
    if report:
        write_figures_report(out, pictures, runs, title="gdlab figures — the lecture's "
                             "pictures, from real runs")
    return figs
