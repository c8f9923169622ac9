"""The deep-learning course's "Optimization Methods" assignment, reproduced on gdlab's own code.

The experiment, exactly as the assignment runs it (only the layout differs: rows are examples
here, columns there):

- data: ``numpy.random.seed(3)``, then ``make_moons(n_samples=300, noise=0.2)``: X (300, 2),
  Y (300, 1);
- network [2, 5, 2, 1], LINEAR→ReLU→LINEAR→ReLU→LINEAR→sigmoid, He init drawn with numpy
  after ``numpy.random.seed(3)``: W^[l] = randn(n_l, n_{l-1})·√(2/n_{l-1}), b^[l] = 0;
- cost: cross-entropy; each step follows the gradient of its mini-batch's mean cost; the epoch
  cost is Σ_t m_t·J^{t} / m;
- mini-batches of 64 (the last holds 44); epoch i (from 0) shuffles with
  ``numpy.random.seed(11 + i)``, ``numpy.random.permutation(300)``;
- α = 0.0007, β = β₁ = 0.9, β₂ = 0.999, ε = 1e-8, 5000 epochs, float64;
- decay (α₀ = 0.1 for gd and momentum, 0.01 for rmsprop and adam, decay_rate = 1):
  ``update_lr``: α = α₀/(1 + decay_rate·i), ``schedule_lr_decay``:
  α = α₀/(1 + decay_rate·⌊i/1000⌋), computed *after* epoch i and used from epoch i+1 on.

RMSProp is not in the assignment; it is run as the lecture writes it (no bias correction) with
β₂ = 0.999 and ε = 1e-8 as in Adam, α = 0.0007 and α₀ = 0.01 like Adam, so that it differs
from Adam only by Adam's momentum and bias correction.

Training uses :func:`gdlab.fit`, :class:`gdlab.MLP`, gdlab's optimizers and
:func:`gdlab.schedules.inverse_time`; only the data layout and the random draws follow numpy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import cache

import numpy as np
import torch

from .._checks import check_choice, check_positive_int
from ..models import MLP, accuracy
from ..optim import GD, OPTIMIZERS, Adam, Momentum, RMSProp
from ..schedules import inverse_time
from ..train import fit

DECAYS = (None, "update_lr", "schedule_lr_decay")

LAYER_DIMS = (2, 5, 2, 1)
M = 300
MINI_BATCH_SIZE = 64
LEARNING_RATE = 0.0007
BETA = 0.9
BETA1 = 0.9
BETA2 = 0.999
EPSILON = 1e-8
EPOCHS = 5000
PRINT_EVERY = 1000
DATA_SEED = 3
INIT_SEED = 3
BATCH_SEED = 10
DECAY_RATE = 1
#: α₀ of the decay runs
LR0 = {"gd": 0.1, "momentum": 0.1, "rmsprop": 0.01, "adam": 0.01}
#: time_interval of each decay: update_lr decays every epoch, schedule_lr_decay every 1000
TIME_INTERVAL = {"update_lr": 1, "schedule_lr_decay": 1000}


def course_data() -> tuple[np.ndarray, np.ndarray]:
    """The assignment's training set: X of shape (300, 2), Y of shape (300, 1), float64.

    Drawn as ``numpy.random.seed(3); make_moons(n_samples=300, noise=0.2)`` draws it, from a
    private ``RandomState(3)`` (the same stream), so numpy's global generator is left alone.
    """
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=M, noise=0.2, random_state=np.random.RandomState(DATA_SEED))
    return X.astype(np.float64), y.reshape(-1, 1).astype(np.float64)


def course_model() -> MLP:
    """MLP [2, 5, 2, 1] in float64 with the assignment's He init: after
    ``numpy.random.seed(3)``, W^[l] = randn(n_l, n_{l-1})·√(2/n_{l-1}) for l = 1..L, b^[l] = 0."""
    model = MLP(list(LAYER_DIMS), hidden="relu", output="sigmoid", init="he").double()
    rng = np.random.RandomState(INIT_SEED)
    with torch.no_grad():
        for linear, (n_prev, n) in zip(model.linears, zip(LAYER_DIMS, LAYER_DIMS[1:]),
                                       strict=True):
            W = rng.randn(n, n_prev) * np.sqrt(2 / n_prev)
            linear.weight.copy_(torch.from_numpy(W))
            linear.bias.zero_()
    return model


def course_batch_order(epoch_num: int) -> torch.Tensor:
    """The permutation of epoch ``epoch_num`` (counted from 1, as :func:`gdlab.fit` does): the
    assignment's ``seed = 10; seed += 1`` each epoch, ``numpy.random.seed(seed)``,
    ``numpy.random.permutation(m)``, i.e. ``RandomState(10 + epoch_num).permutation(m)``.
    Cached: every run of the course uses the same 5000 permutations."""
    return _permutation(epoch_num)


@cache
def _permutation(epoch_num: int) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(BATCH_SEED + epoch_num).permutation(M))


class lagged:
    """The assignment's decay timing around a gdlab schedule.

    The assignment computes α = ``schedule(i)`` *after* the mini-batches of epoch i (i from 0)
    and trains epoch i+1 with it; epochs 0 and 1 both train at α₀. :func:`gdlab.fit` asks for
    α at the start of epoch_num = i+1 (counted from 1), so it gets
    ``schedule(max(epoch_num - 2, 0))``. ``after_epoch(i)`` is the α the assignment prints as
    "learning rate after epoch i".
    """

    per_step = False

    def __init__(self, schedule):
        self.schedule = schedule

    def __call__(self, epoch_num: int, t: int | None = None) -> float:
        return self.schedule(max(epoch_num - 2, 0))

    def after_epoch(self, i: int) -> float:
        return self.schedule(i)

    def __repr__(self) -> str:
        return f"lagged({self.schedule!r})"

    def state_dict(self) -> dict:
        return self.schedule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.schedule.load_state_dict(state)


def course_schedule(optimizer: str, decay: str | None) -> lagged | None:
    """The learning-rate decay of a run: None (constant α = 0.0007), or the lagged
    ``inverse_time(α₀, decay_rate=1, time_interval=1 | 1000)``."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("decay", decay, DECAYS)
    if decay is None:
        return None
    return lagged(inverse_time(LR0[optimizer], decay_rate=DECAY_RATE,
                               time_interval=TIME_INTERVAL[decay]))


