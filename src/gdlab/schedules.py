"""Learning-rate decay schedules.

A schedule is called as ``schedule(epoch_num, t=None) -> α`` with ``epoch_num`` counted from 1
(0 means "before the first epoch" and gives α₀) and ``t`` the mini-batch step counted from 1.
All but ``plateau`` are pure functions of (epoch_num, t):

    constant:      α = α₀
    inverse time:  α = α₀ / (1 + decay_rate·⌊epoch_num / time_interval⌋)
    exponential:   α = base^epoch_num · α₀
    inverse sqrt:  α = k/√epoch_num · α₀   or   k/√t · α₀
    staircase:     α = α₀ · factor^⌊(epoch_num-1)/every⌋
    plateau:       α := factor·α when the bias-corrected EWA of the epoch cost stops improving

With α₀ = 0.2 and decay_rate = 1, inverse time gives 0.1, 0.067, 0.05, 0.04 in epochs 1..4.
``ScheduleLR`` applies any schedule to any torch optimizer; ``parse_schedule`` reads the
command line's ``name:key=value,...`` form.
"""

from __future__ import annotations

import inspect
import math
import numbers

import torch

from ._checks import check_beta, check_choice, check_nonnegative, check_positive, check_positive_int
from .ewa import EWA


def _is_integer(value) -> bool:
    # any integer type (numpy's too, as the course's loops pass them), but not a bool
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_epoch(epoch_num, t) -> tuple[int, int | None]:
    """(epoch_num, t) as Python ints, or a ValueError naming the one that is not allowed."""
    if not _is_integer(epoch_num) or epoch_num < 0:
        raise ValueError(f"epoch_num must be an integer >= 0 (counted from 1), got {epoch_num!r}")
    if t is not None and (not _is_integer(t) or t < 1):
        raise ValueError(f"t must be an integer >= 1 (mini-batch steps counted from 1), got {t!r}")
    return int(epoch_num), None if t is None else int(t)


class Schedule:
    """Base of the built-in schedules: ``lr0`` is α₀; ``per_step`` says whether α depends on t."""

    per_step = False

    def __init__(self, lr0: float):
        self.lr0 = check_positive("lr0", lr0)

    def __call__(self, epoch_num: int, t: int | None = None) -> float:
        return self.lr(*_check_epoch(epoch_num, t))

    def lr(self, epoch_num: int, t: int | None) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _args(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._args().items())
        return f"{type(self).__name__}({args})"

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class constant(Schedule):
    """α = α₀"""

    def lr(self, epoch_num, t):
        return self.lr0


