"""``fit()``: the lean training loop, its ``History`` and callbacks."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from ._checks import check_positive, check_positive_int
from .data import minibatches, shuffled_order
from .ewa import EWA, ewa
from .losses import default_loss


@dataclass
class History:
    """What a run did.

    costs:        J^{t} of every mini-batch, in order (mean over the mini-batch)
    epoch_costs:  the cost of each epoch, Σ_t m_t·J^{t} / m (average over all m examples)
    lrs:          α used in each epoch (the first mini-batch's, if it changed within the epoch)
    times:        wall-clock seconds since the start, at the end of each epoch
    events:       notes such as manual learning-rate changes: {"epoch", "t", "event", ...}
    """

    costs: list[float] = field(default_factory=list)
    epoch_costs: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.epoch_costs)

    def smoothed_costs(self, beta: float = 0.98) -> np.ndarray:
        """The mini-batch costs through the bias-corrected EWA with β."""
        return ewa(np.asarray(self.costs, dtype=np.float64), beta, bias_correction=True)

    def state_dict(self) -> dict:
        return {"costs": list(self.costs), "epoch_costs": list(self.epoch_costs),
                "lrs": list(self.lrs), "times": list(self.times), "events": list(self.events)}

    @classmethod
    def from_state_dict(cls, state: dict) -> History:
        return cls(**{k: list(v) for k, v in state.items()})


class Fit:
    """A running fit. Callbacks receive it; ``set_lr`` changes α from the next mini-batch on
    (the lecture's manual decay) and ``stop()`` ends the run after the current epoch."""

    def __init__(self, model, X, Y, optimizer, *, epochs, batch_size=64, loss=None,
                 schedule=None, seed=None, callbacks=(), progress=True, batch_order=None,
                 num_threads=None):
        self.model, self.optimizer = model, optimizer
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.X, self.Y = _prepare_data(model, X, Y)
        if self.batch_size > self.m:
            raise ValueError(f"batch_size must be at most m = {self.m} (the number of "
                             f"examples), got {batch_size}")
        if loss is None:
            self.forward, self.loss = default_loss(model)
        else:
            self.forward, self.loss = model, loss
        self.schedule = schedule
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.batch_order = batch_order
        self.callbacks = list(callbacks)
        self.progress = progress
        self.history = History()
        self.epoch_num = 0
        self.t = 0
        self._base_lrs = [group["lr"] for group in optimizer.param_groups]
        self._manual_lr = None
        self._pending_lr = None
        self._stop = False
        self.smoothed_cost = EWA(0.98, bias_correction=True)
        self.num_threads = num_threads if num_threads is not None else _auto_threads(
            model, self.batch_size, self.X.device)

    @property
    def m(self) -> int:
        return self.X.shape[0]

    def set_lr(self, lr: float) -> None:
        """Use α = lr from the next mini-batch on, in place of the schedule."""
        self._pending_lr = check_positive("lr", lr)

    def stop(self) -> None:
        self._stop = True

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def _set_group_lrs(self, alpha: float) -> None:
        first = self._base_lrs[0]
        for group, base in zip(self.optimizer.param_groups, self._base_lrs, strict=True):
            group["lr"] = alpha * (base / first)

    def _scheduled_lr(self, epoch_num, t):
        if self._manual_lr is not None:
            return self._manual_lr
        if self.schedule is None:
            return None
        return self.schedule(epoch_num, t)

    def _apply_pending_lr(self) -> None:
        old, self._manual_lr, self._pending_lr = self.lr, self._pending_lr, None
        self._set_group_lrs(self._manual_lr)
        self.history.events.append({"epoch": self.epoch_num, "t": self.t + 1, "event": "set_lr",
                                    "old_lr": old, "lr": self._manual_lr})

    def _call(self, hook: str) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self)
            elif hook == "on_epoch_end" and callable(callback):
                callback(self)

    def run_epoch(self) -> float:
        """Train one epoch over every mini-batch; returns its cost."""
        self.epoch_num += 1
        per_step = getattr(self.schedule, "per_step", False)
        if self._pending_lr is not None:
            self._apply_pending_lr()
        alpha = self._scheduled_lr(self.epoch_num, self.t + 1 if per_step else None)
        if alpha is not None:
            self._set_group_lrs(alpha)
        self.history.lrs.append(self.lr)
        if self.batch_order is not None:
            order = self.batch_order(self.epoch_num)
        else:
            order = shuffled_order(self.m, self.generator, self.X.device)
        costs = []
        model, forward, loss, optimizer = self.model, self.forward, self.loss, self.optimizer
        step = _bare_step(optimizer)
        model.train()
        for X_t, Y_t in minibatches(self.X, self.Y, self.batch_size, order=order):
            if self._pending_lr is not None:
                self._apply_pending_lr()
            self.t += 1
            if per_step and self._manual_lr is None:
                self._set_group_lrs(self.schedule(self.epoch_num, self.t))
            optimizer.zero_grad()
            cost = loss(forward(X_t), Y_t)
            cost.backward()
            step()
            costs.append(cost.detach())
        costs = torch.stack(costs).double().cpu()
        sizes = torch.full_like(costs, self.batch_size)
        sizes[-1] = self.m - self.batch_size * (len(costs) - 1)
        epoch_cost = float((costs * sizes).sum() / self.m)
        self.history.costs.extend(costs.tolist())
        self.history.epoch_costs.append(epoch_cost)
        for c in self.history.costs[-len(costs):]:
            self.smoothed_cost.update(c)
        if hasattr(self.schedule, "observe"):
            self.schedule.observe(epoch_cost)
        return epoch_cost

    def run(self) -> History:
        with _torch_threads(self.num_threads):
            return self._run()

    def _run(self) -> History:
        start = time.perf_counter()
        bar = ProgressBar(self.epochs) if self.progress else None
        if bar is not None:
            self.callbacks.insert(0, bar)
        try:
            self._call("on_fit_start")
            while self.epoch_num < self.epochs and not self._stop:
                self.run_epoch()
                self.history.times.append(time.perf_counter() - start)
                self._call("on_epoch_end")
            self._call("on_fit_end")
        finally:
            if bar is not None:
                bar.close()
                self.callbacks.remove(bar)
        return self.history


#: below this many multiply-adds per step (batch size × parameters), one thread is faster
SMALL_STEP = 2**22


def _auto_threads(model, batch_size, device) -> int | None:
    """1 for small steps on the CPU, where waking other threads costs more than the work (and
    several times more when the cores are busy); None (torch's setting) otherwise."""
    if device.type != "cpu":
        return None
    n_parameters = sum(p.numel() for p in model.parameters())
    return 1 if batch_size * n_parameters < SMALL_STEP else None


@contextmanager
def _torch_threads(n: int | None):
    """torch's intra-op thread count set to n for the duration (process-wide)."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _bare_step(optimizer):
    """``optimizer.step`` without torch's per-call profiling wrapper (tens of µs, as much as a
    whole step of a small network) when no step hooks are registered that it would run."""
    from torch.optim import optimizer as torch_optimizer

    hooks = (optimizer._optimizer_step_pre_hooks, optimizer._optimizer_step_post_hooks,
             getattr(torch_optimizer, "_global_optimizer_pre_hooks", None),
             getattr(torch_optimizer, "_global_optimizer_post_hooks", None))
    unwrapped = getattr(type(optimizer).step, "__wrapped__", None)
    wrapped_instance = "step" in vars(optimizer)  # e.g. by a torch LRScheduler
    if unwrapped is None or wrapped_instance or any(h is None or len(h) for h in hooks):
        return optimizer.step
    return unwrapped.__get__(optimizer)


class ProgressBar:
    """A progress bar over epochs (of one run or several) showing the bias-corrected EWA of the
    mini-batch cost and α."""

    def __init__(self, total: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="epoch", dynamic_ncols=True, leave=False, disable=None)

    def describe(self, label: str) -> None:
        self.bar.set_description(label)

    def on_epoch_end(self, run: Fit) -> None:
        self.bar.set_postfix(cost=f"{run.smoothed_cost.current():.4g}", lr=f"{run.lr:.3g}",
                             refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _prepare_data(model, X, Y):
    """X and Y as tensors on the model's device, X in its dtype; checks shapes and values."""
    X = torch.as_tensor(X)
    Y = torch.as_tensor(Y)
    if X.ndim < 1 or X.shape[0] == 0:
        raise ValueError("X must hold at least one example (one row)")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows (examples), got "
                         f"{X.shape[0]} and {Y.shape[0]}")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else X.device
    dtype = parameter.dtype if parameter is not None else torch.get_default_dtype()
    X = X.to(device=device, dtype=dtype)
    if not torch.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    Y = Y.to(device=device, dtype=dtype if Y.is_floating_point() else Y.dtype)
    if Y.is_floating_point() and not torch.isfinite(Y).all():
        raise ValueError("Y contains NaN or infinite values")
    return X, Y


