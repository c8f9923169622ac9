"""GD, Momentum, RMSProp, Adam and AdamW as ``torch.optim.Optimizer`` subclasses.

Each class validates its hyperparameters and hands its rule (:mod:`gdlab.optim.rules`) the
arguments that :mod:`gdlab.optim.hyper` reads from the param group; param groups, closures,
``state_dict`` and torch's LR schedulers work as with any torch optimizer. A parameter's state
is ``t`` (its step count) and its state tensors (``v``, ``S``, …), all starting at 0;
``state_dict()`` gives them under torch's names as well (``step``, ``exp_avg``,
``exp_avg_sq``, ``max_exp_avg_sq``, ``momentum_buffer``, ``square_avg``, ``grad_avg``), so a
state dict of torch's Adam, AdamW, SGD with momentum or RMSprop loads into its gdlab twin and
the other way round; gdlab's own older checkpoints (``t``, ``v``, ``S``) load too.

Fast path (``flat=True``, the default): when the optimizer is built, the parameters of each
param group (same dtype and device) are moved into one contiguous buffer, and so are their
gradients and state tensors (:mod:`gdlab.optim.flat`); the rule then runs once over the whole
buffers instead of once per tensor, as torch's kernel, compiled, or eagerly
(:mod:`gdlab.optim.paths`). ``flat=False`` applies the rule tensor by tensor (the reference
path). All paths run the same formula and give the same numbers.
"""

from __future__ import annotations

import functools
import inspect

import torch

from .._checks import check_beta, check_choice, check_nonnegative, check_positive
from . import hyper, paths, rules
from .flat import FlatGroup, overlapping

#: each method's state under torch's names (torch's SGD keeps no step count)
TORCH_STATE = {"gd": {}, "momentum": {"v": "momentum_buffer"},
               "rmsprop": {"t": "step", "S": "square_avg", "v": "momentum_buffer",
                           "dW_avg": "grad_avg"},
               "adam": {"t": "step", "v": "exp_avg", "S": "exp_avg_sq", "S_max": "max_exp_avg_sq"}}
#: the checks of each hyperparameter a group may hold (β before torch's name for it)
CHECKS = {"lr": check_positive, "beta": check_beta, "momentum": check_beta,
          "beta1": check_beta, "beta2": check_beta, "alpha": check_beta, "eps": check_nonnegative,
          "weight_decay": check_nonnegative,
          "form": lambda name, value: check_choice(name, value, ("ewa", "sum"))}
#: the on/off options
SWITCHES = ("nesterov", "amsgrad", "maximize", "centered", "decoupled_weight_decay",
            "bias_correction")