class inverse_time(Schedule):
    """α = α₀ / (1 + decay_rate·⌊epoch_num / time_interval⌋)"""

    def __init__(self, lr0: float, decay_rate: float, time_interval: int = 1):
        super().__init__(lr0)
        self.decay_rate = check_nonnegative("decay_rate", decay_rate)
        self.time_interval = check_positive_int("time_interval", time_interval)

    def lr(self, epoch_num, t):
        return self.lr0 / (1 + self.decay_rate * (epoch_num // self.time_interval))


class exponential(Schedule):
    """α = base^epoch_num · α₀"""

    def __init__(self, lr0: float, base: float = 0.95):
        super().__init__(lr0)
        if not isinstance(base, int | float) or not 0 < base <= 1:
            raise ValueError(f"base must be in (0, 1], got {base!r}")
        self.base = base

    def lr(self, epoch_num, t):
        return self.base**epoch_num * self.lr0


class inverse_sqrt(Schedule):
    """α = k/√epoch_num · α₀  (per="epoch")   or   α = k/√t · α₀  (per="step")"""

    def __init__(self, lr0: float, k: float = 1.0, per: str = "epoch"):
        super().__init__(lr0)
        self.k = check_positive("k", k)
        self.per = check_choice("per", per, ("epoch", "step"))
        self.per_step = per == "step"

    def _args(self):
        return {"lr0": self.lr0, "k": self.k, "per": self.per}

    def lr(self, epoch_num, t):
        if self.per == "step":
            if t is None:
                if epoch_num == 0:
                    return self.lr0
                raise ValueError("inverse_sqrt(per='step') needs t, the mini-batch step")
            return self.k / math.sqrt(t) * self.lr0
        if epoch_num == 0:
            return self.lr0
        return self.k / math.sqrt(epoch_num) * self.lr0


class staircase(Schedule):
    """α = α₀ · factor^⌊(epoch_num-1)/every⌋   (e.g. halve every 10 epochs)"""

    def __init__(self, lr0: float, factor: float = 0.5, every: int = 10):
        super().__init__(lr0)
        if not isinstance(factor, int | float) or not 0 < factor <= 1:
            raise ValueError(f"factor must be in (0, 1], got {factor!r}")
        self.factor = factor
        self.every = check_positive_int("every", every)

    def lr(self, epoch_num, t):
        return self.lr0 * self.factor ** (max(epoch_num - 1, 0) // self.every)


class plateau(Schedule):
    """Automatic manual decay: α := factor·α when the smoothed epoch cost stalls.

    Feed it each epoch's cost with ``observe(cost)``; it keeps the bias-corrected EWA (β) of
    the cost and cuts α after ``patience`` epochs without a relative improvement of at least
    ``threshold`` over the best smoothed cost. α never goes below ``min_lr``. This is the one
    stateful schedule: calling it returns the current α whatever the epoch.
    """

    def __init__(self, lr0: float, factor: float = 0.5, patience: int = 10, beta: float = 0.9,
                 threshold: float = 1e-4, min_lr: float = 0.0):
        super().__init__(lr0)
        if not isinstance(factor, int | float) or not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        self.factor = factor
        self.patience = check_positive_int("patience", patience)
        self.beta = check_beta("beta", beta)
        self.threshold = check_nonnegative("threshold", threshold)
        self.min_lr = check_nonnegative("min_lr", min_lr)
        self._reset()

    def _reset(self):
        self._smoothed = EWA(self.beta, bias_correction=True)
        self._current = self.lr0
        self._best = math.inf
        self._stalled = 0

    def observe(self, cost: float) -> float:
        """Record an epoch cost; returns α for the next epoch."""
        if not math.isfinite(cost):
            return self._current
        smoothed = self._smoothed.update(float(cost))
        if smoothed < self._best * (1 - self.threshold):
            self._best, self._stalled = smoothed, 0
        else:
            self._stalled += 1
            if self._stalled >= self.patience:
                self._current = max(self._current * self.factor, self.min_lr)
                self._stalled = 0
                self._best = smoothed
        return self._current

    def lr(self, epoch_num, t):
        return self._current

    def state_dict(self):
        return {"ewa": self._smoothed.state_dict(), "current": self._current,
                "best": self._best, "stalled": self._stalled}

    def load_state_dict(self, state):
        self._smoothed.load_state_dict(state["ewa"])
        self._current, self._best = state["current"], state["best"]
        self._stalled = state["stalled"]


SCHEDULES = {cls.__name__: cls for cls in
             (constant, inverse_time, exponential, inverse_sqrt, staircase, plateau)}


def _parse_value(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_schedule(text: str, lr0: float) -> Schedule:
    """Read ``"name"`` or ``"name:key=value,key=value"``, e.g.
    ``"inverse_time:decay_rate=1,time_interval=1000"``, into a schedule starting at ``lr0``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"schedule must be a non-empty string like 'inverse_time:decay_rate=1', "
                         f"got {text!r}")
    name, _, rest = text.strip().partition(":")
    name = name.strip().replace("-", "_")
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; allowed: {', '.join(SCHEDULES)}")
    kwargs = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise ValueError(f"malformed schedule option {item!r} in {text!r}: "
                             f"expected key=value")
        if key == "lr0":
            raise ValueError(f"schedule {text!r}: give α₀ with --lr, not lr0=")
        kwargs[key] = _parse_value(value.strip())
    parameters = inspect.signature(SCHEDULES[name]).parameters
    allowed = [p for p in parameters if p != "lr0"]
    unknown = [key for key in kwargs if key not in allowed]
    if unknown:
        raise ValueError(f"schedule {name!r} takes options {', '.join(allowed) or 'none'}; "
                         f"got {', '.join(unknown)}")
    missing = [p for p in allowed
               if parameters[p].default is inspect.Parameter.empty and p not in kwargs]
    if missing:
        raise ValueError(f"schedule {name!r} needs option {', '.join(missing)}, e.g. "
                         f"'{name}:{missing[0]}=1'")
    return SCHEDULES[name](lr0, **kwargs)


class ScheduleLR(torch.optim.lr_scheduler.LRScheduler):
    """Applies a gdlab schedule to any torch optimizer in a plain PyTorch loop.

    Call ``step()`` after each epoch (as with torch's schedulers); for schedules that depend on
    the mini-batch step t (``per_step``), call ``step_batch()`` after each mini-batch instead.
    Every param group gets α = schedule(epoch_num, t) scaled by its initial lr relative to the
    first group's, so one group simply follows the schedule. Epoch e and mini-batch t (both
    counted from 1) train at schedule(e, t), as in ``fit``; ``self.t`` counts the mini-batches
    done.

    >>> opt = torch.optim.SGD(model.parameters(), lr=0.2)
    >>> sched = ScheduleLR(opt, inverse_time(0.2, decay_rate=1))
    >>> for epoch in range(4): train_one_epoch(); sched.step()
    """

    def __init__(self, optimizer, schedule):
        self.schedule = schedule
        self.t = 0
        super().__init__(optimizer)

    def get_lr(self):
        alpha = self.schedule(self.last_epoch + 1, self.t + 1)
        first = self.base_lrs[0]
        return [alpha * (base / first) for base in self.base_lrs]

    def step_batch(self):
        """Count one more mini-batch done and set α for the next one, step t + 1."""
        self.t += 1
        alpha = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, alpha, strict=True):
            group["lr"] = lr
        self._last_lr = alpha
