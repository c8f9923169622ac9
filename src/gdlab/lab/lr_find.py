"""The learning-rate finder: train briefly while α grows exponentially, watch the cost, and
suggest the α where it falls fastest — over several seeds, so that one noisy run does not decide.

    α_k = min_lr·(max_lr/min_lr)^{k/(steps-1)},   k = 0 .. steps-1   (one mini-batch each)
    Ĵ_k = bias-corrected EWA of J^{t} with β (0.98)                   (gdlab.ewa)
    stop once Ĵ_k > factor·min_{j≤k} Ĵ_j (diverged; factor 4) or Ĵ_k is not finite
    suggestion of a seed = α_k at the most negative slope dĴ/d(log α), between step 10 (the
                           first Ĵ's rest on a few mini-batches) and Ĵ's minimum

Each seed starts from a copy of the model's exact state (buffers included) and sees its own
mini-batch order (and dropout draws); the model passed in, and torch's RNG, are left as they
were. The result holds the curves, their median and band across seeds, the suggestion (median
over seeds) and its spread (lowest and highest seed's), and draws ``lr_find.png``.
"""

from __future__ import annotations

import copy
import io
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from .._checks import check_beta, check_positive, check_positive_int
from .._files import atomic_write
from ..data.batches import minibatches
from ..ewa import EWA, ewa
from ..optim import OPTIMIZERS
from ..report.style import DPI, OKABE_ITO, lighten, optimizer_color, styled
from ..train import fit


