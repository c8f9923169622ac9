"""``gdlab compare``: the same network, initialization and mini-batch order trained with each
optimizer, with and without learning-rate decay."""

from __future__ import annotations

import copy
import time

import torch

from .._checks import check_choice, check_positive, check_positive_int
from ..data.datasets import Dataset
from ..models import DTYPES, MLP, accuracy, check_layers, default_layers, initial_model
from ..optim import OPTIMIZERS
from ..schedules import constant, parse_schedule
from ..train import fit
from ..train.callbacks.progress import ProgressBar
from .runs import RunResult

#: α each optimizer starts from unless --lr is given (its customary scale on small networks)
DEFAULT_LR = {"gd": 0.1, "momentum": 0.1, "rmsprop": 0.005, "adam": 0.005}
#: the decay each optimizer is also run with (the assignment's interval form):
#: α = α₀/(1 + ⌊epoch_num/50⌋)
DEFAULT_DECAY = "inverse_time:decay_rate=1,time_interval=50"



def make_optimizer(name: str, params, lr: float, flat: bool = True):
    check_choice("optimizer", name, OPTIMIZERS)
    return OPTIMIZERS[name](params, lr=lr, flat=flat)


def train_run(dataset: Dataset, initial: MLP, optimizer: str, lr: float, schedule_text: str | None,
              *, epochs: int, batch_size: int, seed: int, progress: bool = False,
              callbacks=()) -> RunResult:
    """One run from a copy of ``initial``: same weights, same mini-batch order (``seed``)."""
    model = copy.deepcopy(initial)
    schedule = parse_schedule(schedule_text, lr) if schedule_text else constant(lr)
    dtype = next(model.parameters()).dtype
    X = torch.as_tensor(dataset.X_train, dtype=dtype)
    Y = torch.as_tensor(dataset.Y_train)
    # made before the clock starts: torch's first optimizer of a process imports torch._dynamo
    # (seconds), which is not the run's time
    optim = make_optimizer(optimizer, model.parameters(), lr)
    start = time.perf_counter()
    history = fit(model, X, Y, optim, epochs=epochs, batch_size=min(batch_size, len(X)),
                  schedule=schedule, seed=seed, progress=progress, callbacks=callbacks)
    seconds = time.perf_counter() - start
    schedule_label = "constant" if schedule_text is None else schedule_text
    label = optimizer if schedule_text is None else f"{optimizer} + {schedule_text.split(':')[0]}"
    return RunResult(optimizer=optimizer, schedule=schedule_label, label=label, history=history,
                     model=model, seconds=seconds,
                     train_accuracy=accuracy(model, dataset.X_train, dataset.Y_train,
                                             dataset.task),
                     test_accuracy=accuracy(model, dataset.X_test, dataset.Y_test, dataset.task),
                     config={"optimizer": optimizer, "lr": lr, "schedule": schedule_label,
                             "epochs": epochs, "batch_size": batch_size, "seed": seed})


def compare(dataset: Dataset, *, layers=None, optimizers=tuple(OPTIMIZERS), lr=None,
            epochs: int = 100, batch_size: int = 64, decay: str | None = DEFAULT_DECAY,
            seed: int = 0, dtype: str = "float32", progress: bool = False) -> list[RunResult]:
    """Train every optimizer with constant α and (unless ``decay`` is None) with ``decay``.

    ``lr`` is one α for all, or None for each optimizer's ``DEFAULT_LR``. ``progress`` shows
    one bar over all runs' epochs.
    """
    for name in optimizers:
        check_choice("optimizer", name, OPTIMIZERS)
    if lr is not None:
        check_positive("lr", lr)
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    check_choice("dtype", dtype, DTYPES)
    if decay is not None:
        parse_schedule(decay, 1.0)  # fail before any training if the schedule is malformed
    layers = check_layers(layers, dataset) if layers is not None else default_layers(dataset)
    initial = initial_model(dataset, layers, seed, DTYPES[dtype])
    schedules = (None,) if decay is None else (None, decay)
    plan = [(name, schedule) for name in dict.fromkeys(optimizers) for schedule in schedules]
    bar = ProgressBar(len(plan) * epochs) if progress else None
    runs = []
    for name, schedule in plan:
        if bar is not None:
            bar.describe(name if schedule is None else f"{name} + decay")
        runs.append(train_run(dataset, initial, name, lr or DEFAULT_LR[name], schedule,
                              epochs=epochs, batch_size=batch_size, seed=seed,
                              callbacks=() if bar is None else (bar,)))
    if bar is not None:
        bar.close()
    return runs

