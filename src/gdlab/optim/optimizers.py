"""GD, Momentum, RMSProp and Adam as ``torch.optim.Optimizer`` subclasses.

Each class validates its hyperparameters, names its state tensors and hands them to its rule
in :mod:`gdlab.optim.rules`; param groups, closures, ``state_dict`` and torch's LR schedulers
work as with any torch optimizer. The state of a parameter is ``t`` (its step count) and the
moment tensors (``v``, ``S``), all starting at 0.

Fast path (``flat=True``, the default): the parameters of a param group (same dtype and
device) are moved into one contiguous buffer, and so are their gradients and moments; each
parameter, its ``.grad`` and its state tensors become views into these buffers, and the rule
runs once over the whole buffers instead of once per tensor. ``flat=False`` applies the rule
tensor by tensor (the reference path). With ``fused`` the rule is compiled into one pass over
the flat buffers (:mod:`gdlab.optim.fused`; by default for buffers of a million elements or
more). All paths run the same rule and give the same numbers.
"""

from __future__ import annotations

import operator

import torch

from .._checks import check_beta, check_choice, check_nonnegative, check_positive
from ..ewa import bias_correction
from . import fused as fused_path
from . import rules


class _FlatGroup:
    """One param group's parameters, gradients and moments as contiguous buffers ``W``,
    ``dW`` and ``moments[name]``; the parameters, their ``.grad`` and their state tensors
    are views into them. As in torch, a parameter gets state at its first gradient."""

    def __init__(self, params, state, moment_names):
        self.params = params
        self.bounds = []
        start = 0
        for p in params:
            self.bounds.append((start, start + p.numel()))
            start += p.numel()
        self.W = torch.cat([p.detach().reshape(-1) for p in params])
        self.dW = torch.zeros_like(self.W)
        self.moments = {name: torch.zeros_like(self.W) for name in moment_names}
        self.grad_views = []
        for p, (a, b) in zip(params, self.bounds, strict=True):
            p.data = self.W[a:b].view_as(p)
            self.grad_views.append(self.dW[a:b].view_as(p))
            if state.get(p):  # moments so far (e.g. loaded) move into the buffers
                for name, buffer in self.moments.items():
                    buffer[a:b].copy_(state[p][name].reshape(-1))
                    state[p][name] = buffer[a:b].view_as(p)
        self.data_ptrs = [p.data_ptr() for p in params]
        self.states = None  # each parameter's state dict, once all have one

    def intact(self) -> bool:
        """False if a parameter's storage was replaced (e.g. by ``model.to``) since."""
        return list(map(torch.Tensor.data_ptr, self.params)) == self.data_ptrs

    def segments(self, state) -> list[tuple[int, int, int]]:
        """Gather fresh gradients into ``dW``, advance t, and return (a, b, t): the maximal runs
        of consecutive parameters that have a gradient and share the step count t."""
        grads = [p.grad for p in self.params]
        if all(map(operator.is_, grads, self.grad_views)):  # the usual case, in one sweep
            if self.states is None:
                self.states = [state[p] for p in self.params]
            t = self.states[0].get("t", 0)
            if all(p_state.get("t") == t for p_state in self.states):
                t += 1
                for p_state in self.states:
                    p_state["t"] = t
                return [(0, self.W.numel(), t)]
        stale_views, stale_grads, runs = [], [], []
        for p, grad_view, (a, b) in zip(self.params, self.grad_views, self.bounds, strict=True):
            dW = p.grad
            if dW is None:
                runs.append(None)
                continue
            if dW is not grad_view:
                if dW.is_sparse:
                    raise TypeError("gdlab optimizers do not support sparse gradients")
                stale_views.append(grad_view)
                stale_grads.append(dW)
                p.grad = grad_view
            p_state = state[p]
            if not p_state:
                p_state["t"] = 0
                for name, buffer in self.moments.items():
                    buffer[a:b].zero_()
                    p_state[name] = buffer[a:b].view_as(p)
            p_state["t"] += 1
            t = p_state["t"]
            if runs and runs[-1] is not None and runs[-1][2] == t:
                runs[-1] = (runs[-1][0], b, t)
            else:
                runs.append((a, b, t))
        if stale_views:
            torch._foreach_copy_(stale_views, stale_grads)
        return [run for run in runs if run is not None]

    def zero_grad(self) -> None:
        """Zero every gradient in one operation; parameters without one keep ``None``."""
        self.dW.zero_()
        for p, grad_view in zip(self.params, self.grad_views, strict=True):
            if p.grad is not None:
                p.grad = grad_view


