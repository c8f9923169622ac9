"""``fit()``: the lean training loop, its ``History`` and callbacks."""

from __future__ import annotations

import math
import random
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.optim import optimizer as torch_optimizer

from .._checks import check_positive, check_positive_int
from ..data.batches import checked_order, minibatches, partition, shuffled_order
from ..data.memmap import is_lazy
from ..ewa import EWA, ewa
from ..losses import default_loss


@dataclass
class History:
    """What a run did.

    costs:        J^{t} of every mini-batch, in order (mean over the mini-batch)
    epoch_costs:  the cost of each epoch, Σ_t m_t·J^{t} / m (average over all m examples)
    lrs:          α used in each epoch (the first mini-batch's, if it changed within the epoch)
    times:        wall-clock seconds since the start, at the end of each epoch
    events:       notes such as manual learning-rate changes and divergences:
                  {"epoch", "t", "event": "set_lr" | "diverged", ...}
    metrics:      per-epoch values that callbacks record, by name (e.g. "accuracy"); saved
                  in checkpoints with the rest
    """

    costs: list[float] = field(default_factory=list)
    epoch_costs: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    metrics: dict[str, list] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return len(self.epoch_costs)

    def smoothed_costs(self, beta: float = 0.98) -> np.ndarray:
        """The mini-batch costs through the bias-corrected EWA with β."""
        return ewa(np.asarray(self.costs, dtype=np.float64), beta, bias_correction=True)

    def state_dict(self) -> dict:
        return {"costs": list(self.costs), "epoch_costs": list(self.epoch_costs),
                "lrs": list(self.lrs), "times": list(self.times),
                "events": [dict(event) for event in self.events],
                "metrics": {name: list(values) for name, values in self.metrics.items()}}

    @classmethod
    def from_state_dict(cls, state: dict) -> History:
        return cls(**{k: ({name: list(values) for name, values in v.items()} if k == "metrics"
                          else [dict(e) for e in v] if k == "events" else list(v))
                      for k, v in state.items()})

    def _lengths(self) -> dict:
        return {"costs": len(self.costs), "epoch_costs": len(self.epoch_costs),
                "lrs": len(self.lrs), "times": len(self.times), "events": len(self.events),
                "metrics": {name: len(values) for name, values in self.metrics.items()}}

    def _truncate(self, lengths: dict) -> None:
        """Back to the lengths ``_lengths()`` gave (drops what an abandoned epoch added)."""
        for name in ("costs", "epoch_costs", "lrs", "times", "events"):
            del getattr(self, name)[lengths[name]:]
        for name in list(self.metrics):
            if name in lengths["metrics"]:
                del self.metrics[name][lengths["metrics"][name]:]
            else:
                del self.metrics[name]


class Diverged(RuntimeError):
    """The cost of a fit became non-finite or exploded and ``on_divergence="stop"`` ended it.

    ``event`` is the ``"diverged"`` entry of ``history.events`` (epoch, t, α, cost, reason);
    the model holds the state at the start of the epoch that diverged."""

    def __init__(self, message: str, event: dict, history: History):
        super().__init__(message)
        self.event, self.history = event, history


#: format of Fit.state_dict(), checked when a state is loaded
STATE_FORMAT = 1
#: on_divergence="reduce" gives up after this many cuts of α in one epoch
MAX_REDUCTIONS = 10
ON_DIVERGENCE = (None, "stop", "reduce")


def check_divergence_options(on_divergence, divergence_factor, reduce_factor):
    """The divergence guard's settings, checked: ``(on_divergence, factor, reduce_factor)``."""
    if on_divergence not in ON_DIVERGENCE:
        raise ValueError(f"on_divergence must be None, 'stop' or 'reduce', got "
                         f"{on_divergence!r}")
    factor = check_positive("divergence_factor", divergence_factor)
    if factor <= 1:
        raise ValueError(f"divergence_factor must be > 1 (how many times the smoothed cost "
                         f"counts as exploding), got {divergence_factor!r}")
    cut = check_positive("reduce_factor", reduce_factor)
    if cut >= 1:
        raise ValueError(f"reduce_factor must be in (0, 1) (α is multiplied by it after a "
                         f"divergence), got {reduce_factor!r}")
    return on_divergence, factor, cut


