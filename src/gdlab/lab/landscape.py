"""Optimizers on two-parameter test functions: their paths over the contours, as a picture or
an animated GIF (``gdlab landscape``, and figure 5 of :mod:`gdlab.lab.figures`).

    elongated:   J(w₁, w₂) = 0.01·w₁² + w₂²                 (an elongated bowl, minimum (0, 0))
    rosenbrock:  J(w₁, w₂) = (1 - w₁)² + 100·(w₂ - w₁²)²     (a curved valley, minimum (1, 1))
    beale:       J(w₁, w₂) = (1.5 - w₁ + w₁w₂)² + (2.25 - w₁ + w₁w₂²)² + (2.625 - w₁ + w₁w₂³)²
                                                           (flat plateaus, minimum (3, 0.5))

Each function is written once with arithmetic operators, so the same code gives J of a
parameter tensor (for autograd and the optimizer) and J over a numpy grid (for the contours).
Every path is taken by gdlab's own optimizers on an ``nn.Parameter`` ``W = (w₁, w₂)``:

    zero_grad → J(W) → backward → step,   ``steps`` times from ``start``,

through :func:`gdlab.fit` (one mini-batch of no data per epoch, W recorded after each).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib import rc_context
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .._checks import check_choice, check_positive, check_positive_int
from ..optim import OPTIMIZERS
from ..report.style import RC, optimizer_color, optimizer_marker
from ..train import fit

NAMES = {"gd": "GD", "momentum": "Momentum", "rmsprop": "RMSProp", "adam": "Adam"}
#: a path is cut where |W| exceeds this (the optimizer diverged)
DIVERGED = 1e6


def elongated(w1, w2):
    """J = 0.01·w₁² + w₂²: curvature 0.02 along w₁, 2 along w₂ (condition number 100)."""
    return 0.01 * w1**2 + w2**2


def rosenbrock(w1, w2):
    """J = (1 - w₁)² + 100·(w₂ - w₁²)²"""
    return (1 - w1) ** 2 + 100 * (w2 - w1**2) ** 2


def beale(w1, w2):
    """J = (1.5 - w₁ + w₁w₂)² + (2.25 - w₁ + w₁w₂²)² + (2.625 - w₁ + w₁w₂³)²"""
    return ((1.5 - w1 + w1 * w2) ** 2 + (2.25 - w1 + w1 * w2**2) ** 2
            + (2.625 - w1 + w1 * w2**3) ** 2)


@dataclass(frozen=True)
class Landscape:
    """A test function with what it takes to show it: where paths start, the plotted window,
    the minimum, and α per optimizer that shows each one's character in ``steps`` steps."""

    name: str
    J: Callable
    formula: str
    minimum: tuple[float, float]
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    lr: dict = field(default_factory=dict)
    steps: int = 100
    log_levels: bool = False


LANDSCAPES = {
    "elongated": Landscape(
        "elongated", elongated, r"$J = 0.01\,w_1^2 + w_2^2$", (0.0, 0.0), (-9.0, 1.2),
        (-10.0, 1.5), (-1.5, 1.5),
        lr={"gd": 0.9, "momentum": 1.3, "rmsprop": 0.25, "adam": 0.25}, steps=50),
    "rosenbrock": Landscape(
        "rosenbrock", rosenbrock, r"$J = (1 - w_1)^2 + 100\,(w_2 - w_1^2)^2$", (1.0, 1.0),
        (-1.5, 2.0), (-2.0, 2.0), (-1.0, 3.0),
        lr={"gd": 0.0015, "momentum": 0.01, "rmsprop": 0.005, "adam": 0.1}, steps=500,
        log_levels=True),
    "beale": Landscape(
        "beale", beale, r"$J = \sum_i (c_i - w_1 + w_1 w_2^i)^2$", (3.0, 0.5), (1.0, 1.5),
        (-1.0, 4.5), (-1.5, 2.0),
        lr={"gd": 0.01, "momentum": 0.02, "rmsprop": 0.02, "adam": 0.05}, steps=300,
        log_levels=True),
}


def get_landscape(function) -> Landscape:
    """A :class:`Landscape` by name (``elongated``, ``rosenbrock``, ``beale``), or as given."""
    if isinstance(function, Landscape):
        return function
    name = str(function).strip().lower()
    if name not in LANDSCAPES:
        raise ValueError(f"unknown function {function!r}; allowed: {', '.join(LANDSCAPES)}")
    return LANDSCAPES[name]


