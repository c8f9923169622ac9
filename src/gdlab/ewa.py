"""Exponentially weighted averages — the one primitive behind Momentum, RMSProp, Adam, cost
smoothing and plateau detection.

    v_t = β·v_{t-1} + (1-β)·θ_t      (v_0 = 0; averages over about 1/(1-β) steps)
    v̂_t = v_t / (1-β^t)              (bias correction)
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._checks import check_beta


def ewa_step(v, theta, beta):
    """v_t = β·v_{t-1} + (1-β)·θ_t. A tensor ``v`` is updated in place and returned; for
    numbers the new average is returned."""
    if isinstance(v, torch.Tensor):
        if isinstance(beta, torch.Tensor):  # β as a tensor (compiled, or one per configuration)
            if torch.compiler.is_compiling():  # one loop: as written it runs faster than lerp's
                return v.mul_(beta).add_((1 - beta) * theta)  # two-sided form (~20 % on a CPU)
            # eager: the same average written θ + β·(v - θ), one operation (torch.lerp), not four
            return torch.lerp(theta, v, beta, out=v)
        return v.mul_(beta).add_(theta, alpha=1 - beta)  # (rounded as torch.optim rounds it)
    return beta * v + (1 - beta) * theta


def _copy(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


def bias_correction(beta, t):
    """1 - β^t: dividing an average started at v_0 = 0 by this removes its start-up bias."""
    return 1 - beta**t


class EWA:
    """Streaming exponentially weighted average of floats or tensors of any shape.

    >>> avg = EWA(0.98)
    >>> avg.update(40.0)            # 0.98·0 + 0.02·40
    0.8
    >>> EWA(0.98, bias_correction=True).update(40.0)
    40.0
    """

    def __init__(self, beta: float, bias_correction: bool = False):
        self.beta = check_beta("beta", beta)
        self.bias_correction = bool(bias_correction)
        self.t = 0
        self.value = 0.0

    @property
    def window(self) -> float:
        """Number of steps the average roughly spans: 1/(1-β)."""
        return 1 / (1 - self.beta)

    def update(self, theta):
        """Add θ_t and return the current average, v_t or v̂_t if bias-corrected."""
        if isinstance(theta, torch.Tensor) and not isinstance(self.value, torch.Tensor):
            dtype = torch.promote_types(theta.dtype, torch.float32)
            self.value = torch.zeros_like(theta, dtype=dtype)
        self.t += 1
        self.value = ewa_step(self.value, theta, self.beta)
        return self.current()

    def current(self):
        """The average now: v_t, or v̂_t = v_t/(1-β^t) with bias correction (0 if t = 0)."""
        if not self.bias_correction or self.t == 0:
            return self.value.clone() if isinstance(self.value, torch.Tensor) else self.value
        return self.value / bias_correction(self.beta, self.t)

    def state_dict(self) -> dict:
        return {"beta": self.beta, "bias_correction": self.bias_correction, "t": self.t,
                "value": _copy(self.value)}

    def load_state_dict(self, state: dict) -> None:
        self.beta, self.bias_correction = state["beta"], state["bias_correction"]
        # a copy: update() works in place and must not change the saved state
        self.t, self.value = state["t"], _copy(state["value"])

    def __repr__(self) -> str:
        return f"EWA(beta={self.beta}, bias_correction={self.bias_correction}, t={self.t})"


def ewa(series, beta: float, bias_correction: bool = False):
    """The whole series smoothed: out[i] = v_t (or v̂_t) after the i-th point.

    A numpy array gives a numpy array, a tensor a tensor (same dtype and device). Non-finite
    points pass through unchanged and do not update the average (nor count in t), the rule
    TensorBoard's smoothing uses.
    """
    is_tensor = isinstance(series, torch.Tensor)
    values = series.detach().cpu().numpy() if is_tensor else np.asarray(series)
    if values.ndim != 1:
        raise ValueError(f"series must be one-dimensional, got shape {tuple(values.shape)}")
    average = EWA(beta, bias_correction)
    out = values.astype(np.float64 if values.dtype.kind != "f" else values.dtype, copy=True)
    for i, theta in enumerate(values.tolist()):
        if math.isfinite(theta):
            out[i] = average.update(theta)
    if is_tensor:
        return torch.as_tensor(out, device=series.device).to(
            series.dtype if series.is_floating_point() else torch.get_default_dtype())
    return out
