"""The one owner of α in a run: nothing else writes the optimizer's ``param_groups[i]["lr"]``.

α of a mini-batch comes from, in order of precedence:

    manual:    α set by hand while the run goes (``Fit.set_lr``, ``gdlab lr``: the lecture's
               manual decay), from the next mini-batch on
    schedule:  schedule(epoch_num, t) at each epoch's start (or each step, per-step schedules)
    initial:   the optimizer's own α

times ``scale``, the product of the cuts made after divergences (``on_divergence="reduce"``;
a manual α is cut itself instead). Param groups keep the ratios of their initial α's to the
first group's.
"""

from __future__ import annotations

from .._checks import check_positive


class LearningRate:
    """α of ``optimizer``'s param groups for a run with ``schedule`` (None: constant); records
    manual changes as ``"set_lr"`` events in ``history``."""

    def __init__(self, optimizer, schedule, history):
        self.optimizer, self.schedule, self.history = optimizer, schedule, history
        self.per_step = getattr(schedule, "per_step", False)
        self.base = [group["lr"] for group in optimizer.param_groups]
        self.manual = None  # α set by hand, in force
        self.pending = None  # α asked for, applied at the next mini-batch
        self.scale = 1.0  # cuts after divergences
        self._shared = None  # data-parallel: the request rank 0 shared

    @property
    def current(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def request(self, lr) -> None:
        """Use α = lr from the next mini-batch on, in place of the schedule."""
        self.pending = check_positive("lr", lr)

    def _set(self, alpha: float) -> None:
        if self.manual is None and self.scale != 1.0:
            alpha = alpha * self.scale
        first = self.base[0]
        for group, base in zip(self.optimizer.param_groups, self.base, strict=True):
            group["lr"] = alpha * (base / first)

    def _take(self, lr, epoch_num: int, t: int) -> None:
        old, self.manual = self.current, lr
        self._set(lr)
        self.history.events.append({"epoch": epoch_num, "t": t, "event": "set_lr",
                                    "old_lr": old, "lr": lr})

    def apply_pending(self, epoch_num: int, t: int) -> None:
        """The requested α, in force from mini-batch ``t``."""
        lr, self.pending = self.pending, None
        self._take(lr, epoch_num, t)

    def start_epoch(self, epoch_num: int, t: int, *, data_parallel: bool = False) -> None:
        """α for epoch ``epoch_num`` whose first mini-batch is ``t``; recorded in the history.
        Data-parallel runs take only the request rank 0 shared (:meth:`share`)."""
        if data_parallel:
            lr, self._shared = self._shared, None
            if lr is not None:
                self._take(lr, epoch_num, t)
        elif self.pending is not None:
            self.apply_pending(epoch_num, t)
        if self.manual is not None:
            alpha = self.manual
        elif self.schedule is None:
            alpha = None if self.scale == 1.0 else self.base[0]
        else:
            alpha = self.schedule(epoch_num, t if self.per_step else None)
        if alpha is not None:
            self._set(alpha)
        self.history.lrs.append(self.current)

    def step(self, epoch_num: int, t: int) -> None:
        """A per-step schedule's α for mini-batch ``t`` (unless α was set by hand)."""
        if self.manual is None:
            self._set(self.schedule(epoch_num, t))

    def share(self, replicas, stop: bool) -> bool:
        """Data-parallel runs: rank 0's pending request and stop flag, sent to every rank (a
        collective); returns the stop flag."""
        pending = None
        if replicas.rank == 0:
            pending, self.pending = self.pending, None
        self._shared, stop = replicas.broadcast_object((pending, stop))
        return stop

    def cut(self, factor: float, manual_before, pending_before) -> None:
        """After a divergence, the state restored: α times ``factor`` — the manual α that the
        failed epoch ended with (``manual_before``; a request it applied, pending at its start
        as ``pending_before``, is dropped), or else the schedule's, through ``scale``."""
        if manual_before is not None:
            self.manual = manual_before * factor
            if self.pending == pending_before:
                self.pending = None
        else:
            self.scale *= factor

    def state_dict(self) -> dict:
        return {"manual_lr": self.manual, "pending_lr": self.pending, "lr_scale": self.scale}

    def load_state_dict(self, state: dict) -> None:
        self.manual, self.pending = state["manual_lr"], state["pending_lr"]
        self.scale = float(state["lr_scale"])