def trajectory(function, optimizer: str, lr: float | None = None, steps: int | None = None,
               start=None, **hyper) -> np.ndarray:
    """The path of ``optimizer`` (gd, momentum, rmsprop or adam, with α = ``lr`` and other
    hyperparameters ``hyper``) over ``function`` from ``start``: an array of shape
    (steps + 1, 2), row k being W after k steps. A path that diverges ends where it does."""
    land = get_landscape(function)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    lr = check_positive("lr", land.lr.get(optimizer, 0.01) if lr is None else lr)
    steps = check_positive_int("steps", land.steps if steps is None else steps)
    start = land.start if start is None else tuple(float(s) for s in start)
    if len(start) != 2 or not all(math.isfinite(s) for s in start):
        raise ValueError(f"start must be two finite numbers w1,w2, got {start!r}")
    surface = _Surface(land.J, start)
    opt = OPTIMIZERS[optimizer]([surface.W], lr=lr, **hyper)
    path = [surface.point()]

    def record(run):  # W after each step; a diverged point ends the path
        point = surface.point()
        if not np.all(np.isfinite(point)) or np.abs(point).max() > DIVERGED:
            run.stop()
        else:
            path.append(point)

    descend(surface, opt, steps, record)
    return np.asarray(path)


def descend(cost_model, optimizer, steps: int, callback=None) -> None:
    """``steps`` steps of ``optimizer`` on the cost that ``cost_model``'s output is (a module
    whose forward returns J of its parameters, whatever its input): :func:`gdlab.fit` over one
    mini-batch of no data per epoch; ``callback(run)`` after each step (``run.stop()`` ends
    the descent)."""
    fit(cost_model, [_NO_DATA], optimizer, epochs=steps, loss=_cost,
        callbacks=[callback] if callback is not None else [], progress=False)


class _Surface(torch.nn.Module):
    """J(w₁, w₂) as a model of the one parameter W = (w₁, w₂): its output is J, whatever the
    (empty) input, so that ``fit`` takes one step per "epoch" of one empty mini-batch."""

    def __init__(self, J, start):
        super().__init__()
        self.J = J
        self.W = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))

    def forward(self, _):
        return self.J(self.W[0], self.W[1])

    def point(self) -> np.ndarray:
        return self.W.detach().numpy().copy()


_NO_DATA = (torch.empty(1, 0), torch.empty(1, 0))


def _cost(J, _):
    return J


def trajectories(function, optimizers=tuple(OPTIMIZERS), lr=None, steps=None,
                 start=None) -> dict[str, np.ndarray]:
    """{optimizer: path} for each optimizer, all from the same ``start``. ``lr`` is one α for
    all, a dict {optimizer: α}, or None for the landscape's own choice per optimizer."""
    land = get_landscape(function)
    paths = {}
    for name in optimizers:
        alpha = lr.get(name) if isinstance(lr, dict) else lr
        paths[name] = trajectory(land, name, alpha, steps, start)
    return paths


def curvatures(function, at=None) -> np.ndarray:
    """The eigenvalues λ of the Hessian of J at ``at`` (default: the minimum), smallest first:
    the curvature along each principal direction. On a quadratic GD is stable along a
    direction while α < 2/λ, so 2/λ_max bounds α (elongated: λ = 0.02 and 2, α < 1)."""
    land = get_landscape(function)
    point = torch.tensor(land.minimum if at is None else at, dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda W: land.J(W[0], W[1]), point)
    return torch.linalg.eigvalsh(H).numpy()


def gd_stability_limit(function, at=None) -> float:
    """2/λ_max: the largest α with which GD does not diverge near ``at`` (the minimum)."""
    return float(2 / curvatures(function, at)[-1])


@dataclass(frozen=True)
class Swing:
    """What a path on the elongated bowl shows, measured: ``amplitude`` = max |w₂ - w₂*| over
    steps k..N (how far it still swings across the valley after k steps), ``distance`` =
    w₁_N - w₁_0 (how far it went along the valley in N steps) and ``crossings``, the number of
    steps after which w₂ - w₂* has changed sign (it crossed the valley's floor)."""

    amplitude: float
    distance: float
    crossings: int
    k: int
    N: int


def swing(path: np.ndarray, k: int, minimum=(0.0, 0.0)) -> Swing:
    """The :class:`Swing` of ``path`` (rows W after 0..N steps) from step ``k`` on."""
    path = np.asarray(path, dtype=np.float64)
    N = len(path) - 1
    if path.ndim != 2 or path.shape[1] != 2 or not 0 <= k <= N:
        raise ValueError(f"path must have shape (N + 1, 2) with N >= k = {k}, got "
                         f"{path.shape}")
    across = path[:, 1] - minimum[1]
    return Swing(float(np.abs(across[k:]).max()), float(path[N, 0] - path[0, 0]),
                 int(np.sum(across[1:] * across[:-1] < 0)), k, N)


