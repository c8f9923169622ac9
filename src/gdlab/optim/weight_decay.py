"""Adam with L2 weight decay against AdamW, from a real run of both: the data of the figure that
shows why the two differ.

On J(W) = ½·Σᵢ hᵢ·(Wᵢ - 1)², a bowl whose curvatures hᵢ span several decades, both start from
W = 0 with the same α and λ. With L2 the decay term λ·W goes into dW and through Adam's
division by √Ŝ + ε, so Adam settles where the whole gradient hᵢ·(Wᵢ - 1) + λ·Wᵢ is 0:
Wᵢ = hᵢ/(hᵢ + λ) — a coordinate the loss barely constrains (hᵢ ≪ λ) is decayed to nothing,
a steep one not at all. Decoupled, W shrinks by α·λ·W beside Adam's normalized step, the same
fraction for every coordinate: all of them settle at about the same W, whatever hᵢ.
"""

from __future__ import annotations

import torch

from .optimizers import Adam, AdamW


def compare_weight_decay(curvatures=None, *, lr: float = 0.01, weight_decay: float = 0.1,
                         steps: int = 5000) -> dict:
    """Train Adam(weight_decay=λ) and AdamW(weight_decay=λ) on the bowl above; returns
    {"h": the curvatures, "l2": Adam's final W, "decoupled": AdamW's final W,
    "l2_fixed_point": h/(h + λ)}, each a list in the order of h (default: 41 curvatures from
    1e-4 to 1e2, spaced evenly on a log scale)."""
    h = torch.logspace(-4, 2, 41, dtype=torch.float64) if curvatures is None else \
        torch.as_tensor(curvatures, dtype=torch.float64)
    finals = {}
    for key, cls in (("l2", Adam), ("decoupled", AdamW)):
        W = torch.nn.Parameter(torch.zeros_like(h))
        optimizer = cls([W], lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            optimizer.zero_grad()
            (0.5 * (h * (W - 1) ** 2).sum()).backward()
            optimizer.step()
        finals[key] = W.detach().tolist()
    return {"h": h.tolist(), **finals, "l2_fixed_point": (h / (h + weight_decay)).tolist()}