def lr_find(model, data, optimizer="adam", *, loss=None, min_lr: float = 1e-7,
            max_lr: float = 10.0, steps: int = 100, seeds: int = 3, beta: float = 0.98,
            batch_size: int = 64, factor: float = 4.0, seed: int = 0) -> LRFind:
    """Run the exponential α ramp from ``min_lr`` to ``max_lr`` over ``steps`` mini-batches
    of ``batch_size``, once per seed (``seeds`` of them: seed, seed+1, ...), on a copy of
    ``model`` trained by :func:`gdlab.fit`; returns an :class:`LRFind`.

    ``data``: tensors ``(X, Y)``, a map-style Dataset (both shuffled by gdlab, seeded) or a
    DataLoader (its own batches and order: with ``shuffle=True`` each seed draws another), or
    ``((X, Y), val)`` as an example's ``make_data()`` returns it (the training part is used).
    ``optimizer``: a name (gd, momentum, rmsprop, adam) or a factory called as
    ``optimizer(params, lr=α)`` — a class such as ``gdlab.Adam`` or ``torch.optim.SGD``, or
    ``functools.partial(gdlab.Momentum, beta=0.8)``. ``loss`` as for :func:`gdlab.fit`.
    """
    min_lr, max_lr = check_positive("min_lr", min_lr), check_positive("max_lr", max_lr)
    if min_lr >= max_lr:
        raise ValueError(f"min_lr must be below max_lr, got min_lr={min_lr!r} and "
                         f"max_lr={max_lr!r}")
    steps = check_positive_int("steps", steps)
    if steps < 2:
        raise ValueError(f"steps must be an integer >= 2 (a ramp has two ends), got {steps!r}")
    seeds, batch_size = check_positive_int("seeds", seeds), check_positive_int(
        "batch_size", batch_size)
    beta, factor = check_beta("beta", beta), check_positive("factor", factor)
    if factor <= 1:
        raise ValueError(f"factor must be a number > 1 (the rise over the minimum that counts "
                         f"as divergence), got {factor!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    name, make_optimizer = _optimizer_factory(optimizer)
    lrs = np.geomspace(min_lr, max_lr, steps)
    ramp = _Ramp(lrs)
    costs, steps_run = np.full((seeds, steps), np.nan), []
    devices = sorted({p.device.index for p in model.parameters() if p.device.type == "cuda"})
    for i, run_seed in enumerate(range(seed, seed + seeds)):
        with torch.random.fork_rng(devices=devices):  # the caller's RNG state is kept
            torch.manual_seed(run_seed)
            start = copy.deepcopy(model)
            watch = _Watch(beta, factor)
            history = fit(start, _OneBatchPerEpoch(data, batch_size, run_seed),
                          make_optimizer(start.parameters(), lr=min_lr), epochs=steps,
                          loss=loss, schedule=ramp, callbacks=[watch], progress=False)
        costs[i, :len(history.costs)] = history.costs
        steps_run.append(len(history.costs))
    return LRFind(lrs=lrs, costs=costs, steps_run=steps_run,
                  seeds=list(range(seed, seed + seeds)), beta=beta, optimizer=name)


@dataclass
class LRFind:
    """What :func:`lr_find` found.

    lrs:          α_k of the ramp, shape (steps,)
    costs:        J^{t} of each seed's run at each α_k, shape (seeds, steps); NaN after a
                  run stopped (diverged)
    steps_run:    how many α's each seed's run took before it stopped
    curves:       the same smoothed: Ĵ_k, the bias-corrected EWA with ``beta``
    suggestions:  each seed's α at the steepest fall of its Ĵ (:func:`steepest_fall`; NaN
                  where Ĵ did not fall)
    suggestion:   their median (over log α; None if no seed's cost fell); ``spread``: the
                  lowest and highest of them
    """

    lrs: np.ndarray
    costs: np.ndarray
    steps_run: list
    seeds: list
    beta: float
    optimizer: str

    @property
    def curves(self) -> np.ndarray:
        return np.stack([ewa(row, self.beta, bias_correction=True) for row in self.costs])

    @property
    def suggestions(self) -> np.ndarray:
        return np.array([steepest_fall(self.lrs, curve) for curve in self.curves])

    @property
    def suggestion(self) -> float | None:
        found = self.suggestions[np.isfinite(self.suggestions)]
        return float(np.exp(np.median(np.log(found)))) if found.size else None

    @property
    def spread(self) -> tuple[float, float] | None:
        found = self.suggestions[np.isfinite(self.suggestions)]
        return (float(found.min()), float(found.max())) if found.size else None

    def _columns(self):
        """The steps that at least one run reached, and the curves there."""
        reached = np.isfinite(self.curves).any(axis=0)
        return self.lrs[reached], self.curves[:, reached]

    @property
    def median(self) -> np.ndarray:
        """The median over the seeds still running at each α_k (up to the last step any
        reached)."""
        return np.nanmedian(self._columns()[1], axis=0)

    @property
    def band(self) -> tuple[np.ndarray, np.ndarray]:
        """The lowest and highest Ĵ_k over the seeds still running at each α_k."""
        curves = self._columns()[1]
        return np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)

    def summary(self, sep: str = " ") -> str:
        """The suggested α and its spread over the seeds, in one line (two with sep="\\n")."""
        if self.suggestion is None:
            return (f"lr_find ({self.optimizer}): the cost did not fall on any of "
                    f"{len(self.seeds)} seeds;{sep}widen the range (max_lr) or take more steps")
        low, high = self.spread
        return (f"lr_find ({self.optimizer}): suggested α = {self.suggestion:.3g}{sep}(median of "
                f"{len(self.seeds)} seeds; from {low:.3g} to {high:.3g})")

    @styled
    def figure(self) -> Figure:
        """Ĵ against α (log scale): the median over the seeds with their min–max band, and the
        suggested α with its spread."""
        lrs, _ = self._columns()
        low, high = self.band
        color = optimizer_color(self.optimizer)
        fig = Figure(figsize=(6.4, 4.0), layout="constrained")
        ax = fig.add_subplot()
        ax.fill_between(lrs, low, high, color=lighten(color, 0.7), linewidth=0,
                        label=f"min–max of {len(self.seeds)} seeds")
        ax.plot(lrs, self.median, color=color, linewidth=1.6, label="median")
        if self.suggestion is not None:
            ax.axvspan(*self.spread, color=OKABE_ITO["black"], alpha=0.08, linewidth=0,
                       label="the seeds' suggestions")
            ax.axvline(self.suggestion, color=OKABE_ITO["black"], linestyle="--",
                       linewidth=1.0, label=f"suggested α = {self.suggestion:.2g}")
        lowest = int(np.nanargmin(self.median))
        bottom, top = np.nanmin(low), np.nanmax(high[:lowest + 1])
        if top > bottom:  # the fall in full; a divergence's climb beyond it is cut off
            ax.set_ylim(bottom - 0.05 * (top - bottom), top + 0.3 * (top - bottom))
        ax.set_xscale("log")
        ax.set_xlabel("learning rate α")
        ax.set_ylabel(f"cost J, EWA β = {self.beta:g} (bias-corrected)")
        ax.set_title(self.summary("\n"))
        ax.legend(loc="upper left")
        return fig

    def save(self, folder) -> Path:
        """Write the figure to ``folder/lr_find.png`` (the folder is created); returns its
        path."""
        path = Path(folder) / "lr_find.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        self.figure().savefig(buffer, format="png", dpi=DPI)
        return atomic_write(path, buffer.getvalue(), durable=False)