def _contours(ax, land: Landscape, resolution: int = 240) -> None:
    w1 = np.linspace(*land.xlim, resolution)
    w2 = np.linspace(*land.ylim, resolution)
    G1, G2 = np.meshgrid(w1, w2)
    Z = land.J(G1, G2)
    if land.log_levels:
        low = max(float(Z.min()), 1e-3)
        levels = np.logspace(math.log10(low), math.log10(float(Z.max())), 18)
        ax.contourf(G1, G2, Z, levels=levels, norm=LogNorm(), cmap="Greys_r", alpha=0.35)
        ax.contour(G1, G2, Z, levels=levels, norm=LogNorm(), colors="#888888",
                   linewidths=0.5)
    else:
        levels = float(Z.max()) * np.linspace(0.02, 1, 14) ** 2
        ax.contourf(G1, G2, Z, levels=np.concatenate([[0], levels]), cmap="Greys_r",
                    alpha=0.35)
        ax.contour(G1, G2, Z, levels=levels, colors="#888888", linewidths=0.5)
    ax.plot(*land.minimum, marker="*", markersize=12, color="black", linestyle="",
            label="minimum", zorder=5)
    ax.set_xlim(*land.xlim)
    ax.set_ylim(*land.ylim)
    ax.set_xlabel(r"$w_1$")
    ax.set_ylabel(r"$w_2$")
    ax.grid(False)


def _path_label(name: str, path: np.ndarray, lr, extra: str = "") -> str:
    label = NAMES.get(name, name)
    if lr is not None:
        label += f", α = {lr:g}"
    return label + extra


def draw_paths(ax, function, paths: dict, lrs: dict | None = None,
               extras: dict | None = None) -> None:
    """Contours of ``function`` on ``ax`` and each optimizer's path over them (one line per
    optimizer, labelled with its name and α and ``extras[name]`` (e.g. ", β = 0.9"), with a
    marker at every step)."""
    land = get_landscape(function)
    _contours(ax, land)
    lrs, extras = lrs or {}, extras or {}
    for name, path in paths.items():
        n = len(path)
        ax.plot(path[:, 0], path[:, 1], color=optimizer_color(name), linewidth=1.4,
                marker=optimizer_marker(name), markersize=2.5 if n > 60 else 3.5,
                markevery=max(1, n // 60),
                label=_path_label(name, path, lrs.get(name), extras.get(name, "")), zorder=3)
    if paths:
        start = next(iter(paths.values()))[0]
        ax.plot(start[0], start[1], marker="o", markersize=6, color="black", linestyle="",
                label="start", zorder=4)


def landscape_figure(function, paths: dict | None = None, lrs: dict | None = None,
                     *, title: str | None = None) -> Figure:
    """One panel: the contours of ``function`` and the paths (default: every optimizer with
    the landscape's own α and steps)."""
    land = get_landscape(function)
    if paths is None:
        paths = trajectories(land)
        lrs = {name: land.lr[name] for name in paths}
    with rc_context(RC):
        fig = Figure(figsize=(7.0, 4.8), layout="constrained")
        ax = fig.add_subplot()
        draw_paths(ax, land, paths, lrs)
        steps = max(len(p) - 1 for p in paths.values())
        ax.set_title(title or f"{land.name}: {land.formula}, {steps} steps")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def save_gif(function, paths: dict, path, lrs: dict | None = None, *, fps: int = 12,
             max_frames: int = 60, dpi: int = 72) -> Path:
    """The paths drawn step by step into an animated GIF at ``path``, written atomically (at
    most ``max_frames`` frames; the last frame shows every path whole). Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    from .._files import atomic_write

    land = get_landscape(function)
    fig = landscape_figure(land, paths, lrs)
    FigureCanvasAgg(fig)
    ax = fig.axes[0]
    lines = [line for line in ax.lines if line.get_label() in
             {_path_label(name, p, (lrs or {}).get(name)) for name, p in paths.items()}]
    full = list(paths.values())
    n = max(len(p) for p in full)
    frames = np.unique(np.linspace(1, n, min(max_frames, n)).round().astype(int))

    def update(k):
        for line, p in zip(lines, full, strict=True):
            line.set_data(p[:k, 0], p[:k, 1])
        ax.set_title(f"{land.name}: {land.formula}, step {k - 1}")
        return lines

    fig.set_dpi(dpi)
    canvas = fig.canvas
    images = []
    for k in frames:
        update(k)
        canvas.draw()
        images.append(Image.fromarray(np.asarray(canvas.buffer_rgba())).convert(
            "P", palette=Image.Palette.ADAPTIVE))
    gif = io.BytesIO()
    images[0].save(gif, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000 / fps), loop=0)
    return atomic_write(path, gif.getvalue())