@functools.cache
def _signature_defaults(cls) -> dict:
    return {name: p.default for name, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _checked(group: dict, *, loading: bool = False) -> dict:
    """``group`` with each hyperparameter checked (ValueError naming it and its range); a
    loaded group may hold α = 0 (where a torch scheduler left it)."""
    for name, check in CHECKS.items():
        if name in group:
            group[name] = (check_nonnegative if loading and name == "lr" else check)(
                name, group[name])
    for name in SWITCHES:
        if name in group:
            group[name] = bool(group[name])
    if group.get("centered") and group.get("bias_correction"):
        raise ValueError("centered=True cannot go with bias_correction=True: the corrected "
                         "averages of one gradient have variance Ŝ - ĝ² = 0, and the first step "
                         "would divide by ε")
    return group


def _real(tensor):
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def _refuse_duplicates(params, groups) -> None:
    """ValueError naming a parameter given twice (here or in an earlier param group)."""
    seen = {id(p): "in an earlier param group" for group in groups for p in group["params"]}
    for i, item in enumerate(params):
        name, p = item if isinstance(item, tuple) else (None, item)
        if not isinstance(p, torch.Tensor):
            continue
        label = f"parameter {i}{f' ({name!r})' if name else ''} of shape {tuple(p.shape)}"
        if id(p) in seen:
            raise ValueError(f"{label} is given twice (also {seen[id(p)]}); each parameter "
                             f"may appear once")
        seen[id(p)] = f"as parameter {i}"


def _with_torch_names(kind: str, p_state: dict) -> dict:
    """A parameter's state with its tensors under torch's names too (the same tensors)."""
    out = dict(p_state)
    for ours, theirs in TORCH_STATE[kind].items():
        if ours in p_state:
            out[theirs] = torch.tensor(float(p_state["t"])) if ours == "t" else p_state[ours]
    return out


def _from_saved(cls, index, p_state: dict, param) -> dict:
    """A saved parameter state in gdlab's names: torch's where present (torch's optimizer may
    have moved them on since gdlab wrote both), else gdlab's (its older checkpoints). Another
    method's state, or tensors of another shape: ValueError."""
    names = TORCH_STATE[cls.kind]
    known = {"t", *names, *names.values()}
    unknown = sorted(map(str, set(p_state) - known))
    if unknown:
        raise ValueError(f"the state of parameter {index} holds {', '.join(unknown)}, which "
                         f"{cls.__name__} does not keep (it keeps {', '.join(sorted(known))})")
    out = {name: p_state[name] for name in ("t", *names) if name in p_state}
    out.update({ours: p_state[theirs] for ours, theirs in names.items()
                if p_state.get(theirs) is not None})
    t = out.get("t", 0)
    out["t"] = int(t.item() if isinstance(t, torch.Tensor) else t)
    for name, value in out.items():
        if isinstance(value, torch.Tensor) and value.shape != param.shape:
            raise ValueError(f"the state of parameter {index} has {name} of shape "
                             f"{tuple(value.shape)}; the parameter's shape is "
                             f"{tuple(param.shape)}")
    return out


def _by_name(group: dict, saved: dict, index: int) -> dict:
    """``saved`` (a group of a state dict) with its parameters in ``group``'s order, matched by
    name where both have ``param_names`` (a model whose parameter order changed)."""
    if "param_names" not in group or "param_names" not in saved:
        return saved
    ours, theirs = list(group["param_names"]), list(saved["param_names"])
    if sorted(ours) != sorted(theirs):
        extra, missing = (", ".join(map(repr, sorted(set(a) - set(b))))
                          for a, b in ((theirs, ours), (ours, theirs)))
        raise ValueError(f"param group {index} of the state dict names parameters this "
                         f"optimizer's lacks ({extra}) and lacks some it has ({missing})")
    ids = dict(zip(theirs, saved["params"], strict=True))
    return {**saved, "params": [ids[name] for name in ours], "param_names": ours}


class RuleOptimizer(torch.optim.Optimizer):
    """Applies ``rule`` to every parameter that has a gradient, over flat buffers or per tensor.

    Subclasses set ``kind`` (the method's key in :mod:`gdlab.optim.hyper`), ``rule`` (its
    function of :mod:`gdlab.optim.rules`) and ``moments`` (the names of its state tensors
    without options), and pass their hyperparameters to ``__init__`` by name, torch's names
    (``betas``, ``momentum``, ``alpha``, ``dampening``) as None where not given.
    """

    kind = "gd"
    rule = None
    moments: tuple[str, ...] = ()

    def __init__(self, params, settings: dict, flat: bool = True, fused: bool | None = None):
        if fused and not flat:
            raise ValueError("fused=True needs flat=True: the fused step runs on flat buffers")
        self.flat = bool(flat)
        self.fused = fused
        self._flat_groups: dict[int, FlatGroup] = {}
        self._built = False  # (the flat buffers are made once all groups are known)
        super().__init__(params, self._defaults(settings))
        self._built = True
        for index in range(len(self.param_groups)):
            self._build(index)

    def _defaults(self, settings: dict) -> dict:
        """The checked defaults, under the lecture's and torch's names: a torch name given
        decides, a lecture name left at its default gives way to it."""
        torch_names, signature = hyper.torch_names(self.kind), _signature_defaults(type(self))
        lecture = {k: v for k, v in settings.items() if k not in torch_names}
        given = {k: v for k, v in settings.items()
                 if (v is not None if k in torch_names else v != signature[k])}
        _checked(dict(given))  # (a bad value named as it was given)
        defaults = _checked({**lecture, **hyper.resolve(self.kind, given, lecture)})
        return hyper.synced(self.kind, defaults)

    def add_param_group(self, param_group: dict) -> None:
        """As torch's, and: a parameter given twice is a ValueError naming it; torch's names
        and the lecture's may both be given if they agree; the values are checked; the group
        is moved into flat buffers at once."""
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, torch.Tensor) else (
            params if isinstance(params, set) else list(params))  # (a set: torch refuses it)
        _refuse_duplicates(group["params"], self.param_groups)
        group = hyper.synced(self.kind, _checked(hyper.resolve(self.kind, group, self.defaults)))
        super().add_param_group(group)
        self.param_groups[-1] = hyper.GROUPS[self.kind](self.param_groups[-1])
        if self._built:
            self._build(len(self.param_groups) - 1)

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
        """Unpickling (the flat buffers are rebuilt at the next step), and (from torch's
        ``load_state_dict``) loading a state: the flat buffers stay, the loaded state is copied
        into them at the next step."""
        flats = vars(self).get("_flat_groups", {})
        for flat in flats.values():
            flat.release()
        super().__setstate__(state)
        self.param_groups = [hyper.GROUPS[self.kind](group) for group in self.param_groups]
        self._flat_groups, self._built = flats, True

    def state_dict(self) -> dict:
        """torch's state dict, each parameter's state under torch's names as well as gdlab's."""
        saved = super().state_dict()
        saved["state"] = {index: _with_torch_names(self.kind, p_state)
                          for index, p_state in saved["state"].items()}
        return saved

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict of this optimizer, of its torch twin, or of gdlab before torch's
        names; parameters matched by name where both sides have names. Another method's state,
        other shapes or bad values: ValueError, and nothing changed."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"the state dict has {len(saved_groups)} param groups; this "
                             f"optimizer has {len(self.param_groups)}")
        groups = [self._loaded_group(index, _by_name(group, saved, index))
                  for index, (group, saved) in enumerate(zip(self.param_groups, saved_groups,
                                                             strict=True))]
        params = {}
        for group, saved in zip(self.param_groups, groups, strict=True):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(f"a param group of the state dict has {len(saved['params'])} "
                                 f"parameters; this optimizer's has {len(group['params'])}")
            params.update(zip(saved["params"], group["params"], strict=True))
        state = {index: _from_saved(type(self), index, p_state, params[index])
                 if index in params else p_state
                 for index, p_state in state_dict["state"].items()}
        super().load_state_dict({**state_dict, "param_groups": groups, "state": state})

    def _loaded_group(self, index: int, saved: dict) -> dict:
        """A saved param group in this optimizer's terms, checked: its hyperparameters under
        either name (torch's winning), options it lacks from this optimizer's defaults."""
        aliases = hyper.ALIASES[self.kind]
        for name in hyper.NUMERIC[self.kind]:
            if name not in saved and not any(name in names and torch_name in saved
                                             for torch_name, names in aliases.items()):
                raise ValueError(f"param group {index} of the state dict has no {name}: not a "
                                 f"state dict of {type(self).__name__}")
        group = hyper.resolve(self.kind, saved, self.defaults, prefer_torch=True)
        group = {**self.defaults, **group, **self._forced()}
        return hyper.synced(self.kind, _checked(group, loading=True))

    def _forced(self) -> dict:
        """Settings a loaded group cannot change (AdamW's decoupled decay, as torch's AdamW)."""
        return {}

    def torch_kernel(self, flat, args: dict, t: int) -> bool:
        """Run the rule over the whole buffers of ``flat`` as torch's own one-pass kernel for
        the same formula, if it has one for these options (returns whether it ran)."""
        return paths.KERNELS[self.kind](flat, args, t)

    def _build(self, index: int) -> FlatGroup | None:
        """Group ``index``'s flat buffers (None where the group can't be flat: flat=False,
        several dtypes or devices, sparse or lazy parameters)."""
        group = self.param_groups[index]
        params = group["params"]
        if (not self.flat or not params or len({(p.dtype, p.device) for p in params}) != 1
                or params[0].device.type == "meta"
                or not (params[0].is_floating_point() or params[0].is_complex())
                or any(p.is_sparse or torch.nn.parameter.is_lazy(p) for p in params)):
            return None
        tied = overlapping([p for g in self.param_groups for p in g["params"]])
        outside = {p for p in params if p in tied}
        if len(outside) == len(params):
            return None
        flat = self._flat_groups[index] = FlatGroup(params, hyper.moments(self.kind, group),
                                                    outside)
        return flat

    def _flat_group(self, index: int, group, names) -> tuple[FlatGroup | None, bool]:
        """The group's flat buffers, rebuilt if its parameters left them, and whether this step
        is the usual one (t held, every gradient in its view)."""
        flat = self._flat_groups.get(index)
        if flat is not None:
            if flat.intact(group["params"]):
                if flat.usual(names):
                    return flat, True
                if flat.same_geometry():
                    flat.activate(names)
                    return flat, False
            flat.release()  # its step counts go to the state before it is rebuilt
            del self._flat_groups[index]
        flat = self._build(index)
        if flat is not None:
            flat.activate(names)
        return flat, False

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

    def _plan(self) -> list:
        """(group, names, flat buffers, usual step?) of each group; a sparse gradient refused
        before anything of the state changed."""
        plans = []
        for index, group in enumerate(self.param_groups):
            names = hyper.moments(self.kind, group)
            flat, usual = self._flat_group(index, group, names)
            unchecked = flat.loose if usual else group["params"]  # (usual: dense views in dW)
            if any(p.grad is not None and p.grad.is_sparse for p in unchecked):
                raise TypeError(f"{type(self).__name__} does not support sparse gradients "
                                f"(param group {index}); nothing was changed")
            plans.append((group, names, flat, usual))
        return plans

    def _step(self):
        state = vars(self)["state"]  # not self.state, which makes the flat groups release t
        for group, names, flat, usual in self._plan():
            args = hyper.arguments(self.kind, group)
            if flat is None:
                self._step_per_tensor(group["params"], group, names, args, state)
                continue
            for a, b, t in flat.segments(state, usual):
                paths.step(self, flat, a, b, {**args, **hyper.corrections(self.kind, group, t)},
                           t)
            if flat.loose:
                self._step_per_tensor(flat.loose, group, names, args, state)

    def _step_per_tensor(self, params, group, names, args, state):
        """The reference path: the rule on each parameter with a gradient, in order (a complex
        one as its real view)."""
        for W in params:
            if W.grad is None:
                continue
            W_state = state[W]
            W_state.setdefault("t", 0)
            for name in names:
                if name not in W_state:
                    W_state[name] = torch.zeros_like(W, memory_format=torch.preserve_format)
            W_state["t"] += 1
            type(self).rule(_real(W), _real(W.grad), **{name: _real(W_state[name])
                                                        for name in names},
                            **args, **hyper.corrections(self.kind, group, W_state["t"]))

    def zero_grad(self, set_to_none: bool = True):
        """Clear the gradients: ``None`` (the default, as torch), or zeros in place — one
        operation per flat buffer."""
        for index, group in enumerate(self.param_groups):
            params = group["params"]
            flat = self._flat_groups.get(index)
            if not set_to_none and flat is not None and flat.intact(params):
                flat.zero_grad()
                params = flat.loose
            for p in params:
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


