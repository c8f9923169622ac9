"""``gdlab compare``: the same network, initialization and mini-batch order trained with each
optimizer, with and without learning-rate decay — on gdlab's built-in data with its MLP, or on
any ``nn.Module`` and data (tensors, a Dataset or a DataLoader); over several seeds."""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._checks import check_choice, check_positive, check_positive_int
from ..data.batches import train_and_val
from ..data.datasets import Dataset, load_data
from ..models import (
    DTYPES,
    accuracy,
    built_model,
    check_layers,
    default_layers,
    initial_model,
)
from ..optim import OPTIMIZERS
from ..schedules import constant, parse_schedule
from ..train import Fit, fit
from ..train.callbacks.progress import ProgressBar
from .runs import RunResult

#: α each optimizer starts from unless --lr is given (its customary scale on small networks)
DEFAULT_LR = {"gd": 0.1, "momentum": 0.1, "rmsprop": 0.005, "adam": 0.005}


def default_decay(epochs: int) -> str:
    """The decay each optimizer is also run with (the assignment's interval form), halving α
    at half the epochs: α = α₀/(1 + ⌊epoch_num/(epochs/2)⌋) — 50 for 100 epochs."""
    return f"inverse_time:decay_rate=1,time_interval={max(1, epochs // 2)}"


def make_optimizer(name: str, params, lr: float, flat: bool = True):
    check_choice("optimizer", name, OPTIMIZERS)
    return OPTIMIZERS[name](params, lr=lr, flat=flat)


@dataclass
class Setup:
    """What every run of a comparison shares: the initial model (copied for each run), the
    training data and the validation data (None: none), as ``fit`` takes them, the cost
    (None: inferred) and the mini-batch size where the data fixes it (a DataLoader's)."""

    initial: nn.Module
    train: tuple
    val: object | None
    loss: object | None
    batch_size: int | None = None


def _run_label(optimizer: str, schedule_text: str | None) -> str:
    return optimizer if schedule_text is None else f"{optimizer} + {schedule_text.split(':')[0]}"


def train_run(setup: Setup, optimizer: str, lr: float, schedule_text: str | None, *,
              epochs: int, batch_size: int, seed: int, callbacks=(), dataset=None) -> RunResult:
    """One run from a copy of ``setup.initial``: same weights and buffers, same mini-batch
    order and the same draws from torch's RNG (``seed``). ``dataset``: gdlab's own data, whose
    train and test accuracy it gets."""
    model = copy.deepcopy(setup.initial)
    schedule = parse_schedule(schedule_text, lr) if schedule_text else constant(lr)
    # made before the clock starts: torch's first optimizer of a process imports torch._dynamo
    # (seconds), which is not the run's time
    optim = make_optimizer(optimizer, model.parameters(), lr)
    torch.manual_seed(seed)  # the same dropout masks (any draw from torch's RNG) in every run
    start = time.perf_counter()
    run = Fit(model, *setup.train, optim, epochs=epochs,
              batch_size=setup.batch_size or batch_size, schedule=schedule, seed=seed,
              progress=False, callbacks=callbacks, loss=setup.loss, val=setup.val)
    history = run.run()
    seconds = time.perf_counter() - start
    schedule_label = "constant" if schedule_text is None else schedule_text
    if dataset is not None:
        train_acc = accuracy(model, dataset.X_train, dataset.Y_train, dataset.task)
        test_acc = accuracy(model, dataset.X_test, dataset.Y_test, dataset.task)
    else:
        train_acc, test_acc = None, (history.metrics.get("val_accuracy") or [None])[-1]
    return RunResult(optimizer=optimizer, schedule=schedule_label,
                     label=_run_label(optimizer, schedule_text), history=history, model=model,
                     seconds=seconds, train_accuracy=train_acc, test_accuracy=test_acc,
                     config={"optimizer": optimizer, "lr": lr, "schedule": schedule_label,
                             "epochs": epochs, "batch_size": batch_size, "seed": seed,
                             "m": run.m})


def _warm_up(setup: Setup, optimizers, batch_size: int) -> None:
    """One untimed step of each optimizer on a copy of the model and the first rows: the
    process's one-off costs (imports, kernels made on first use, the allocator's first
    requests) fall here, not into the first timed run."""
    X, Y = (setup.train if len(setup.train) == 2 else (None, None))
    if not isinstance(X, torch.Tensor):
        return
    rows = min(batch_size, X.shape[0])
    for name in optimizers:
        model = copy.deepcopy(setup.initial)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit(model, X[:rows], Y[:rows], make_optimizer(name, model.parameters(), 1e-12),
                epochs=1, batch_size=rows, seed=0, progress=False, loss=setup.loss)


def own_setup(model, data, seed: int, loss) -> Setup:
    """The initial model (a factory is called under ``torch.manual_seed(seed)``) and the data
    as ``fit`` takes it (:func:`gdlab.data.batches.train_and_val`)."""
    train, val, batch_size = train_and_val(data)
    return Setup(built_model(model, seed), train, val, loss, batch_size)


