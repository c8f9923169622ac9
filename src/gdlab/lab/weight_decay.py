"""Figure 8: why AdamW is not Adam with L2 weight decay, from real runs of both.

On J(W) = ½·Σᵢ hᵢ·(Wᵢ - 1)², a bowl whose curvatures hᵢ span six decades, both start from
W = 0 with the same α and λ. With L2 the decay term λ·W is added to dW and goes through Adam's
division by √Ŝ + ε, so Adam settles where the whole gradient hᵢ·(Wᵢ - 1) + λ·Wᵢ is 0:
Wᵢ = hᵢ/(hᵢ + λ) — a coordinate the loss barely constrains (hᵢ ≪ λ) is decayed to nothing, a
steep one not at all. Decoupled (AdamW), W shrinks by α·λ·W beside Adam's normalized step,
the same fraction for every coordinate: all of them settle at about the same W, whatever hᵢ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from ..optim import Adam, AdamW
from ..report.style import OPTIMIZER_COLORS, styled
from .landscape import descend


class _Bowl(torch.nn.Module):
    """J(W) = ½·Σᵢ hᵢ·(Wᵢ - 1)² as a model of W (from W = 0)."""

    def __init__(self, h):
        super().__init__()
        self.h = h
        self.W = torch.nn.Parameter(torch.zeros_like(h))

    def forward(self, _):
        return 0.5 * (self.h * (self.W - 1) ** 2).sum()


@dataclass
class WeightDecay:
    """The curvatures hᵢ, each optimizer's final Wᵢ, α, λ and the steps taken."""

    h: np.ndarray
    l2: np.ndarray
    decoupled: np.ndarray
    lr: float
    weight_decay: float
    steps: int

    @property
    def l2_fixed_point(self) -> np.ndarray:
        """Where Adam with L2 settles: hᵢ/(hᵢ + λ)."""
        return self.h / (self.h + self.weight_decay)


def weight_decay_data(curvatures=None, *, lr: float = 0.01, weight_decay: float = 0.1,
                      steps: int = 4000) -> WeightDecay:
    """Adam(weight_decay=λ) and AdamW(weight_decay=λ) trained on the bowl (default: 25
    curvatures from 1e-4 to 1e2, evenly spaced on a log scale)."""
    h = torch.logspace(-4, 2, 25, dtype=torch.float64) if curvatures is None else \
        torch.as_tensor(curvatures, dtype=torch.float64)
    finals = {}
    for key, cls in (("l2", Adam), ("decoupled", AdamW)):
        bowl = _Bowl(h)
        descend(bowl, cls(bowl.parameters(), lr=lr, weight_decay=weight_decay), steps)
        finals[key] = bowl.W.detach().numpy().copy()
    return WeightDecay(h.numpy(), finals["l2"], finals["decoupled"], lr, weight_decay, steps)


@styled
def weight_decay_figure(data: WeightDecay | None = None, **kwargs) -> Figure:
    """Final Wᵢ against the curvature hᵢ: Adam with L2 on the curve h/(h + λ), AdamW flat; the
    title says, measured, how far apart the two ends are for each."""
    data = data if data is not None else weight_decay_data(**kwargs)
    fig = Figure(figsize=(8.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    color = OPTIMIZER_COLORS["adam"]
    ax.plot(data.h, data.l2_fixed_point, linestyle="--", color="#6e7781", linewidth=1.2,
            label="h/(h + λ): where L2 settles")
    ax.plot(data.h, data.l2, marker="o", markersize=4, linewidth=0, color=color,
            label=f"Adam, weight_decay λ = {data.weight_decay:g} (L2: λ·W added to dW)")
    ax.plot(data.h, data.decoupled, marker="s", markersize=4, linewidth=1.2, color="#0072B2",
            label=f"AdamW, λ = {data.weight_decay:g} (decoupled: W ← W − α·λ·W)")
    ax.axvline(data.weight_decay, color="#bbbbbb", linewidth=0.8)
    ax.text(data.weight_decay, 0.5, "  h = λ", color="#6e7781", fontsize="small")
    ax.set(xscale="log", xlabel="curvature hᵢ of J along Wᵢ (how much the loss holds Wᵢ at 1)",
           ylabel=f"Wᵢ after {data.steps} steps (the loss's minimum: 1)", ylim=(-0.05, 1.1))
    ax.set_title(weight_decay_title(data), fontsize="medium")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def weight_decay_title(data: WeightDecay) -> str:
    """The figure's claim, from its numbers: L2's final W from the flattest to the steepest
    coordinate, against AdamW's."""
    return (f"Adam with L2 decays the flat coordinates away (W from {data.l2[0]:.3f} at "
            f"h = {data.h[0]:.0e} to {data.l2[-1]:.3f} at h = {data.h[-1]:.0e});\n"
            f"AdamW shrinks every coordinate alike (W from {data.decoupled.min():.3f} to "
            f"{data.decoupled.max():.3f})")