class Fit:
    """A running fit. Callbacks receive it; ``set_lr`` changes α from the next mini-batch on
    (the lecture's manual decay) and ``stop()`` ends the run after the current epoch.

    ``state_dict()`` / ``load_state_dict()`` hold everything a run needs to continue bit for
    bit (model, optimizer, schedule, epoch_num, t, history, manual α, every RNG state); see
    :mod:`gdlab.train.callbacks.checkpoint`. Callbacks may define ``on_fit_start``,
    ``on_epoch_end``,
    ``on_fit_end`` and ``on_interrupt`` (after Ctrl-C, with the state at an epoch boundary).
    """

    def __init__(self, model, X, Y, optimizer, *, epochs, batch_size=64, loss=None,
                 schedule=None, seed=None, callbacks=(), progress=True, batch_order=None,
                 num_threads=None, on_divergence=None, divergence_factor=10.0,
                 reduce_factor=0.5, run_dir=None, checkpoint_every=10, resume=False,
                 shard_optimizer_state=False, backprop="auto"):
        from . import distributed

        self._replicas = None  # data-parallel: the process group's helper (docs/scaling.md)
        if distributed.init_from_env():
            self._replicas = distributed.Replicas(model)
            self._replicas.broadcast_model(model)
            if shard_optimizer_state:
                optimizer = distributed.shard_optimizer_state(optimizer)
            if seed is None:
                seed = self._replicas.common_seed()  # the same shuffles on every rank
        self.rank = self._replicas.rank if self._replicas is not None else 0
        self._sharded = distributed.is_sharded(optimizer)
        self.model, self.optimizer = model, optimizer
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.X, self.Y = _prepare_data(model, X, Y)
        if self.batch_size > self.m:
            raise ValueError(f"batch_size must be at most m = {self.m} (the number of "
                             f"examples), got {batch_size}")
        if loss is None:
            if not is_lazy(self.Y):
                _check_labels(model, self.Y)
            self.forward, self.loss = default_loss(model)
        else:
            self.forward, self.loss = model, loss
        self._backprop = _closed_form_backprop(backprop, model, self.forward, self.loss,
                                               self._replicas is None and not is_lazy(self.X))
        self._gradients = self._backprop.gradients_of(model) if self._backprop else None
        self.schedule = schedule
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.batch_order = batch_order
        self.callbacks = list(callbacks)
        self.progress = progress and self.rank == 0
        self.history = History()
        self.epoch_num = 0
        self.t = 0
        self._base_lrs = [group["lr"] for group in optimizer.param_groups]
        self._manual_lr = None
        self._pending_lr = None
        self._stop = False
        self.smoothed_cost = EWA(0.98, bias_correction=True)
        self.num_threads = num_threads if num_threads is not None else _auto_threads(
            model, self.batch_size, self._data_device or torch.device("cpu"))
        self.on_divergence, self.divergence_factor, self.reduce_factor = \
            check_divergence_options(on_divergence, divergence_factor, reduce_factor)
        self._lr_scale = 1.0  # α cuts after divergences (on_divergence="reduce")
        self._initial_cost = None  # J on all examples before training (divergence reference)
        self.diverged = None  # the "diverged" event that stopped the run
        self.interrupted = False  # stopped by Ctrl-C
        self.running = False
        self.keep_snapshots = False  # keep the state at each epoch's start (set by callbacks)
        self.catch_sigint = False  # Ctrl-C finishes the epoch, then stops (set by Checkpoint)
        self._in_epoch = False
        self.run_dir = run_dir
        if run_dir is not None and self.rank == 0:  # only rank 0 writes
            from .callbacks.checkpoint import Checkpoint
            from .callbacks.control import LiveControl

            self.callbacks += [Checkpoint(run_dir, every=checkpoint_every),
                               LiveControl(run_dir)]
        if resume is not False and resume is not None:
            self._resume(resume)

    @property
    def m(self) -> int:
        return self.X.shape[0]

    @property
    def _data_device(self):
        """The device of in-memory X (None for arrays read from disk)."""
        return getattr(self.X, "device", None)

    @property
    def world_size(self) -> int:
        """How many data-parallel processes train this model (1: a single process)."""
        return self._replicas.size if self._replicas is not None else 1

    def _to_model(self, X_t, Y_t):
        """Rows read from disk as tensors in the model's dtype and device."""
        parameter = next(self.model.parameters(), None)
        if parameter is None:
            return X_t, Y_t
        X_t = X_t.to(device=parameter.device, dtype=parameter.dtype)
        Y_t = Y_t.to(device=parameter.device,
                     dtype=parameter.dtype if Y_t.is_floating_point() else Y_t.dtype)
        return X_t, Y_t

    def _lazy_batches(self, order):
        """The epoch's mini-batches read from disk (each its own rows), in the model's dtype."""
        return (self._to_model(X_t, Y_t) for X_t, Y_t in
                minibatches(self.X, self.Y, self.batch_size, order=order))

    def set_lr(self, lr: float) -> None:
        """Use α = lr from the next mini-batch on, in place of the schedule."""
        self._pending_lr = check_positive("lr", lr)

    def stop(self) -> None:
        self._stop = True

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def _set_group_lrs(self, alpha: float) -> None:
        if self._manual_lr is None and self._lr_scale != 1.0:
            alpha = alpha * self._lr_scale  # cut after a divergence
        first = self._base_lrs[0]
        for group, base in zip(self.optimizer.param_groups, self._base_lrs, strict=True):
            group["lr"] = alpha * (base / first)

    def _scheduled_lr(self, epoch_num, t):
        if self._manual_lr is not None:
            return self._manual_lr
        if self.schedule is None:
            return None if self._lr_scale == 1.0 else self._base_lrs[0]
        return self.schedule(epoch_num, t)

    def _apply_pending_lr(self) -> None:
        old, self._manual_lr, self._pending_lr = self.lr, self._pending_lr, None
        self._set_group_lrs(self._manual_lr)
        self.history.events.append({"epoch": self.epoch_num, "t": self.t + 1, "event": "set_lr",
                                    "old_lr": old, "lr": self._manual_lr})

    def _call(self, hook: str) -> None:
        if self._sharded and self.run_dir is not None and hook != "on_interrupt":
            self.optimizer.consolidate_state_dict(to=0)  # (collective) for rank 0's checkpoint
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
        if self._pending_lr is not None and self._replicas is None:
            self._apply_pending_lr()
        if self._replicas is not None:
            self._take_synced_lr()
        alpha = self._scheduled_lr(self.epoch_num, self.t + 1 if per_step else None)
        if alpha is not None:
            self._set_group_lrs(alpha)
        self.history.lrs.append(self.lr)
        if self.batch_order is not None:
            order = checked_order(self.batch_order(self.epoch_num), self.m, self._data_device,
                                  "what batch_order returns")
        else:
            order = shuffled_order(self.m, self.generator, self._data_device)
        if self._replicas is not None:
            return self._end_epoch(torch.stack(self._distributed_epoch(order, per_step)))
        model, forward, loss, optimizer = self.model, self.forward, self.loss, self.optimizer
        step = _bare_step(optimizer)
        closed_form = self._backprop is not None
        if not (closed_form and model.training):  # (an MLP has no layer that its mode changes)
            model.train()
        if is_lazy(self.X) or is_lazy(self.Y):  # (never in closed form)
            batches = self._lazy_batches(order)
        else:
            # (closed form: inference tensors, whose views and products skip autograd's work)
            with torch.inference_mode() if closed_form else nullcontext():
                X_order, Y_order = self.X[order], self.Y[order]
            batches = partition(X_order, Y_order, self.batch_size)
        outputs = []  # J^{t} of each mini-batch; in closed form, its Z^[L] (J^{t} comes after)
        with torch.no_grad() if closed_form else nullcontext():
            for X_t, Y_t in batches:
                if self._pending_lr is not None:
                    self._apply_pending_lr()
                self.t += 1
                if per_step and self._manual_lr is None:
                    self._set_group_lrs(self.schedule(self.epoch_num, self.t))
                if closed_form:
                    outputs.append(self._gradients(X_t, Y_t))
                else:
                    optimizer.zero_grad()
                    cost = loss(forward(X_t), Y_t)
                    cost.backward()
                    outputs.append(cost.detach())
                step()
        if closed_form:  # every mini-batch's J^{t} at once, from their Z^[L]
            return self._end_epoch(self._backprop.batch_costs(torch.cat(outputs), Y_order,
                                                              self.batch_size))
        return self._end_epoch(torch.stack(outputs))

    def _end_epoch(self, costs) -> float:
        """Record the epoch's mini-batch costs J^{t} (a tensor) and return its cost."""
        costs = costs.to("cpu", torch.float64).numpy()
        epoch_cost = float(epoch_cost_of(costs, self.batch_size, self.m))
        costs = costs.tolist()
        self.history.costs.extend(costs)
        self.history.epoch_costs.append(epoch_cost)
        for c in costs:
            self.smoothed_cost.update(c)
        if hasattr(self.schedule, "observe"):
            self.schedule.observe(epoch_cost)
        return epoch_cost

    def _distributed_epoch(self, order, per_step) -> list:
        """One epoch of data-parallel training: this rank's shard of each mini-batch, its
        summed cost over the global mini-batch size back-propagated, one all_reduce(SUM) of the
        gradients and costs, the same step on every rank (see gdlab.distributed)."""
        replicas, X, Y, B = self._replicas, self.X, self.Y, self.batch_size
        lazy = is_lazy(X) or is_lazy(Y)
        model, forward, loss, optimizer = self.model, self.forward, self.loss, self.optimizer
        step = _bare_step(optimizer)
        model.train()
        costs = []
        for start in range(0, self.m, B):
            rows = order[start:start + B]
            n = rows.shape[0]
            lo, hi = replicas.shard(n)
            self.t += 1
            if per_step and self._manual_lr is None:
                self._set_group_lrs(self.schedule(self.epoch_num, self.t))
            optimizer.zero_grad()
            if hi > lo:
                local = rows[lo:hi]
                if lazy:
                    local = local.sort().values
                    X_t, Y_t = self._to_model(X[local], Y[local])
                else:
                    X_t, Y_t = X[local], Y[local]
                cost = loss(forward(X_t), Y_t)
                (cost * ((hi - lo) / n)).backward()
                cost_sum = cost.detach() * (hi - lo)
            else:
                cost_sum = replicas.zero_cost()
            costs.append(replicas.all_reduce(cost_sum) / n)
            step()
        return costs

    def _sync_controls(self) -> None:
        """Data-parallel runs: rank 0's live α request and stop flag, taken at an epoch
        boundary and shared, so that every rank trains with the same α."""
        if self._replicas is None:
            return
        pending = None
        if self.rank == 0:
            pending, self._pending_lr = self._pending_lr, None
        self._synced_lr, self._stop = self._replicas.broadcast_object((pending, self._stop))

    def _take_synced_lr(self) -> None:
        lr, self._synced_lr = getattr(self, "_synced_lr", None), None
        if lr is not None:
            old, self._manual_lr = self.lr, lr
            self._set_group_lrs(lr)
            self.history.events.append({"epoch": self.epoch_num, "t": self.t + 1,
                                        "event": "set_lr", "old_lr": old, "lr": lr})

    def run(self) -> History:
        with _torch_threads(self.num_threads):
            return self._run()

    def _run(self) -> History:
        # a resumed run's times continue from where its checkpoint left them
        start = time.perf_counter() - (self.history.times[-1] if self.history.times else 0.0)
        bar = ProgressBar(self.epochs, initial=self.epoch_num) if self.progress else None
        if bar is not None:
            self.callbacks.insert(0, bar)
        self.running, self.interrupted, self.diverged = True, False, None
        previous_handler, snapshot, reductions = None, None, 0
        try:
            if self.on_divergence is not None and self._initial_cost is None:
                self._initial_cost = self._full_cost()
            self._call("on_fit_start")
            self._sync_controls()
            if self.catch_sigint:
                previous_handler = self._catch_sigint()
            while self.epoch_num < self.epochs and not self._stop:
                keep = self.on_divergence is not None or self.keep_snapshots
                snapshot = self._snapshot() if keep else None
                self._in_epoch = True
                self.run_epoch()
                if self.on_divergence is not None:
                    problem = self._divergence(snapshot)
                    if problem is not None:
                        reductions += 1
                        self._in_epoch = False
                        if self._diverge(snapshot, problem, reductions):
                            continue  # retry the epoch with a smaller α
                        break
                reductions = 0
                self.history.times.append(time.perf_counter() - start)
                self._in_epoch = False
                self._call("on_epoch_end")
                self._sync_controls()
            self._call("on_fit_end")
        except KeyboardInterrupt:
            self.interrupted = True
            if self._in_epoch and snapshot is not None:
                self._restore(snapshot)  # abandon the epoch: back to its start, consistent
                self._in_epoch = False
            if not self._in_epoch:
                self._call("on_interrupt")
            raise
        finally:
            self.running, self._in_epoch = False, False
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            if bar is not None:
                bar.close()
                self.callbacks.remove(bar)
        if self.interrupted and self.epoch_num < self.epochs:
            raise KeyboardInterrupt(f"stopped at the end of epoch {self.epoch_num} of "
                                    f"{self.epochs}")
        if self.diverged is not None:
            raise Diverged(self.diverged["message"], self.diverged, self.history)
        return self.history

    def _catch_sigint(self):
        """Ctrl-C: finish the epoch, then stop (callbacks save a checkpoint); a second Ctrl-C
        raises KeyboardInterrupt at once. Returns the handler to restore (None: not set)."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def on_sigint(signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted, self._stop = True, True
            print(f"{chr(10) if self.progress else ''}gdlab: Ctrl-C — stopping at the end "
                  f"of epoch {self.epoch_num} and saving a checkpoint (Ctrl-C again to stop at "
                  f"once)", file=sys.stderr, flush=True)

        previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, on_sigint)
        return previous if previous is not None else signal.default_int_handler

    # --- divergence ---------------------------------------------------------------------------

    def _divergence(self, snapshot) -> dict | None:
        """What went wrong in the epoch just run, or None: a non-finite mini-batch cost, or an
        epoch cost above divergence_factor × the smoothed cost before the epoch (and above the
        first epoch's cost, so that noise on a cost near zero does not count)."""
        start = snapshot["history"]["costs"]
        for i, cost in enumerate(self.history.costs[start:]):
            if not math.isfinite(cost):
                t = snapshot["t"] + i + 1
                return {"t": t, "cost": cost, "reason": f"the cost of mini-batch t = {t} is "
                        f"{cost}"}
        cost, initial = self.history.epoch_costs[-1], self._initial_cost
        reference, what = snapshot["smoothed"], "the smoothed cost"
        if reference is None:
            reference, what = initial, "the initial cost"
        if (reference is not None and initial is not None
                and cost > self.divergence_factor * reference and cost > initial):
            return {"t": self.t, "cost": cost, "reason": f"the epoch's cost {cost:.6g} is over "
                    f"{self.divergence_factor:g}× {what} {reference:.6g}"}
        return None

    @torch.no_grad()
    def _full_cost(self) -> float:
        """J of the model on all m examples (in eval mode, in chunks): the reference for the
        first epoch's divergence check."""
        was_training = self.model.training
        self.model.eval()
        try:
            total, chunk = 0.0, max(self.batch_size, 4096)
            for start in range(0, self.m, chunk):
                X_t, Y_t = self.X[start:start + chunk], self.Y[start:start + chunk]
                if is_lazy(self.X) or is_lazy(self.Y):
                    X_t, Y_t = self._to_model(X_t, Y_t)
                total += float(self.loss(self.forward(X_t), Y_t)) * X_t.shape[0]
        finally:
            self.model.train(was_training)
        return total / self.m

    def _diverge(self, snapshot, problem, reductions) -> bool:
        """Restore the start of the diverged epoch and record it; True: retry it with α cut."""
        epoch, lr, manual = self.epoch_num, self.lr, self._manual_lr
        manual_changes = [e for e in self.history.events[snapshot["history"]["events"]:]
                          if e.get("event") == "set_lr"]
        self._restore(snapshot)
        self.history.events.extend(manual_changes)  # they happened: keep them on record
        event = {"epoch": epoch, "t": problem["t"], "event": "diverged", "lr": lr,
                 "cost": problem["cost"], "reason": problem["reason"]}
        head = f"diverged in epoch {epoch} at α = {lr:.6g}: {problem['reason']}"
        if self.on_divergence == "reduce" and reductions <= MAX_REDUCTIONS:
            if manual is not None:  # α was set by hand: cut that α
                self._manual_lr = manual * self.reduce_factor
                if self._pending_lr == snapshot["pending_lr"]:
                    self._pending_lr = None  # the request the failed epoch already applied
            else:
                self._lr_scale *= self.reduce_factor
            new_lr = lr * self.reduce_factor
            event.update(action="reduce", new_lr=new_lr,
                         message=f"{head}; retrying epoch {epoch} from its start with "
                                 f"α = {new_lr:.6g}")
            self.history.events.append(event)
            return True
        if self.on_divergence == "reduce":
            advice = f"still diverging after {MAX_REDUCTIONS} cuts of α in this epoch"
        else:
            advice = "a smaller α, or on_divergence='reduce', avoids this"
        event.update(action="stop", message=f"{head}; the state at the start of epoch {epoch} "
                                            f"was restored; {advice}")
        self.history.events.append(event)
        self.diverged = event
        return False

    # --- state --------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything needed to continue this run bit for bit: tensors and plain Python values
        only, so ``torch.load(..., weights_only=True)`` reads it back. Tensors are copies."""
        state = self._state()
        state["history"] = self.history.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (from :meth:`state_dict`, e.g. a checkpoint): same data size
        and batch size, same model and optimizer. Raises ValueError if it does not fit."""
        self._load_state(state)
        history = History.from_state_dict(state["history"])
        for name in ("costs", "epoch_costs", "lrs", "times", "events", "metrics"):
            setattr(self.history, name, getattr(history, name))

    def _state(self, local=False) -> dict:
        """``local``: for an in-memory snapshot; a sharded optimizer then saves this rank's
        shard only (no collective)."""
        schedule_state = getattr(self.schedule, "state_dict", None)
        if local and self._sharded:
            optimizer_state = {"zero_local": _cloned(self.optimizer.optim.state_dict())}
        else:
            optimizer_state = _cloned(self.optimizer.state_dict())
        return {
            "format": STATE_FORMAT, "epoch_num": self.epoch_num, "t": self.t,
            "epochs": self.epochs, "m": self.m, "batch_size": self.batch_size,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": optimizer_state,
            "schedule": _cloned(schedule_state()) if callable(schedule_state) else None,
            "manual_lr": self._manual_lr, "pending_lr": self._pending_lr,
            "lr_scale": self._lr_scale, "initial_cost": self._initial_cost,
            "smoothed_cost": self.smoothed_cost.state_dict(),
            "rng": _rng_state(self.generator),
        }

    def _load_state(self, state) -> None:
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("not the state of a gdlab fit (format "
                             f"{state.get('format') if isinstance(state, dict) else '?'}, "
                             f"expected {STATE_FORMAT})")
        if (state["m"], state["batch_size"]) != (self.m, self.batch_size):
            raise ValueError(f"the saved run trained on m = {state['m']} examples in "
                             f"mini-batches of {state['batch_size']}; this one has m = {self.m} "
                             f"and batch_size = {self.batch_size}: it would not continue the "
                             f"same run")
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise ValueError(f"the saved state does not fit this model: "
                             f"{' '.join(str(e).split())[:300]}") from None
        try:
            if "zero_local" in state["optimizer"]:
                self.optimizer.optim.load_state_dict(_cloned(state["optimizer"]["zero_local"]))
            else:
                self.optimizer.load_state_dict(_cloned(state["optimizer"]))
        except (ValueError, KeyError, RuntimeError) as e:
            raise ValueError(f"the saved optimizer state does not fit this optimizer: "
                             f"{' '.join(str(e).split())[:300]}") from None
        load_schedule = getattr(self.schedule, "load_state_dict", None)
        if state["schedule"] is not None and callable(load_schedule):
            load_schedule(_cloned(state["schedule"]))
        self.epoch_num, self.t = int(state["epoch_num"]), int(state["t"])
        self._manual_lr, self._pending_lr = state["manual_lr"], state["pending_lr"]
        self._lr_scale = float(state["lr_scale"])
        self._initial_cost = state.get("initial_cost")
        self.smoothed_cost.load_state_dict(state["smoothed_cost"])
        _set_rng_state(state["rng"], self.generator)

    def _snapshot(self) -> dict:
        """The state at the start of an epoch, in memory, to go back to (history by length)."""
        state = self._state(local=True)
        state["history"] = self.history._lengths()
        state["smoothed"] = self.smoothed_cost.current() if self.smoothed_cost.t else None
        return state

    def _restore(self, snapshot) -> None:
        unapplied = self._pending_lr  # e.g. a live request that came after the last mini-batch
        self._load_state(snapshot)
        self.history._truncate(snapshot["history"])
        if unapplied is not None:
            self._pending_lr = unapplied

    def _resume(self, resume) -> None:
        """``resume``: True (the newest good checkpoint in run_dir, if any), a checkpoint file
        or run folder, or a state dict."""
        from pathlib import Path

        from .callbacks.checkpoint import latest_checkpoint, read_checkpoint

        if isinstance(resume, dict):
            self.load_state_dict(resume)
            return
        if resume is True:
            if self.run_dir is None:
                raise ValueError("resume=True needs run_dir, the folder of the checkpoints")
            found = latest_checkpoint(self.run_dir)
            if found is not None:
                self.load_state_dict(found[0])
            return
        path = Path(resume)
        if path.is_dir():
            found = latest_checkpoint(path)
            if found is None:
                raise ValueError(f"no checkpoint in {path} to resume from")
            self.load_state_dict(found[0])
        else:
            self.load_state_dict(read_checkpoint(path))


def _cloned(value):
    """A deep copy of nested dicts/lists/tuples with every tensor cloned."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _cloned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cloned(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_cloned(v) for v in value)
    return value


def _rng_state(generator) -> dict:
    """torch's, the shuffle generator's, numpy's and Python's RNG states as tensors and plain
    values (for weights_only loading)."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "generator": generator.get_state() if generator is not None else None,
             "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
                       "pos": int(pos), "has_gauss": int(has_gauss),
                       "cached_gaussian": float(cached_gaussian)},
             "python": {"version": version, "state": list(internal), "gauss_next": gauss_next}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, generator) -> None:
    torch.set_rng_state(state["torch"])
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _check_labels(model, Y) -> None:
    """Labels that the default cost of a gdlab MLP can take, or a ValueError saying why not."""
    from ..models import MLP

    if not isinstance(model, MLP):
        return
    m, n_y, output = Y.shape[0], model.layer_dims[-1], model.output
    values = Y.double() if Y.numel() else Y
    if output == "softmax":
        if Y.numel() != m:
            raise ValueError(f"a softmax output takes one class index per example (Y of shape "
                             f"({m},)), got Y of shape {tuple(Y.shape)}")
        low, high = float(values.min()), float(values.max())
        if not bool((values == values.round()).all()) or low < 0 or high >= n_y:
            raise ValueError(f"labels must be class indices 0..{n_y - 1} for a softmax output "
                             f"of {n_y} classes (cross-entropy), got values from {low:g} to "
                             f"{high:g}")
        return
    if Y.numel() != m * n_y:
        raise ValueError(f"a {output} output of {n_y} unit{'s' if n_y > 1 else ''} takes Y of "
                         f"shape ({m}, {n_y}){f' or ({m},)' if n_y == 1 else ''}, got Y of "
                         f"shape {tuple(Y.shape)}")
    if output == "sigmoid":
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 1:
            raise ValueError(f"labels must be in [0, 1] for a sigmoid output (binary "
                             f"cross-entropy), got values from {low:g} to {high:g}")


