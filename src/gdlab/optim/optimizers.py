"""GD, Momentum, RMSProp and Adam as ``torch.optim.Optimizer`` subclasses.

Each class validates its hyperparameters, names its state tensors and hands them to its rule
in :mod:`gdlab.optim.rules`; param groups, closures, ``state_dict`` and torch's LR schedulers
work as with any torch optimizer. The state of a parameter is ``t`` (its step count) and the
moment tensors (``v``, ``S``), all starting at 0.
"""

from __future__ import annotations

import torch

from .._checks import check_beta, check_choice, check_nonnegative, check_positive
from . import rules


class RuleOptimizer(torch.optim.Optimizer):
    """Applies ``rule`` to every parameter that has a gradient.

    Subclasses set ``moments`` (names of the state tensors, zero at the start) and implement
    ``apply(W, dW, state, group)`` which calls their rule.
    """

    moments: tuple[str, ...] = ()

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for W in group["params"]:
                if W.grad is None:
                    continue
                if W.grad.is_sparse:
                    raise TypeError(f"{type(self).__name__} does not support sparse gradients")
                state = self.state[W]
                if not state:
                    state["t"] = 0
                    for name in self.moments:
                        state[name] = torch.zeros_like(W, memory_format=torch.preserve_format)
                state["t"] += 1
                self.apply(W, W.grad, state, group)
        return loss

    def apply(self, W, dW, state, group):  # pragma: no cover - every subclass defines it
        raise NotImplementedError


class GD(RuleOptimizer):
    """Gradient descent: W := W - α·dW (batch GD, mini-batch GD or SGD by the batch size).

    Args:
        lr: α, the learning rate (> 0).
    """

    def __init__(self, params, lr: float = 0.01):
        super().__init__(params, {"lr": check_positive("lr", lr)})

    def apply(self, W, dW, state, group):
        rules.gd(W, dW, lr=group["lr"])


class Momentum(RuleOptimizer):
    """Gradient descent with momentum.

    form "ewa" (the lecture's):  v := β·v + (1-β)·dW ;  W := W - α·v
    form "sum" (torch's SGD):    v := β·v + dW       ;  W := W - α·v
    Both start from v = 0; "ewa" with α equals "sum" with α·(1-β).

    Args:
        lr: α (> 0).  beta: β in [0, 1), averaging over about 1/(1-β) gradients.
        form: "ewa" or "sum".
    """

    moments = ("v",)

    def __init__(self, params, lr: float = 0.01, beta: float = 0.9, form: str = "ewa"):
        defaults = {"lr": check_positive("lr", lr), "beta": check_beta("beta", beta),
                    "form": check_choice("form", form, ("ewa", "sum"))}
        super().__init__(params, defaults)

    def apply(self, W, dW, state, group):
        rules.momentum(W, dW, state["v"], lr=group["lr"], beta=group["beta"], form=group["form"])


class RMSProp(RuleOptimizer):
    """Root mean square prop: S := β₂·S + (1-β₂)·dW² ;  W := W - α·dW/(√S + ε).

    ε is added outside the root (as torch.optim.RMSprop). With ``bias_correction`` S is
    replaced by Ŝ = S/(1-β₂^t), which makes it Adam with β₁ = 0.

    Args:
        lr: α (> 0).  beta2: β₂ in [0, 1).  eps: ε (>= 0).
    """

    moments = ("S",)

    def __init__(self, params, lr: float = 0.001, beta2: float = 0.9, eps: float = 1e-8,
                 bias_correction: bool = False):
        defaults = {"lr": check_positive("lr", lr), "beta2": check_beta("beta2", beta2),
                    "eps": check_nonnegative("eps", eps), "bias_correction": bool(bias_correction)}
        super().__init__(params, defaults)

    def apply(self, W, dW, state, group):
        t = state["t"] if group["bias_correction"] else None
        rules.rmsprop(W, dW, state["S"], lr=group["lr"], beta2=group["beta2"], eps=group["eps"],
                      t=t)


class Adam(RuleOptimizer):
    """Adam: Momentum and RMSProp together, both bias-corrected.

    v := β₁·v + (1-β₁)·dW ;  S := β₂·S + (1-β₂)·dW²
    v̂ = v/(1-β₁^t) ;  Ŝ = S/(1-β₂^t) ;  W := W - α·v̂/(√Ŝ + ε)

    Args:
        lr: α (> 0).  beta1: β₁ in [0, 1).  beta2: β₂ in [0, 1).  eps: ε (>= 0).
    """

    moments = ("v", "S")

    def __init__(self, params, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        defaults = {"lr": check_positive("lr", lr), "beta1": check_beta("beta1", beta1),
                    "beta2": check_beta("beta2", beta2), "eps": check_nonnegative("eps", eps)}
        super().__init__(params, defaults)

    def apply(self, W, dW, state, group):
        rules.adam(W, dW, state["v"], state["S"], lr=group["lr"], beta1=group["beta1"],
                   beta2=group["beta2"], eps=group["eps"], t=state["t"])