class RuleOptimizer(torch.optim.Optimizer):
    """Applies ``rule`` to every parameter that has a gradient, over flat buffers or per tensor.

    Subclasses set ``rule`` (a function of :mod:`gdlab.optim.rules`), ``moments`` (names of its
    state tensors, zero at the start) and ``hyperparameters(group, t)`` (its keyword arguments).
    """

    rule = None
    moments: tuple[str, ...] = ()

    def __init__(self, params, defaults, flat: bool = True, fused: bool | None = None):
        if fused and not flat:
            raise ValueError("fused=True needs flat=True: the fused step runs on flat buffers")
        self.flat = bool(flat)
        self.fused = fused
        self._flat_groups: dict[int, _FlatGroup] = {}
        super().__init__(params, defaults)

    def hyperparameters(self, group, t) -> dict:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _apply(self, W, dW, state, group, fused=False):
        tensors = (W, dW, *(state[name] for name in self.moments))
        hyperparameters = self.hyperparameters(group, state["t"])
        if fused:
            fused_path.run(type(self).rule, *tensors, **hyperparameters)
        else:
            type(self).rule(*tensors, **hyperparameters)

    def _flat_group(self, index, group):
        """The group's flat buffers, built on first use (None if the group can't be flat)."""
        flat = self._flat_groups.get(index)
        if flat is not None and flat.params == group["params"] and flat.intact():
            return flat
        params = group["params"]
        if not self.flat or not params or any(p.is_sparse for p in params) or len(
                {(p.dtype, p.device) for p in params}) != 1:
            return None
        flat = _FlatGroup(params, self.state, self.moments)
        self._flat_groups[index] = flat
        return flat

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            flat = self._flat_group(index, group)
            if flat is None:
                self._step_per_tensor(group)
                continue
            whole = (0, flat.W.numel())
            for a, b, t in flat.segments(self.state):
                if (a, b) == whole:  # the usual case: one pass over the whole buffers
                    W, dW, state = flat.W, flat.dW, dict(flat.moments)
                    fused = fused_path.use_fused(self.fused, W)
                else:  # some parameters had no gradient or lag in t: eager, piece by piece
                    W, dW = flat.W[a:b], flat.dW[a:b]
                    state = {name: buffer[a:b] for name, buffer in flat.moments.items()}
                    fused = False
                state["t"] = t
                self._apply(W, dW, state, group, fused)
        return loss

    def _step_per_tensor(self, group):
        for W in group["params"]:
            if W.grad is None:
                continue
            if W.grad.is_sparse:
                raise TypeError(f"{type(self).__name__} does not support sparse gradients")
            state = self.state[W]
            if "t" not in state:
                state["t"] = 0
                for name in self.moments:
                    state[name] = torch.zeros_like(W, memory_format=torch.preserve_format)
            state["t"] += 1
            self._apply(W, W.grad, state, group)

    def zero_grad(self, set_to_none: bool = True):
        """Clear the gradients: ``None`` (the default, as torch), or zeros in place — one
        operation per flat buffer."""
        for index, group in enumerate(self.param_groups):
            flat = self._flat_groups.get(index)
            if not set_to_none and flat is not None and flat.params == group["params"]:
                flat.zero_grad()
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.zero_()

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._flat_groups.clear()  # rebuilt at the next step from the loaded state