def epoch_cost_of(costs, batch_size: int, m: int):
    """J of an epoch from its mini-batch costs J^{t} (first dimension: the steps; any others,
    e.g. configurations, kept): their mean weighted by the mini-batches' sizes, batch_size
    each and the last the rest of the m examples."""
    last = m - batch_size * (costs.shape[0] - 1)
    return (batch_size * costs[:-1].sum(0) + last * costs[-1]) / m


BACKPROPS = ("auto", "closed_form", "autograd")


def _closed_form_backprop(backprop, model, forward, loss, in_memory):
    """The :class:`gdlab.backprop.MLPBackprop` that computes the gradients, or None for
    autograd. "auto" takes the closed form wherever it computes what autograd would."""
    from .. import backprop as closed_form

    if backprop not in BACKPROPS:
        raise ValueError(f"backprop must be one of {', '.join(BACKPROPS)}, got {backprop!r}")
    if backprop == "autograd":
        return None
    usable = in_memory and closed_form.supports(model, forward, loss)
    if backprop == "closed_form" and not usable:
        raise ValueError("backprop='closed_form' needs a gdlab MLP trained on its default "
                         "cost, in memory, in one process, with no hooks; use 'auto' or "
                         "'autograd'")
    return closed_form.MLPBackprop(model) if usable else None