def fit(model, X, Y, optimizer, *, epochs, batch_size=64, loss=None, schedule=None, seed=None,
        callbacks=(), progress=True, batch_order=None, num_threads=None) -> History:
    """Train ``model`` on rows of ``X`` (examples) with targets ``Y`` by mini-batch gradient
    descent with ``optimizer``, and return its :class:`History`.

    Each epoch shuffles the rows (seeded by ``seed``; or ``batch_order(epoch_num)`` gives the
    permutation), cuts them into mini-batches of ``batch_size`` (m: batch GD, 1: SGD) and takes
    one optimizer step per mini-batch on the gradient of its mean cost J^{t}. ``schedule``
    (``schedule(epoch_num, t) -> α``) sets α at the start of each epoch, or each mini-batch
    for per-step schedules. ``loss(output, Y_t)`` defaults to the cost the model's output
    implies. ``callbacks`` get the running :class:`Fit` at ``on_fit_start``,
    ``on_epoch_end`` (or are called, if plain functions) and ``on_fit_end``.
    ``num_threads`` sets torch's CPU threads while it runs; by default small steps run on one
    thread, which is faster for them, and larger ones keep torch's setting.
    """
    return Fit(model, X, Y, optimizer, epochs=epochs, batch_size=batch_size, loss=loss,
               schedule=schedule, seed=seed, callbacks=callbacks, progress=progress,
               batch_order=batch_order, num_threads=num_threads).run()