class GD(RuleOptimizer):
    """Gradient descent: W := W - α·dW (batch GD, mini-batch GD or SGD by the batch size).

    Args:
        lr: α, the learning rate (> 0).
        flat: keep parameters, gradients and moments in flat buffers (the fast path).
        fused: compile the rule into one pass over them (None: for a million elements or more).
    """

    rule = rules.gd

    def __init__(self, params, lr: float = 0.01, *, flat: bool = True, fused: bool | None = None):
        super().__init__(params, {"lr": check_positive("lr", lr)}, flat, fused)

    def hyperparameters(self, group, t):
        return {"lr": group["lr"]}


class Momentum(RuleOptimizer):
    """Gradient descent with momentum.

    form "ewa" (the lecture's):  v := β·v + (1-β)·dW ;  W := W - α·v
    form "sum" (torch's SGD):    v := β·v + dW       ;  W := W - α·v
    Both start from v = 0; "ewa" with α equals "sum" with α·(1-β).

    Args:
        lr: α (> 0).  beta: β in [0, 1), averaging over about 1/(1-β) gradients.
        form: "ewa" or "sum".
    """

    rule = rules.momentum
    moments = ("v",)

    def __init__(self, params, lr: float = 0.01, beta: float = 0.9, form: str = "ewa",
                 *, flat: bool = True, fused: bool | None = None):
        defaults = {"lr": check_positive("lr", lr), "beta": check_beta("beta", beta),
                    "form": check_choice("form", form, ("ewa", "sum"))}
        super().__init__(params, defaults, flat, fused)

    def hyperparameters(self, group, t):
        return {"lr": group["lr"], "beta": group["beta"], "form": group["form"]}


class RMSProp(RuleOptimizer):
    """Root mean square prop: S := β₂·S + (1-β₂)·dW² ;  W := W - α·dW/(√S + ε).

    ε is added outside the root (as torch.optim.RMSprop). With ``bias_correction`` S is
    replaced by Ŝ = S/(1-β₂^t), which makes it Adam with β₁ = 0.

    Args:
        lr: α (> 0).  beta2: β₂ in [0, 1).  eps: ε (>= 0).
    """

    rule = rules.rmsprop
    moments = ("S",)

    def __init__(self, params, lr: float = 0.001, beta2: float = 0.9, eps: float = 1e-8,
                 bias_correction: bool = False, *, flat: bool = True, fused: bool | None = None):
        defaults = {"lr": check_positive("lr", lr), "beta2": check_beta("beta2", beta2),
                    "eps": check_nonnegative("eps", eps), "bias_correction": bool(bias_correction)}
        super().__init__(params, defaults, flat, fused)

    def hyperparameters(self, group, t):
        correction = bias_correction(group["beta2"], t) if group["bias_correction"] else None
        return {"lr": group["lr"], "beta2": group["beta2"], "eps": group["eps"],
                "S_correction": correction}


class Adam(RuleOptimizer):
    """Adam: Momentum and RMSProp together, both bias-corrected.

    v := β₁·v + (1-β₁)·dW ;  S := β₂·S + (1-β₂)·dW²
    v̂ = v/(1-β₁^t) ;  Ŝ = S/(1-β₂^t) ;  W := W - α·v̂/(√Ŝ + ε)

    Args:
        lr: α (> 0).  beta1: β₁ in [0, 1).  beta2: β₂ in [0, 1).  eps: ε (>= 0).
    """

    rule = rules.adam
    moments = ("v", "S")

    def __init__(self, params, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, *, flat: bool = True, fused: bool | None = None):
        defaults = {"lr": check_positive("lr", lr), "beta1": check_beta("beta1", beta1),
                    "beta2": check_beta("beta2", beta2), "eps": check_nonnegative("eps", eps)}
        super().__init__(params, defaults, flat, fused)

    def hyperparameters(self, group, t):
        return {"lr": group["lr"], "beta1": group["beta1"], "beta2": group["beta2"],
                "eps": group["eps"], "v_correction": bias_correction(group["beta1"], t),
                "S_correction": bias_correction(group["beta2"], t)}