@dataclass
class Comparison:
    """The runs of :func:`compare` (each optimizer, with and without decay, for each seed)."""

    runs: list[RunResult]
    seeds: list[int]
    lrs: dict | None = None  # α of each optimizer

    def groups(self) -> dict[str, list[RunResult]]:
        """The runs by label ("adam", "adam + inverse_time", ...), one per seed."""
        out: dict[str, list[RunResult]] = {}
        for run in self.runs:
            out.setdefault(run.label, []).append(run)
        return out

    def target_cost(self) -> float:
        """The cost every run reaches: the highest final epoch cost of all (time to it is
        comparable across runs, as AlgoPerf ranks by time to a target)."""
        finals = [r.final_cost for r in self.runs if np.isfinite(r.final_cost)]
        return max(finals) if finals else float("nan")

    def summary(self) -> list[dict]:
        """Per label, the median and the range over seeds of each figure, best first (by
        validation cost where there is one, else by final training cost)."""
        target, rows = self.target_cost(), []
        for label, runs in self.groups().items():
            figures = {"final cost": [r.final_cost for r in runs],
                       "val cost": [_last(r.history.metrics.get("val_cost")) for r in runs],
                       "accuracy": [r.test_accuracy for r in runs],
                       "seconds": [r.seconds for r in runs],
                       "steps to target": [_steps_to(r.history, target) for r in runs]}
            rows.append({"label": label, **{k: _spread(v) for k, v in figures.items()}})
        key = "val cost" if all(r["val cost"] is not None for r in rows) else "final cost"
        rows.sort(key=lambda r: _sort_key(r[key]))
        for i, row in enumerate(rows):
            row["ranked by"] = key
            row["overlaps next"] = i + 1 < len(rows) and _overlap(row[key], rows[i + 1][key])
        return rows

    def table(self) -> str:
        """A text table, best first: median and [min–max] over seeds where there are several,
        and a mark where a run's range overlaps the next one's (the order is not settled)."""
        rows = self.summary()
        head = ["run", "final cost", "val cost", "accuracy", "time (s)", "steps to target"]
        cells = [head] + [[r["label"], _show(r["final cost"], ".4g"), _show(r["val cost"], ".4g"),
                           _show(r["accuracy"], ".1%"), _show(r["seconds"], ".2f"),
                           _show(r["steps to target"], ".0f")] for r in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                 for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = [f"ranked by {rows[0]['ranked by']}" + (
            f", median over {len(self.seeds)} seeds [min–max]" if len(self.seeds) > 1 else "")
            + f"; steps to target: mini-batches until the epoch cost ≤ {self.target_cost():.4g}"]
        if len(self.seeds) > 1:
            notes += [f"{a['label']} and {b['label']}: their ranges overlap, the order may be "
                      f"luck" for a, b in zip(rows, rows[1:]) if a["overlaps next"]]
        return "\n".join(lines + notes)

    def plot(self):
        """Epoch cost per run label against the epoch: the median over seeds, with the range as
        a band (a matplotlib Figure, e.g. for a notebook)."""
        from matplotlib.figure import Figure

        from ..report.style import run_style, styled

        @styled
        def draw():
            fig = Figure(figsize=(7.5, 4.2), layout="constrained")
            ax = fig.subplots()
            for label, runs in self.groups().items():
                curves = np.array([r.history.epoch_costs for r in runs], dtype=float)
                epochs = np.arange(1, curves.shape[1] + 1)
                style = run_style(runs[0])
                ax.plot(epochs, np.median(curves, 0), label=label, **style)
                if len(runs) > 1:
                    ax.fill_between(epochs, curves.min(0), curves.max(0), alpha=0.15,
                                    color=style.get("color"))
            ax.set(xlabel="epoch", ylabel="cost J", yscale="log")
            ax.legend(fontsize="small")
            return fig

        return draw()

    def write_report(self, folder, dataset=None, *, title: str = "gdlab compare",
                     config=None):
        """The report of ``gdlab compare`` (report.html, figures, CSVs) in ``folder``."""
        from ..report import write_report

        return write_report(folder, self.runs, dataset if dataset is not None else
                            data_summary(self.runs), title=title, config=config)


def _last(values):
    return values[-1] if values else None


def _steps_to(history, target: float):
    """Mini-batches taken until the first epoch whose cost J ≤ ``target`` (None: never)."""
    per_epoch = len(history.costs) / max(len(history.epoch_costs), 1)
    for k, cost in enumerate(history.epoch_costs):
        if cost <= target:
            return (k + 1) * per_epoch
    return None


def _spread(values):
    """(median, min, max) of the values that exist, or None."""
    values = [float(v) for v in values if v is not None]
    return (statistics.median(values), min(values), max(values)) if values else None


def _sort_key(spread):
    return spread[0] if spread is not None and np.isfinite(spread[0]) else float("inf")


def _overlap(a, b) -> bool:
    return a is not None and b is not None and a[1] <= b[2] and b[1] <= a[2]


def _show(spread, spec: str) -> str:
    if spread is None:
        return "—"
    median, low, high = spread
    text = format(median, spec)
    return text if low == high else f"{text} [{format(low, spec)}–{format(high, spec)}]"


def data_summary(runs):
    """What the report says of data that is not one of gdlab's datasets (a
    :class:`~gdlab.data.datasets.Dataset` of the task the runs' cost implies, without rows)."""
    history = runs[0].history
    task = {"cross_entropy": "multiclass", "binary_cross_entropy": "binary",
            "CrossEntropyLoss": "multiclass", "BCEWithLogitsLoss": "binary"}.get(
        history.loss, "regression" if history.loss == "squared_error" else "other")
    rows = np.empty((runs[0].config.get("m") or 0, 0))
    return Dataset(name="your data", X_train=rows, Y_train=rows, X_test=np.empty((0, 0)),
                   Y_test=np.empty(0), task=task, n_outputs=0,
                   feature_names=[f"cost: {history.loss}"])


def compare(model=None, data="moons", *, layers=None, optimizers=tuple(OPTIMIZERS), lr=None,
            epochs: int = 100, batch_size: int = 64, decay: str | None = "default",
            seed: int = 0, seeds: int = 1, loss=None, dtype: str = "float32",
            progress: bool = False) -> Comparison:
    """Train every optimizer with constant α and (unless ``decay`` is None) with ``decay``,
    each from the same initial weights and in the same mini-batch order, for ``seeds`` seeds
    (``seed``, ``seed`` + 1, ...): a :class:`Comparison`.

    ``model``: an ``nn.Module`` (every run starts from a copy of its exact state, buffers
    included), a function returning one (called once per seed under that seed), or None: a
    gdlab MLP (``layers``, default [n_x, 16, 8, n_y]) for gdlab's own ``data`` — a built-in
    set's name, a CSV/NPZ path or a :class:`gdlab.data.datasets.Dataset`. Other ``data``:
    (X, Y); ((X, Y), (X_val, Y_val)); a Dataset or DataLoader; or (train, val) of those.
    ``decay``: a schedule's text, "default" (:func:`default_decay`) or None (constant α only).
    ``lr``: one α for all, None for each optimizer's ``DEFAULT_LR``, or "auto": each
    optimizer's α suggested by :func:`gdlab.lab.lr_find.lr_find` from the first seed's start
    (``Comparison.lrs`` says which). ``loss``: the cost (None: inferred). ``progress`` shows
    one bar over all runs' epochs.
    """
    for name in optimizers:
        check_choice("optimizer", name, OPTIMIZERS)
    if lr is not None and lr != "auto":
        check_positive("lr", lr)
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    check_positive_int("seeds", seeds)
    check_choice("dtype", dtype, DTYPES)
    if decay == "default":
        decay = default_decay(epochs)
    if decay is not None:
        parse_schedule(decay, 1.0)  # fail before any training if the schedule is malformed
    own = model is not None
    dataset = None if own else (data if isinstance(data, Dataset) else load_data(data,
                                                                                  seed=seed))
    if not own:
        layers = check_layers(layers, dataset) if layers is not None else default_layers(dataset)
        batch_size = min(batch_size, len(dataset.X_train))
    schedules = (None,) if decay is None else (None, decay)
    plan = [(name, schedule) for name in dict.fromkeys(optimizers) for schedule in schedules]
    bar = ProgressBar(len(plan) * epochs * seeds) if progress else None
    runs, lrs = [], None
    for s in range(seed, seed + seeds):
        setup = own_setup(model, data, s, loss) if own else Setup(
            initial_model(dataset, layers, s, DTYPES[dtype]),
            (torch.as_tensor(dataset.X_train, dtype=DTYPES[dtype]),
             torch.as_tensor(dataset.Y_train)), None, None)
        if lrs is None:
            lrs = _learning_rates(lr, setup, dict.fromkeys(optimizers), batch_size, seed)
        _warm_up(setup, dict.fromkeys(optimizers), batch_size)
        for name, schedule in plan:
            if bar is not None:
                bar.describe(name if schedule is None else f"{name} + decay")
            runs.append(train_run(setup, name, lrs[name], schedule,
                                  epochs=epochs, batch_size=batch_size, seed=s,
                                  callbacks=() if bar is None else (bar,), dataset=dataset))
    if bar is not None:
        bar.close()
    return Comparison(runs, list(range(seed, seed + seeds)), lrs)


def _learning_rates(lr, setup: Setup, optimizers, batch_size: int, seed: int) -> dict:
    """α of each optimizer: ``lr`` for all, DEFAULT_LR's, or "auto": lr_find's suggestion."""
    if lr is None:
        return {name: DEFAULT_LR[name] for name in optimizers}
    if lr != "auto":
        return {name: lr for name in optimizers}
    from .lr_find import lr_find

    found = {}
    for name in optimizers:
        suggestion = lr_find(setup.initial, setup.train if len(setup.train) == 2 else
                             setup.train[0], name, loss=setup.loss,
                             batch_size=setup.batch_size or batch_size, seed=seed).suggestion
        found[name] = suggestion if suggestion is not None else DEFAULT_LR[name]
    return found

