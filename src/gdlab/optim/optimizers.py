"""GD, Momentum, RMSProp and Adam as ``torch.optim.Optimizer`` subclasses.

Each class validates its hyperparameters, names its state tensors and hands them to its rule
in :mod:`gdlab.optim.rules`; param groups, closures, ``state_dict`` and torch's LR schedulers
work as with any torch optimizer. The state of a parameter is ``t`` (its step count) and the
moment tensors (``v``, ``S``), all starting at 0.

Fast path (``flat=True``, the default): the parameters of a param group (same dtype and
device) are moved into one contiguous buffer, and so are their gradients and moments; each
parameter, its ``.grad`` and its state tensors become views into these buffers, and the rule
runs once over the whole buffers instead of once per tensor. While every parameter has its
gradient and all share one t, the group keeps that t itself (written into each parameter's
state when ``state`` or ``state_dict()`` is read), so a step has no per-parameter Python.
``flat=False`` applies the rule tensor by tensor (the reference path). With ``fused`` the rule
runs as one pass over the flat buffers (:mod:`gdlab.optim.fused`): torch's own kernel for the
same formula where there is one (Adam; Momentum as torch's SGD), else the rule compiled. All
paths run the same formula and give the same numbers.
"""

from __future__ import annotations

import operator

import torch

from .._checks import check_beta, check_choice, check_nonnegative, check_positive
from ..ewa import bias_correction
from . import buffers, rules
from . import fused as fused_path

_grad = operator.attrgetter("grad")
#: step counts t made at once as tensors for torch's kernels (see _FlatGroup.step_tensor)
STEPS_AHEAD = 256