#: below this many multiply-adds per step (batch size × parameters), one thread is faster
SMALL_STEP = 2**20


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
    unwrapped = getattr(type(optimizer).step, "__wrapped__", None)
    if (unwrapped is None or "step" in vars(optimizer)  # (wrapped, e.g. by a torch LRScheduler)
            or optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
            or getattr(torch_optimizer, "_global_optimizer_pre_hooks", True)
            or getattr(torch_optimizer, "_global_optimizer_post_hooks", True)):
        return optimizer.step
    return unwrapped.__get__(optimizer)


class ProgressBar:
    """A progress bar over epochs (of one run or several) showing the bias-corrected EWA of the
    mini-batch cost and α."""

    def __init__(self, total: int, initial: int = 0):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="epoch", dynamic_ncols=True,
                        leave=False, disable=None)

    def describe(self, label: str) -> None:
        self.bar.set_description(label)

    def on_epoch_end(self, run: Fit) -> None:
        self.bar.set_postfix(cost=f"{run.smoothed_cost.current():.4g}", lr=f"{run.lr:.3g}",
                             refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _prepare_data(model, X, Y):
    """X and Y as tensors on the model's device, X in its dtype; checks shapes and values.
    Arrays read from disk (:class:`gdlab.data.memmap.MemmapArray`) stay there: their rows are read
    and converted per mini-batch, and not checked ahead."""
    if is_lazy(X) or is_lazy(Y):
        X, Y = (a if is_lazy(a) else torch.as_tensor(a) for a in (X, Y))
        if len(X.shape) < 1 or X.shape[0] == 0:
            raise ValueError("X must hold at least one example (one row)")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X and Y must have the same number of rows (examples), got "
                             f"{X.shape[0]} and {Y.shape[0]}")
        return X, Y
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
        callbacks=(), progress=True, batch_order=None, num_threads=None, on_divergence=None,
        divergence_factor=10.0, reduce_factor=0.5, run_dir=None, checkpoint_every=10,
        resume=False, shard_optimizer_state=False, backprop="auto") -> History:
    """Train ``model`` on rows of ``X`` (examples) with targets ``Y`` by mini-batch gradient
    descent with ``optimizer``, and return its :class:`History`.

    Each epoch shuffles the rows (seeded by ``seed``; or ``batch_order(epoch_num)`` gives the
    permutation), cuts them into mini-batches of ``batch_size`` (m: batch GD, 1: SGD) and takes
    one optimizer step per mini-batch on the gradient of its mean cost J^{t}. ``schedule``
    (``schedule(epoch_num, t) -> α``) sets α at the start of each epoch, or each mini-batch
    for per-step schedules. ``loss(output, Y_t)`` defaults to the cost the model's output
    implies. ``backprop``: "auto" computes the gradients of a gdlab MLP on its default cost
    in closed form (:mod:`gdlab.backprop`, several times faster than autograd for small
    networks, same numbers) and uses autograd otherwise; "closed_form" or "autograd" force one.
    ``callbacks`` get the running :class:`Fit` at ``on_fit_start``,
    ``on_epoch_end`` (or are called, if plain functions) and ``on_fit_end``.
    ``num_threads`` sets torch's CPU threads while it runs; by default small steps run on one
    thread, which is faster for them, and larger ones keep torch's setting.

    Reliability (see docs/reliability.md):

    - ``on_divergence``: None (no check), "stop" or "reduce". A non-finite mini-batch cost, or
      an epoch cost above ``divergence_factor`` × the smoothed cost (and above the first
      epoch's cost), restores the state at the start of that epoch; "stop" then raises
      :class:`Diverged` naming the epoch and α, "reduce" retries the epoch with α multiplied
      by ``reduce_factor``. Either way a "diverged" event goes into ``History.events``.
    - ``run_dir``: a folder for checkpoints (every ``checkpoint_every`` epochs, at the end and
      on Ctrl-C, which then finishes the epoch and raises KeyboardInterrupt), ``status.json``
      and live α requests (:func:`gdlab.request_lr`). ``resume``: True continues from the
      newest good checkpoint in ``run_dir`` (if any); or a checkpoint file, a run folder or a
      :meth:`Fit.state_dict`.

    Scaling out (see docs/scaling.md): ``X`` and ``Y`` may be :class:`gdlab.data.memmap.MemmapArray`
    (``.npy`` files read per mini-batch). Run under ``torchrun`` (or
    :func:`gdlab.distributed.launch`) the fit is data-parallel: each mini-batch is split across
    the ranks, the gradients are summed so that every rank takes the step one process would
    take, and only rank 0 writes checkpoints, status and the progress bar;
    ``shard_optimizer_state`` then keeps each rank's share of the moments only
    (``ZeroRedundancyOptimizer``).
    """
    return Fit(model, X, Y, optimizer, epochs=epochs, batch_size=batch_size, loss=loss,
               schedule=schedule, seed=seed, callbacks=callbacks, progress=progress,
               batch_order=batch_order, num_threads=num_threads, on_divergence=on_divergence,
               divergence_factor=divergence_factor, reduce_factor=reduce_factor,
               run_dir=run_dir, checkpoint_every=checkpoint_every, resume=resume,
               shard_optimizer_state=shard_optimizer_state, backprop=backprop).run()