_FLAT_ARGS = """
        flat: keep parameters, gradients and state tensors in flat buffers (the fast path).
        fused: one pass over them: torch's own kernel where it has the formula (Adam, Momentum),
            else the rule compiled. None: torch's kernel on the CPU, compiling from a million
            elements; False: the eager rule (see docs/speed.md).
        weight_decay: λ (>= 0): L2, dW := dW + λ·W (the gradient of λ/2·‖W‖²).
        decoupled_weight_decay: instead, W := W - α·λ·W before the update (AdamW's decay).
        maximize: follow -dW (gradient ascent)."""


class GD(RuleOptimizer):
    __doc__ = """Gradient descent: W := W - α·dW (batch GD, mini-batch GD or SGD by the batch size).

    (For GD the two kinds of weight decay are the same update.)

    Args:
        lr: α, the learning rate (> 0).""" + _FLAT_ARGS

    rule = rules.gd

    def __init__(self, params, lr: float = 0.01, *, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, maximize: bool = False,
                 flat: bool = True, fused: bool | None = None):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "maximize": maximize}, flat, fused)


class Momentum(RuleOptimizer):
    __doc__ = """Gradient descent with momentum.

    form "ewa" (the lecture's):  v := β·v + (1-β)·dW ;  W := W - α·v
    form "sum" (torch's SGD):    v := β·v + dW       ;  W := W - α·v
    nesterov:  W := W - α·(β·v + (1-β)·dW)  ("ewa") or  W := W - α·(dW + β·v)  ("sum")
    Both start from v = 0; "ewa" with α equals "sum" with α·(1-β).

    Args:
        lr: α (> 0).  beta: β in [0, 1), averaging over about 1/(1-β) gradients (torch's
            ``momentum``, which may be given instead).
        form: "ewa" or "sum" (torch's ``dampening``: β or 0, may be given instead).
        nesterov: step from the next average (torch's SGD(nesterov=True) for form "sum").""" \
        + _FLAT_ARGS

    kind = "momentum"
    rule = rules.momentum
    moments = ("v",)

    def __init__(self, params, lr: float = 0.01, beta: float = 0.9, form: str = "ewa",
                 *, momentum: float | None = None, dampening: float | None = None,
                 nesterov: bool = False, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, maximize: bool = False,
                 flat: bool = True, fused: bool | None = None):
        super().__init__(params, {"lr": lr, "beta": beta, "form": form, "momentum": momentum,
                                  "dampening": dampening, "nesterov": nesterov,
                                  "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "maximize": maximize}, flat, fused)


class RMSProp(RuleOptimizer):
    __doc__ = """Root mean square prop: S := β₂·S + (1-β₂)·dW² ;  W := W - α·dW/(√S + ε).

    ε is added outside the root (as torch.optim.RMSprop). With ``bias_correction`` S is
    replaced by Ŝ = S/(1-β₂^t), which makes it Adam with β₁ = 0.
    centered:  dW_avg := β₂·dW_avg + (1-β₂)·dW, and √(S - dW_avg²) in place of √S
    momentum μ > 0:  v := μ·v + dW/(√S + ε) ;  W := W - α·v        (both as torch's RMSprop)

    Args:
        lr: α (> 0).  beta2: β₂ in [0, 1) (torch's ``alpha``, which may be given instead).
        eps: ε (>= 0).  momentum: μ in [0, 1).  centered: as above.""" + _FLAT_ARGS

    kind = "rmsprop"
    rule = rules.rmsprop
    moments = ("S",)

    def __init__(self, params, lr: float = 0.001, beta2: float = 0.9, eps: float = 1e-8,
                 bias_correction: bool = False, *, alpha: float | None = None,
                 momentum: float = 0.0, centered: bool = False, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, maximize: bool = False,
                 flat: bool = True, fused: bool | None = None):
        super().__init__(params, {"lr": lr, "beta2": beta2, "eps": eps,
                                  "bias_correction": bias_correction, "alpha": alpha,
                                  "momentum": momentum, "centered": centered,
                                  "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "maximize": maximize}, flat, fused)


class Adam(RuleOptimizer):
    __doc__ = """Adam: Momentum and RMSProp together, both bias-corrected.

    v := β₁·v + (1-β₁)·dW ;  S := β₂·S + (1-β₂)·dW²
    v̂ = v/(1-β₁^t) ;  Ŝ = S/(1-β₂^t) ;  W := W - α·v̂/(√Ŝ + ε)
    amsgrad:  S_max := max(S_max, S) and Ŝ = S_max/(1-β₂^t)

    With L2 weight decay the term λ·W goes through v and is divided by √Ŝ + ε like the
    gradient; decoupled, W shrinks by α·λ·W whatever Ŝ is (that is AdamW, :class:`AdamW`).

    Args:
        lr: α (> 0).  beta1: β₁ in [0, 1).  beta2: β₂ in [0, 1).  eps: ε (>= 0).
        betas: (β₁, β₂), torch's name; beta1/beta2 given as well must agree.
        amsgrad: as above (torch's definition).""" + _FLAT_ARGS

    kind = "adam"
    rule = rules.adam
    moments = ("v", "S")

    def __init__(self, params, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, *, betas: tuple[float, float] | None = None,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False,
                 amsgrad: bool = False, maximize: bool = False, flat: bool = True,
                 fused: bool | None = None):
        super().__init__(params, {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
                                  "betas": betas, "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize}, flat, fused)


class AdamW(Adam):
    __doc__ = """AdamW: Adam with decoupled weight decay (torch.optim.AdamW, λ = 0.01 by default).

    W := W - α·λ·W ;  then Adam's step:  W := W - α·v̂/(√Ŝ + ε)

    The decay is not averaged into v nor divided by √Ŝ + ε: every weight shrinks by the same
    fraction α·λ a step, where Adam with L2 shrinks the weights of small-gradient coordinates
    most. Args as :class:`Adam`; ``decoupled_weight_decay`` is always True (also on load).
    """

    def __init__(self, params, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, *, betas: tuple[float, float] | None = None,
                 weight_decay: float = 0.01, amsgrad: bool = False, maximize: bool = False,
                 decoupled_weight_decay: bool = True, flat: bool = True,
                 fused: bool | None = None):
        if not decoupled_weight_decay:
            raise ValueError("AdamW's weight decay is decoupled (decoupled_weight_decay=True); "
                             "for L2 weight decay use Adam(weight_decay=...)")
        super().__init__(params, lr, beta1, beta2, eps, betas=betas, weight_decay=weight_decay,
                         decoupled_weight_decay=True, amsgrad=amsgrad, maximize=maximize,
                         flat=flat, fused=fused)

    def _forced(self) -> dict:
        return {"decoupled_weight_decay": True}