class _FlatGroup:
    """One param group's parameters, gradients and moments as contiguous buffers ``W``,
    ``dW`` and ``moments[name]``; the parameters, their ``.grad`` and their state tensors
    are views into them. As in torch, a parameter gets state at its first gradient.

    Once a step finds every parameter with a gradient and one step count, the group holds that
    count in ``t``: the usual step then costs a few sweeps over the parameters in C (is each
    still in ``W``, each gradient its view in ``dW``) and no per-parameter Python. The count is
    written into each parameter's state when the state is read (:meth:`release`)."""

    def __init__(self, params, moment_names):
        self.params = tuple(params)
        self.bounds = []
        start = 0
        for p in params:
            self.bounds.append((start, start + p.numel()))
            start += p.numel()
        numel, dtype, device = start, params[0].dtype, params[0].device
        self.W = torch.cat([p.detach().reshape(-1) for p in params],
                           out=buffers.zeros(numel, dtype, device))
        self.whole = (0, numel)
        self.dW = buffers.zeros(numel, dtype, device)
        self.moments = {name: buffers.zeros(numel, dtype, device) for name in moment_names}
        self.grad_views = self._views(self.dW)
        self.moment_views = {name: self._views(buffer) for name, buffer in self.moments.items()}
        for p, W in zip(self.params, self._views(self.W), strict=True):
            p.data = W
        self.data_ptrs = list(map(torch.Tensor.data_ptr, self.params))
        self.t = None  # the step count of every parameter, while the group holds it
        self.states = None  # every parameter's state dict, while the group holds t
        self._t_tensors = (0, ())  # (first t, its step-count tensors): see step_tensor
        self._path = None  # (fused setting, torch's kernel?, compiled rule?)

    def _views(self, buffer) -> list[torch.Tensor]:
        """Each parameter's piece of ``buffer``, in the parameter's shape."""
        return [buffer[a:b].view_as(p) for p, (a, b) in zip(self.params, self.bounds, strict=True)]

    def intact(self, params) -> bool:
        """Whether ``params`` are this group's parameters, still in ``W`` (``model.to``, for one,
        moves them out)."""
        return (len(params) == len(self.params) and all(map(operator.is_, params, self.params))
                and list(map(torch.Tensor.data_ptr, params)) == self.data_ptrs)

    def grads_in_place(self) -> bool:
        """Whether every parameter's ``.grad`` is its view into ``dW``."""
        return all(map(operator.is_, map(_grad, self.params), self.grad_views))

    def whole_path(self, fused) -> tuple[bool, bool]:
        """How a step over the whole buffers runs under the optimizer's ``fused`` setting:
        (torch's one-pass kernel?, the compiled rule?); decided once per setting."""
        if self._path is None or self._path[0] != fused:
            self._path = (fused, fused_path.use_torch_kernel(fused, self.W),
                          fused_path.use_fused(fused, self.W))
        return self._path[1:]

    def step_tensor(self, t) -> torch.Tensor:
        """t as a 0-d float32 tensor on the buffers' device, as torch's kernels take it. The
        counts t … t + STEPS_AHEAD - 1 are made at once (one tensor a step would cost as much
        as a small network's step), as views of one tensor that nothing writes to."""
        first, counts = self._t_tensors
        if not 0 <= t - first < len(counts):
            first, counts = t, torch.arange(t, t + STEPS_AHEAD, dtype=torch.float32,
                                            device=self.W.device).unbind(0)
            self._t_tensors = first, counts
        return counts[t - first]

    def release(self) -> None:
        """Write the step count the group holds into every parameter's state, and stop holding
        it: the next step reads the state again (whoever reads it may also change it)."""
        if self.t is not None:
            for p_state in self.states:
                p_state["t"] = self.t
            self.t = self.states = None

    def segments(self, state) -> list[tuple[int, int, int]]:
        """Gather fresh gradients into ``dW``, advance t, and return (a, b, t): the maximal runs
        of consecutive parameters that have a gradient and share the step count t."""
        if self.t is not None and self.grads_in_place():  # the usual step
            self.t += 1
            return [(*self.whole, self.t)]
        self.release()
        stale_views, stale_grads, runs, states = [], [], [], []
        for i, (p, (a, b)) in enumerate(zip(self.params, self.bounds, strict=True)):
            dW, grad_view = p.grad, self.grad_views[i]
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
            if not p_state:  # its first gradient: t and the moments start at 0
                p_state["t"] = 0
                for name, views in self.moment_views.items():
                    p_state[name] = views[i].zero_()
            for name, views in self.moment_views.items():
                if p_state[name] is not views[i]:  # loaded, or from before a rebuild
                    p_state[name] = views[i].copy_(p_state[name])
            p_state["t"] += 1
            states.append(p_state)
            t = p_state["t"]
            if runs and runs[-1] is not None and runs[-1][2] == t:
                runs[-1] = (runs[-1][0], b, t)
            else:
                runs.append((a, b, t))
        if stale_views:
            torch._foreach_copy_(stale_views, stale_grads)
        runs = [run for run in runs if run is not None]
        if len(runs) == 1 and runs[0][:2] == self.whole:  # all stepped, to one t
            self.t, self.states = runs[0][2], states
        return runs

    def zero_grad(self) -> None:
        """Zero every gradient in one operation; parameters without one keep ``None``."""
        self.dW.zero_()
        if not self.grads_in_place():
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

    @property
    def state(self):
        """Each parameter's state ``{"t": ..., moment: tensor}``, as in torch: reading it writes
        the step counts held by the flat groups into it."""
        self._release()
        return vars(self)["state"]

    @state.setter
    def state(self, state):
        self._release()
        vars(self)["state"] = state

    def _release(self):
        for flat in self._flat_groups.values():
            flat.release()

    def __getstate__(self):
        return {**super().__getstate__(), "flat": self.flat, "fused": self.fused}

    def __setstate__(self, state):
        """Unpickling, and (from torch's ``load_state_dict``) loading a state: the flat buffers
        are rebuilt at the next step, from the state now in place."""
        super().__setstate__(state)
        self._flat_groups = {}

    def hyperparameters(self, group, t) -> dict:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def torch_kernel(self, flat, group, t) -> bool:
        """Run the rule on the whole buffers of the :class:`_FlatGroup` ``flat`` as torch's own
        one-pass kernel for the same formula, if it has one (returns whether it ran); see
        :func:`gdlab.optim.fused.use_torch_kernel`."""
        return False

    def _apply(self, W, dW, state, group, fused=False):
        tensors = (W, dW, *(state[name] for name in self.moments))
        hyperparameters = self.hyperparameters(group, state["t"])
        if fused:
            fused_path.run(type(self).rule, *tensors, **hyperparameters)
        else:
            type(self).rule(*tensors, **hyperparameters)

    def _flat_group(self, index, group):
        """The group's flat buffers, built on first use (None if the group can't be flat)."""
        params = group["params"]
        flat = self._flat_groups.get(index)
        if flat is not None:
            if flat.intact(params):
                return flat
            flat.release()  # its step counts go to the state before it is rebuilt
            del self._flat_groups[index]
        if not self.flat or not params or any(p.is_sparse for p in params) or len(
                {(p.dtype, p.device) for p in params}) != 1:
            return None
        flat = self._flat_groups[index] = _FlatGroup(params, self.moments)
        return flat

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if torch.is_grad_enabled():  # (entering no_grad costs as much as a small step's rule)
            with torch.no_grad():
                self._step()
        else:
            self._step()
        return loss

    def _step(self):
        state = vars(self)["state"]  # not self.state, which makes the flat groups release t
        for index, group in enumerate(self.param_groups):
            flat = self._flat_group(index, group)
            if flat is None:
                self._step_per_tensor(group, state)
                continue
            for a, b, t in flat.segments(state):
                if (a, b) == flat.whole:  # the usual case: one pass over the whole buffers
                    torch_kernel, fused = flat.whole_path(self.fused)
                    if torch_kernel and self.torch_kernel(flat, group, t):
                        continue
                    W, dW, moments = flat.W, flat.dW, dict(flat.moments)
                else:  # some parameters had no gradient or lag in t: eager, piece by piece
                    W, dW = flat.W[a:b], flat.dW[a:b]
                    moments = {name: buffer[a:b] for name, buffer in flat.moments.items()}
                    fused = False
                moments["t"] = t
                self._apply(W, dW, moments, group, fused)

    def _step_per_tensor(self, group, state):
        for W in group["params"]:
            if W.grad is None:
                continue
            if W.grad.is_sparse:
                raise TypeError(f"{type(self).__name__} does not support sparse gradients")
            W_state = state[W]
            if "t" not in W_state:
                W_state["t"] = 0
                for name in self.moments:
                    W_state[name] = torch.zeros_like(W, memory_format=torch.preserve_format)
            W_state["t"] += 1
            self._apply(W, W.grad, W_state, group)

    def zero_grad(self, set_to_none: bool = True):
        """Clear the gradients: ``None`` (the default, as torch), or zeros in place — one
        operation per flat buffer."""
        for index, group in enumerate(self.param_groups):
            flat = self._flat_groups.get(index)
            if not set_to_none and flat is not None and flat.intact(group["params"]):
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