def course_optimizer(optimizer: str, params, lr: float) -> torch.optim.Optimizer:
    """gdlab's optimizer ``optimizer`` with the assignment's hyperparameters and α = ``lr``."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    if optimizer == "gd":
        return GD(params, lr=lr)
    if optimizer == "momentum":
        return Momentum(params, lr=lr, beta=BETA, form="ewa")
    if optimizer == "rmsprop":
        return RMSProp(params, lr=lr, beta2=BETA2, eps=EPSILON, bias_correction=False)
    return Adam(params, lr=lr, beta1=BETA1, beta2=BETA2, eps=EPSILON)


def run_one(optimizer: str, decay: str | None, epochs: int = EPOCHS,
            keep_history: bool = False) -> dict:
    """Train one run of the assignment; returns ``{"optimizer", "decay", "costs", "accuracy"}``
    (plus ``"lrs"`` for decay runs): the epoch costs and the α computed after each epoch i
    with i % 1000 == 0, keyed by ``str(i)``, and the training-set accuracy.
    ``keep_history`` adds ``"epoch_costs"``, the cost of every epoch."""
    epochs = check_positive_int("epochs", epochs)
    X, Y = course_data()
    model = course_model()
    schedule = course_schedule(optimizer, decay)
    lr = LEARNING_RATE if schedule is None else schedule(1)
    opt = course_optimizer(optimizer, model.parameters(), lr)
    history = fit(model, X, Y, opt, epochs=epochs, batch_size=MINI_BATCH_SIZE,
                  schedule=schedule, batch_order=course_batch_order, progress=False)
    printed = range(0, epochs, PRINT_EVERY)
    run = {"optimizer": optimizer, "decay": decay,
           "costs": {str(i): history.epoch_costs[i] for i in printed}}
    if schedule is not None:
        run["lrs"] = {str(i): schedule.after_epoch(i) for i in printed}
    run["accuracy"] = accuracy(model, X, Y, "binary")  # the assignment's predict: a > 0.5
    if keep_history:
        run["epoch_costs"] = list(history.epoch_costs)
    return run


def _run_one_args(args) -> dict:
    return run_one(*args)


def _init_worker() -> None:
    torch.set_num_threads(1)


def _as_tuple(name: str, values, allowed) -> tuple:
    if isinstance(values, str) or values is None:
        values = (values,)
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must name at least one of "
                         f"{', '.join(map(repr, allowed))}, got none")
    for value in values:
        check_choice(name[:-1], value, allowed)
    return tuple(dict.fromkeys(values))


def run_course(optimizers: Iterable[str] = ("gd", "momentum", "adam", "rmsprop"),
               decays: Iterable[str | None] = (None, "update_lr", "schedule_lr_decay"),
               epochs: int = EPOCHS, progress: bool = False,
               print_fn: Callable[[str], object] | None = None, *,
               workers: int | None = None, keep_history: bool = False) -> dict:
    """Run the assignment for every optimizer × decay (in that order) and return
    ``{"epochs": epochs, "runs": [{"optimizer", "decay", "costs", "lrs"?, "accuracy"}, ...]}``.

    ``optimizers`` from "gd", "momentum", "rmsprop", "adam"; ``decays`` from None, "update_lr",
    "schedule_lr_decay" (a single name is accepted too); ``epochs`` >= 1 (the assignment: 5000).
    ``print_fn`` (e.g. ``print``) receives each run's text as soon as the run finishes, as
    :func:`format_course` writes it (runs after the first start with a blank line, so the
    printed lines are ``format_course(result)``'s). ``progress`` shows a progress bar over
    the runs. ``workers`` processes train runs side by side (default: up to 2, one torch
    thread each); the results are identical to one process's and come back in order.
    ``keep_history`` adds each run's ``"epoch_costs"`` (every epoch's cost).
    """
    optimizers = _as_tuple("optimizers", optimizers, OPTIMIZERS)
    decays = _as_tuple("decays", decays, DECAYS)
    epochs = check_positive_int("epochs", epochs)
    jobs = [(opt, decay, epochs, bool(keep_history)) for opt in optimizers for decay in decays]
    if workers is None:
        workers = min(2, len(jobs), os.cpu_count() or 1)
    workers = min(check_positive_int("workers", workers), len(jobs))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), unit="run", dynamic_ncols=True, leave=False, disable=None)
    result = {"epochs": epochs, "runs": []}
    try:
        for run in _map_runs(jobs, workers):
            result["runs"].append(run)
            if bar is not None:
                bar.clear()
            if print_fn is not None:
                # a blank line between runs, as format_course(result) has
                print_fn(("\n" if len(result["runs"]) > 1 else "") + format_run(run))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return result


def _map_runs(jobs, workers):
    """Yield run_one(*job) for each job, in order, in this process or in a pool."""
    if workers == 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for job in jobs:
                yield run_one(*job)
        finally:
            torch.set_num_threads(threads)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork (where there is one) starts a worker in milliseconds, with torch already imported
    # and no need for an ``if __name__ == "__main__"`` guard in the caller's script; the
    # workers run one torch thread each, so no thread pool crosses the fork.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=_init_worker)
    try:
        yield from pool.map(_run_one_args, jobs)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _decay_label(decay) -> str:
    return "None" if decay is None else decay


def format_run(run: dict) -> str:
    """One run as the assignment prints it, after a header line naming the run."""
    lines = [f"== {run['optimizer']}, decay={_decay_label(run['decay'])} =="]
    lrs = run.get("lrs") if run["decay"] is not None else None
    for key in sorted(run["costs"], key=int):
        i = int(key)
        lines.append(f"Cost after epoch {i:d}: {run['costs'][key]:f}")  # "%i: %f"
        if lrs is not None:
            lines.append(f"learning rate after epoch {i:d}: {lrs[key]:f}")
    lines.append("Accuracy: " + str(np.float64(run["accuracy"])))
    return "\n".join(lines)


def format_course(result: dict) -> str:
    """The text output of :func:`run_course`'s result: each run's lines, runs separated by a
    blank line."""
    return "\n\n".join(format_run(run) for run in result["runs"])
