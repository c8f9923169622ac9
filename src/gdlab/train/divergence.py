"""The divergence guard: after each epoch, a non-finite mini-batch cost, or an epoch cost above
``factor`` × the smoothed cost before the epoch (and above the initial cost J on all examples,
so that noise on a cost near zero does not count), restores the state at the epoch's start;
then "stop" ends the run (:class:`Diverged`) and "reduce" retries the epoch with α cut by
``reduce_factor``. Each divergence is a ``"diverged"`` event in the history."""

from __future__ import annotations

import math

from .._checks import check_positive

#: on_divergence="reduce" gives up after this many cuts of α in one epoch
MAX_REDUCTIONS = 10
ON_DIVERGENCE = (None, "stop", "reduce")


class Diverged(RuntimeError):
    """The cost of a fit became non-finite or exploded and ``on_divergence="stop"`` ended it.

    ``event`` is the ``"diverged"`` entry of ``history.events`` (epoch, t, α, cost, reason);
    the model holds the state at the start of the epoch that diverged."""

    def __init__(self, message: str, event: dict, history):
        super().__init__(message)
        self.event, self.history = event, history


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


class DivergenceGuard:
    """``on_divergence``: "stop" or "reduce" (see the module's docstring)."""

    def __init__(self, on_divergence, divergence_factor=10.0, reduce_factor=0.5):
        self.action, self.factor, self.reduce_factor = check_divergence_options(
            on_divergence, divergence_factor, reduce_factor)
        self.initial_cost = None  # J on all examples before training (the reference)
        self.reductions = 0  # cuts of α in the current epoch

    def problem(self, history, t: int, snapshot) -> dict | None:
        """What went wrong in the epoch just run (since ``snapshot``; ``t``: its last
        mini-batch), or None."""
        start = snapshot["history"]["costs"]
        for i, cost in enumerate(history.costs[start:]):
            if not math.isfinite(cost):
                t = snapshot["t"] + i + 1
                return {"t": t, "cost": cost, "reason": f"the cost of mini-batch t = {t} is "
                        f"{cost}"}
        cost, initial = history.epoch_costs[-1], self.initial_cost
        reference, what = snapshot["smoothed"], "the smoothed cost"
        if reference is None:
            reference, what = initial, "the initial cost"
        if (reference is not None and initial is not None
                and cost > self.factor * reference and cost > initial):
            return {"t": t, "cost": cost,
                    "reason": f"the epoch's cost {cost:.6g} is over {self.factor:g}× {what} "
                              f"{reference:.6g}"}
        return None

    def recover(self, run, snapshot, problem) -> bool:
        """Restore the start of the diverged epoch and record it; True: retry it with α cut,
        False: stop (``run.diverged`` is the event)."""
        self.reductions += 1
        epoch, lr, history = run.epoch_num, run.lr, run.history
        manual = run.learning_rate.manual
        manual_changes = [e for e in history.events[snapshot["history"]["events"]:]
                          if e.get("event") == "set_lr"]
        run.restore(snapshot)
        history.events.extend(manual_changes)  # they happened: keep them on record
        event = {"epoch": epoch, "t": problem["t"], "event": "diverged", "lr": lr,
                 "cost": problem["cost"], "reason": problem["reason"]}
        head = f"diverged in epoch {epoch} at α = {lr:.6g}: {problem['reason']}"
        if self.action == "reduce" and self.reductions <= MAX_REDUCTIONS:
            run.learning_rate.cut(self.reduce_factor, manual, snapshot["pending_lr"])
            new_lr = lr * self.reduce_factor
            event.update(action="reduce", new_lr=new_lr,
                         message=f"{head}; retrying epoch {epoch} from its start with "
                                 f"α = {new_lr:.6g}")
            history.events.append(event)
            return True
        if self.action == "reduce":
            advice = f"still diverging after {MAX_REDUCTIONS} cuts of α in this epoch"
        else:
            advice = "a smaller α, or on_divergence='reduce', avoids this"
        event.update(action="stop", message=f"{head}; the state at the start of epoch {epoch} "
                                            f"was restored; {advice}")
        history.events.append(event)
        run.diverged = event
        return False


def full_cost(run) -> float:
    """J of ``run``'s model on all its examples (in eval mode, in chunks of its source): the
    divergence guard's reference for the first epoch."""
    from .callbacks.validation import evaluate

    return evaluate(run, run.source, max(run.batch_size or 0, 4096))[0]