class GD(RuleOptimizer):
    """Gradient descent: W := W - α·dW (batch GD, mini-batch GD or SGD by the batch size).

    Args:
        lr: α, the learning rate (> 0).
        flat: keep parameters, gradients and moments in flat buffers (the fast path).
        fused: one pass over them: torch's own kernel where it has the formula (Adam,
            Momentum), else the rule compiled. None: torch's kernel on the CPU, compiling from a
            million elements; False: the eager rule (see docs/speed.md).
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

    def torch_kernel(self, flat, group, t) -> bool:
        """torch's fused SGD: v := β·v + (1 - dampening)·dW ; W := W - α·v, with dampening β
        for the "ewa" form and 0 for "sum" (v starts at 0, as here: never its first-step copy)."""
        if group["beta"] == 0:  # torch's kernel then keeps no v at all
            return False
        dampening = group["beta"] if group["form"] == "ewa" else 0.0
        torch._fused_sgd_([flat.W], [flat.dW], [flat.moments["v"]], weight_decay=0.0,
                          momentum=group["beta"], lr=group["lr"], dampening=dampening,
                          nesterov=False, maximize=False, is_first_step=False)
        return True


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

    def torch_kernel(self, flat, group, t) -> bool:
        """torch's fused Adam: the same formula, with 1-β^t from the step count t."""
        torch._fused_adam_([flat.W], [flat.dW], [flat.moments["v"]], [flat.moments["S"]], [],
                           [flat.step_tensor(t)], lr=group["lr"], beta1=group["beta1"],
                           beta2=group["beta2"], weight_decay=0.0, eps=group["eps"],
                           amsgrad=False, maximize=False)
        return True
