"""The training loop: epochs × mini-batches from a batch source → gradients → one
``optimizer.step()`` each → callbacks.

    for epoch_num = 1, 2, ...:
        α from its owner (schedule, manual α, divergence cuts)        gdlab.train.lr
        for (X^{t}, Y^{t}) in the source's epoch:                     gdlab.data.batches
            t += 1; gradients of J^{t} into .grad; optimizer.step()   gdlab.train.gradients
        J = Σ_t m_t·J^{t} / m into the history                        gdlab.train.history
        divergence guard, then callbacks (checkpoint, live α, progress)

The loop does not know which source, gradient computation or callbacks it runs with.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

import torch
from torch.optim import optimizer as torch_optimizer

from .._checks import check_positive_int
from ..data.batches import (
    ShardedBatches,
    TensorBatches,
    batch_source,
    checked_order,
    shuffled_order,
    split,
)
from ..ewa import EWA
from ..losses import check_targets, default_loss, loss_name
from ..models import takes_indices
from . import gradients as gradient_paths
from .callbacks.progress import ProgressBar
from .callbacks.validation import Validation
from .divergence import Diverged, DivergenceGuard, full_cost
from .history import History, epoch_cost_of
from .lr import LearningRate
from .state import load_run_state, run_state

#: checkpoint_every=None: every 10 epochs, but at most one checkpoint a second
DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_SECONDS = 10, 1.0


class Fit:
    """A running fit. Callbacks receive it; ``set_lr`` changes α from the next mini-batch on
    (the lecture's manual decay) and ``stop()`` ends the run after the current epoch.

    ``state_dict()`` / ``load_state_dict()`` hold everything a run needs to continue bit for
    bit (model, optimizer, schedule, epoch_num, t, history, manual α, every RNG state); see
    :mod:`gdlab.train.callbacks.checkpoint`. Callbacks may define ``on_fit_start``,
    ``on_epoch_end``, ``on_fit_end`` and ``on_interrupt`` (after Ctrl-C, with the state at an
    epoch boundary). The arguments are those of :func:`gdlab.fit`.
    """

    def __init__(self, model, X, Y=None, optimizer=None, *, epochs, batch_size=64, loss=None,
                 schedule=None, seed=None, callbacks=(), progress=True, batch_order=None,
                 num_threads=None, on_divergence=None, divergence_factor=10.0,
                 reduce_factor=0.5, run_dir=None, checkpoint_every=None, resume=False,
                 shard_optimizer_state=False, backprop="auto", val=None, val_fraction=None):
        from . import distributed

        Y, optimizer = _data_and_optimizer(X, Y, optimizer)
        self.replicas = None  # data-parallel: the process group's helper (docs/scaling.md)
        if distributed.init_from_env():
            self.replicas = distributed.Replicas(model)
            _warn_batch_norm(model)
            self.replicas.broadcast_model(model)
            if shard_optimizer_state:
                optimizer = distributed.shard_optimizer_state(optimizer)
            if seed is None:
                seed = self.replicas.common_seed()  # the same shuffles on every rank
        self.rank = self.replicas.rank if self.replicas is not None else 0
        self.sharded = distributed.is_sharded(optimizer)
        self.model, self.optimizer = model, optimizer
        self.epochs = check_positive_int("epochs", epochs)
        if val_fraction is not None:
            X, Y, val = _held_out(X, Y, val, val_fraction, seed)
        self.source = _source(model, self.replicas, X, Y, batch_size, batch_order)
        self.batch_order = batch_order
        if loss is None:
            if isinstance(self.source, TensorBatches):
                check_targets(model, self.source.Y)
            self.forward, self.loss = default_loss(model)
        else:
            self.forward, self.loss = model, loss
        self.gradients = gradient_paths.choose(
            backprop, model, self.forward, self.loss, optimizer, replicas=self.replicas,
            in_memory=isinstance(self.source, TensorBatches))
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.callbacks = list(callbacks)
        if val is not None:  # first: the other callbacks see the epoch's validation figures
            self.callbacks.insert(0, Validation(_validation_source(model, val)))
        self.progress = progress and self.rank == 0
        self.history = History()
        self.learning_rate = LearningRate(optimizer, schedule, self.history)
        self.epoch_num, self.t = 0, 0
        self._stop = False
        self.smoothed_cost = EWA(0.98, bias_correction=True)
        self.num_threads = num_threads if num_threads is not None else \
            gradient_paths.auto_threads(model, self.batch_size,
                                        self.source.device or torch.device("cpu"))
        guard = DivergenceGuard(on_divergence, divergence_factor, reduce_factor)
        self.guard = guard if on_divergence is not None else None
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

            every, seconds = (checkpoint_every, 0.0) if checkpoint_every is not None else \
                (DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_SECONDS)
            self.callbacks += [Checkpoint(run_dir, every=every, min_seconds=seconds),
                               LiveControl(run_dir)]
        if resume is not False and resume is not None:
            from .callbacks.checkpoint import resume_from

            resume_from(self, resume)

    @property
    def m(self) -> int | None:
        """The number of training examples (None for an iterable of unknown length)."""
        return self.source.m

    @property
    def batch_size(self) -> int | None:
        return self.source.batch_size

    @property
    def world_size(self) -> int:
        """How many data-parallel processes train this model (1: a single process)."""
        return self.replicas.size if self.replicas is not None else 1

    @property
    def lr(self) -> float:
        return self.learning_rate.current

    def set_lr(self, lr: float) -> None:
        """Use α = lr from the next mini-batch on, in place of the schedule."""
        self.learning_rate.request(lr)

    def stop(self) -> None:
        self._stop = True

    def _call(self, hook: str) -> None:
        if self.sharded and self.run_dir is not None and hook != "on_interrupt":
            self.optimizer.consolidate_state_dict(to=0)  # (collective) for rank 0's checkpoint
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self)
            elif hook == "on_epoch_end" and callable(callback):
                callback(self)

    def _order(self):
        """The epoch's order of the m rows: ``batch_order(epoch_num)``, or a shuffle."""
        device = self.source.device
        if self.batch_order is not None:
            return checked_order(self.batch_order(self.epoch_num), self.m, device,
                                 "what batch_order returns")
        return shuffled_order(self.m, self.generator, device)

    def run_epoch(self) -> float:
        """Train one epoch over every mini-batch; returns its cost."""
        self.epoch_num += 1
        lr, gradients = self.learning_rate, self.gradients
        lr.start_epoch(self.epoch_num, self.t + 1, data_parallel=self.replicas is not None)
        epoch = self.source.epoch(self._order() if self.source.ordered else None,
                                  inference=gradients.inference)
        step = _bare_step(self.optimizer)
        if not (gradients.inference and self.model.training):  # (closed form: no mode to set)
            self.model.train()
        requests, per_step = self.replicas is None, lr.per_step  # (data-parallel: at epochs)
        outputs = []
        with gradients.context():
            for batch in epoch:
                if requests and lr.pending is not None:
                    lr.apply_pending(self.epoch_num, self.t + 1)
                self.t += 1
                if per_step:
                    lr.step(self.epoch_num, self.t)
                outputs.append(gradients(*batch))
                step()
        if not outputs:
            raise ValueError(f"the data yielded no mini-batch in epoch {self.epoch_num}")
        return self._end_epoch(gradients.costs(outputs, epoch), epoch.sizes)

    def _end_epoch(self, costs, sizes) -> float:
        """Record the epoch's mini-batch costs J^{t} (a tensor) and return its cost."""
        costs = costs.to("cpu", torch.float64).numpy()
        epoch_cost = float(epoch_cost_of(costs, sizes))
        costs = costs.tolist()
        self.history.costs.extend(costs)
        self.history.epoch_costs.append(epoch_cost)
        if self.history.loss is None:
            self.history.loss = loss_name(self.loss)
        for c in costs:
            self.smoothed_cost.update(c)
        if hasattr(self.learning_rate.schedule, "observe"):
            self.learning_rate.schedule.observe(epoch_cost)
        return epoch_cost

    def _share_controls(self) -> None:
        """Data-parallel runs: rank 0's live α request and stop flag, shared at an epoch
        boundary, so that every rank trains with the same α."""
        if self.replicas is not None:
            self._stop = self.learning_rate.share(self.replicas, self._stop)

    def run(self) -> History:
        with gradient_paths.torch_threads(self.num_threads):
            return self._run()

    def _run(self) -> History:
        # a resumed run's times continue from where its checkpoint left them
        start = time.perf_counter() - (self.history.times[-1] if self.history.times else 0.0)
        bar = ProgressBar(self.epochs, initial=self.epoch_num) if self.progress else None
        if bar is not None:
            self.callbacks.insert(0, bar)
        self.running, self.interrupted, self.diverged = True, False, None
        previous_handler, snapshot, guard = None, None, self.guard
        try:
            if guard is not None and guard.initial_cost is None:
                guard.initial_cost = full_cost(self)
            self._call("on_fit_start")
            self._share_controls()
            if self.catch_sigint:
                previous_handler = _catch_sigint(self)
            while self.epoch_num < self.epochs and not self._stop:
                keep = guard is not None or self.keep_snapshots
                snapshot = self.snapshot() if keep else None
                self._in_epoch = True
                self.run_epoch()
                if guard is not None:
                    problem = guard.problem(self.history, self.t, snapshot)
                    if problem is not None:
                        self._in_epoch = False
                        if guard.recover(self, snapshot, problem):
                            continue  # retry the epoch with a smaller α
                        break
                    guard.reductions = 0
                self.history.times.append(time.perf_counter() - start)
                self._in_epoch = False
                self._call("on_epoch_end")
                self._share_controls()
            self._call("on_fit_end")
        except KeyboardInterrupt:
            self.interrupted = True
            if self._in_epoch and snapshot is not None:
                self.restore(snapshot)  # abandon the epoch: back to its start, consistent
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

    def state_dict(self) -> dict:
        """Everything needed to continue this run bit for bit: tensors and plain Python values
        only, so ``torch.load(..., weights_only=True)`` reads it back. Tensors are copies."""
        return {**run_state(self), "history": self.history.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (from :meth:`state_dict`, e.g. a checkpoint): same data size
        and batch size, same model and optimizer. Raises ValueError if it does not fit."""
        load_run_state(self, state)
        history = History.from_state_dict(state["history"])
        for name in ("costs", "epoch_costs", "lrs", "times", "events", "metrics", "loss"):
            setattr(self.history, name, getattr(history, name))

    def snapshot(self) -> dict:
        """The state at the start of an epoch, in memory, to go back to (history by length)."""
        state = run_state(self, local=True)
        state["history"] = self.history._lengths()
        state["smoothed"] = self.smoothed_cost.current() if self.smoothed_cost.t else None
        return state

    def restore(self, snapshot) -> None:
        """Back to ``snapshot`` (a live α request that came since stays pending)."""
        unapplied = self.learning_rate.pending
        load_run_state(self, snapshot)
        self.history._truncate(snapshot["history"])
        if unapplied is not None:
            self.learning_rate.pending = unapplied



def _catch_sigint(run):
    """Ctrl-C: finish the epoch, then stop (callbacks save a checkpoint); a second Ctrl-C
    raises KeyboardInterrupt at once. Returns the handler to restore (None: not set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigint(signum, frame):
        if run.interrupted:
            raise KeyboardInterrupt
        run.interrupted, run._stop = True, True
        print(f"{chr(10) if run.progress else ''}gdlab: Ctrl-C — stopping at the end "
              f"of epoch {run.epoch_num} and saving a checkpoint (Ctrl-C again to stop at "
              f"once)", file=sys.stderr, flush=True)

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, on_sigint)
    return previous if previous is not None else signal.default_int_handler


def _source(model, replicas, X, Y, batch_size, batch_order):
    """The batch source of the data, on the model's device in its dtype; each process's
    shard of it in a data-parallel run."""
    if Y is not None:
        check_positive_int("batch_size", batch_size)
    parameter = next(model.parameters(), None)
    source = batch_source(X, Y, batch_size,
                          device=parameter.device if parameter is not None else None,
                          dtype=parameter.dtype if parameter is not None else None,
                          indices=takes_indices(model))
    if not source.ordered and (batch_order is not None or replicas is not None):
        what = "batch_order" if batch_order is not None else "data-parallel training"
        raise ValueError(f"{what} needs the data as tensors X, Y (gdlab orders their "
                         f"rows); an iterable of mini-batches such as a DataLoader keeps "
                         f"its own order")
    return ShardedBatches(source, replicas) if replicas is not None else source


def _validation_source(model, val):
    """The batch source of ``val``: (X, Y) tensors, a Dataset or a DataLoader."""
    parameter = next(model.parameters(), None)
    where = {"device": parameter.device if parameter is not None else None,
             "dtype": parameter.dtype if parameter is not None else None,
             "indices": takes_indices(model)}
    if isinstance(val, tuple | list) and len(val) == 2 and not isinstance(val[0], tuple):
        return batch_source(val[0], val[1], 1, **where)
    return batch_source(val, **where)


def _held_out(X, Y, val, fraction, seed):
    """(X, Y, val) with ``fraction`` of the rows of X, Y held out as ``val``."""
    if val is not None:
        raise ValueError("give val (validation data) or val_fraction (a share of the training "
                         "data held out), not both")
    if Y is None:
        raise ValueError("val_fraction holds out rows of tensors X, Y; with a DataLoader or "
                         "Dataset, give val= (a second one) instead")
    X, Y, X_val, Y_val = split(X, Y, fraction, seed)
    return X, Y, (X_val, Y_val)


def _warn_batch_norm(model) -> None:
    """Data-parallel training equals one process but for batch normalization in training mode,
    which normalizes each process's share of a mini-batch by its own statistics (as DDP does;
    torch's SyncBatchNorm, CUDA only, shares them)."""
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        import warnings

        warnings.warn("the model has batch normalization: in data-parallel training each "
                      "process normalizes its share of a mini-batch by its own statistics, so "
                      "the run differs from one process (SyncBatchNorm, on CUDA, shares them)",
                      stacklevel=3)


def _data_and_optimizer(X, Y, optimizer):
    """(Y, optimizer) from ``fit``'s arguments: ``fit(model, X, Y, optimizer)``, or a batch
    source or DataLoader as X with the optimizer next (``fit(model, loader, optimizer)``) or
    by name (``fit(model, loader, optimizer=...)``)."""
    if isinstance(Y, torch.optim.Optimizer) or (optimizer is None and hasattr(Y, "step")
                                                 and hasattr(Y, "param_groups")):
        Y, optimizer = None, Y
    if optimizer is None:
        raise TypeError(f"fit needs an optimizer: fit(model, X, Y, optimizer, ...) or "
                        f"fit(model, loader, optimizer, ...); got none for data "
                        f"{type(X).__name__}")
    return Y, optimizer


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