#: the first steps, whose Ĵ rests on a few mini-batches, left out of the search for the steepest
#: fall (pytorch-lr-finder's skip_start): there a single mini-batch moves Ĵ as much as a fall
SKIP_START = 10


def steepest_fall(lrs, curve) -> float:
    """α_k at the most negative slope dĴ/d(log α) of ``curve`` (finite differences), among
    the steps from ``SKIP_START`` to Ĵ's minimum (past it, Ĵ diverges); NaN where Ĵ is
    lowest before that (it did not fall)."""
    if not np.isfinite(curve).any():
        return math.nan
    lowest = int(np.nanargmin(curve))
    if lowest <= SKIP_START:
        return math.nan
    slopes = np.gradient(curve[:lowest + 1], np.log(lrs[:lowest + 1]))
    return float(lrs[SKIP_START + int(np.argmin(slopes[SKIP_START:]))])


class _Ramp:
    """Per-step schedule: α of mini-batch t is α_{t-1} of the ramp."""

    per_step = True

    def __init__(self, lrs):
        self.lrs = lrs

    def __call__(self, epoch_num, t):
        return float(self.lrs[t - 1])


class _Watch:
    """Callback: stops the run once Ĵ (bias-corrected EWA with β) exceeds ``factor`` × its
    minimum so far, or is not finite."""

    def __init__(self, beta, factor):
        self.smoothed, self.factor, self.lowest = EWA(beta, bias_correction=True), factor, math.inf

    def on_epoch_end(self, run):
        J_hat = self.smoothed.update(run.history.costs[-1])
        self.lowest = min(self.lowest, J_hat)
        if not math.isfinite(J_hat) or J_hat > self.factor * self.lowest:
            run.stop()


class _OneBatchPerEpoch:
    """``data`` as an endless stream of mini-batches in a seeded order, handed to
    :func:`gdlab.fit` one per epoch: fit's epoch k is the ramp's step k."""

    def __init__(self, data, batch_size, seed):
        self.batch_size = getattr(data, "batch_size", None) or batch_size  # (a DataLoader's)
        self.batches = _endless(_passes(data, batch_size, seed))

    def __iter__(self):
        yield next(self.batches)


def _endless(passes):
    """The mini-batches of one pass after another; a ValueError for a pass without any."""
    for batches in passes:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ValueError("the data yielded no mini-batch")


def _passes(data, batch_size, seed):
    """Epochs over ``data`` without end, each in its own order (seeded where gdlab orders)."""
    from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

    if _is_train_val(data):
        data = data[0]
    generator = torch.Generator().manual_seed(seed)
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        data = data.tensors
    if isinstance(data, tuple | list) and len(data) == 2:
        X, Y = data
        return (minibatches(X, Y, batch_size, order=torch.randperm(len(X), generator=generator))
                for _ in itertools.count())
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset) \
            and hasattr(data, "__len__"):
        data = DataLoader(data, batch_size, shuffle=True, generator=generator)
    elif isinstance(data, torch.Tensor | np.ndarray | str) or not hasattr(data, "__iter__"):
        raise ValueError(f"data must be tensors (X, Y), a Dataset or a DataLoader, got "
                         f"{type(data).__name__}")
    return itertools.repeat(data)


def _is_train_val(data) -> bool:
    """Whether ``data`` is ``((X, Y), val)``, as an example's ``make_data()`` returns it."""
    return (isinstance(data, tuple | list) and len(data) == 2
            and isinstance(data[0], tuple | list) and len(data[0]) == 2)


def _optimizer_factory(optimizer):
    """(name for the figure, ``factory(params, lr=α) -> Optimizer``)."""
    if isinstance(optimizer, str):
        key = optimizer.strip().lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} or a factory "
                             f"such as gdlab.Adam, got {optimizer!r}")
        return key, OPTIMIZERS[key]
    if isinstance(optimizer, torch.optim.Optimizer) or not callable(optimizer):
        raise ValueError(f"optimizer must be a name ({', '.join(OPTIMIZERS)}) or a factory "
                         f"called as optimizer(params, lr=α), such as gdlab.Adam; got "
                         f"{type(optimizer).__name__} (lr_find builds one per seed)")
    name = getattr(optimizer, "__name__", None) or getattr(
        getattr(optimizer, "func", None), "__name__", type(optimizer).__name__)
    return name.lower(), optimizer
