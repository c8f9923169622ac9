"""A param group's hyperparameters → the rule's keyword arguments, bias corrections included.

The one place that reads a group: the optimizers call :func:`arguments`, :func:`corrections`
and :func:`moments` at each step, and the vectorized trainer (:mod:`gdlab.lab.vectorized`)
calls them with each configuration's values as tensors. A group holds each of the lecture's
hyperparameters under torch's name too — Momentum's β as ``momentum``, RMSProp's β₂ as
``alpha``, Adam's (β₁, β₂) as ``betas`` — and :class:`Group` keeps the two one value
whichever is written, so torch's schedulers that cycle the momentum (``OneCycleLR``,
``CyclicLR`` with ``cycle_momentum=True``) change what the rule uses, and torch's optimizers
find their keys in a gdlab state dict.
"""

from __future__ import annotations

from ..ewa import bias_correction
from . import rules

#: each method's update rule
RULES = {"gd": rules.gd, "momentum": rules.momentum, "rmsprop": rules.rmsprop,
         "adam": rules.adam}
#: the lecture's numeric hyperparameters each rule takes besides α (what a sweep varies)
NUMERIC = {"gd": (), "momentum": ("beta",), "rmsprop": ("beta2", "eps"),
           "adam": ("beta1", "beta2", "eps")}
#: the lecture's options, which configurations trained together must share
OPTIONS = {"gd": (), "momentum": ("form",), "rmsprop": ("bias_correction",), "adam": ()}
#: the bias corrections 1-β^t each rule takes, and the β of each
CORRECTIONS = {"adam": {"v_correction": "beta1", "S_correction": "beta2"},
               "rmsprop": {"S_correction": "beta2"}}
#: torch's name of the lecture's hyperparameters (one name, or torch's pair for two)
ALIASES = {"gd": {}, "momentum": {"momentum": ("beta",)}, "rmsprop": {"alpha": ("beta2",)},
           "adam": {"betas": ("beta1", "beta2")}}


def moments(kind: str, group) -> tuple[str, ...]:
    """The names of the state tensors the rule keeps under ``group``'s options (each starts
    at 0): Momentum v; RMSProp S, and v with momentum, dW_avg when centered; Adam v and S,
    and S_max with AMSGrad."""
    if kind == "momentum":
        return ("v",)
    if kind == "rmsprop":
        return ("S",) + ("v",) * bool(group.get("momentum")) + ("dW_avg",) * bool(
            group.get("centered"))
    if kind == "adam":
        return ("v", "S") + ("S_max",) * bool(group.get("amsgrad"))
    return ()


def arguments(kind: str, group) -> dict:
    """The rule's keyword arguments from ``group`` (a param group, or a configuration whose
    values are tensors), all but the bias corrections of a step (:func:`corrections`)."""
    args = {"lr": group["lr"], **{name: group[name] for name in NUMERIC[kind]}}
    if kind == "momentum":
        args["form"] = group["form"]
        if group.get("nesterov"):
            args["nesterov"] = True
    if kind == "rmsprop" and group.get("momentum"):
        args["momentum"] = group["momentum"]
    if group.get("weight_decay"):
        args["weight_decay"] = group["weight_decay"]
        if group.get("decoupled_weight_decay"):
            args["decoupled"] = True
    if group.get("maximize"):
        args["maximize"] = True
    return args


def corrections(kind: str, group, t) -> dict:
    """The bias corrections 1-β^t the rule takes at step ``t``, by argument name (none for
    RMSProp without ``bias_correction``); β and t may be tensors (one β per configuration,
    many steps at once)."""
    if kind == "rmsprop" and not group.get("bias_correction"):
        return {}
    return {key: bias_correction(group[beta], t)
            for key, beta in CORRECTIONS.get(kind, {}).items()}


def _spread(torch_name, value, names) -> tuple:
    if len(names) == 1:
        return (value,)
    try:
        values = tuple(value)
    except TypeError:
        values = ()
    if len(values) != len(names):
        raise ValueError(f"{torch_name} must be a pair ({', '.join(names)}), got {value!r}")
    return values


def _form_of(group) -> str:
    """Momentum's form from torch's dampening: 0 is form "sum", β (the (1-β) factor) "ewa"."""
    dampening, beta = group["dampening"], group["beta"]
    if dampening == 0:
        return "sum"
    if dampening == beta:
        return "ewa"
    raise ValueError(f"dampening must be 0 (form 'sum') or equal to momentum = {beta!r} (form "
                     f"'ewa'), got {dampening!r}")


def resolve(kind: str, group: dict, fallback: dict, *, prefer_torch: bool = False) -> dict:
    """``group`` with torch's names and the lecture's made one value: given either, the other
    follows (a missing partner from ``fallback``). Given both and different: ValueError, or,
    with ``prefer_torch`` (a loaded state dict, whose torch names a torch scheduler may have
    written), torch's value. Momentum's ``dampening`` follows its form (0 for "sum", β for
    "ewa"); given without a form, it sets the form."""
    out = dict(group)
    for torch_name, names in ALIASES[kind].items():
        if torch_name in out:
            for name, value in zip(names, _spread(torch_name, out[torch_name], names),
                                   strict=True):
                if name in out and out[name] != value and not prefer_torch:
                    raise ValueError(f"{torch_name}={out[torch_name]!r} disagrees with "
                                     f"{name}={out[name]!r}; give one of them")
                out[name] = value
        for name in names:
            if name not in out:
                out[name] = fallback[name]
        out[torch_name] = _torch_value(out, names)
    if kind == "momentum":
        if "form" not in out:
            out["form"] = _form_of(out) if "dampening" in out else fallback["form"]
        out["dampening"] = out["beta"] if out["form"] == "ewa" else 0.0
    return out


def torch_names(kind: str) -> set:
    """The keys of a group that are torch's names for the lecture's (Momentum's dampening too)."""
    return set(ALIASES[kind]) | ({"dampening"} if kind == "momentum" else set())


def synced(kind: str, group: dict) -> dict:
    """``group`` with torch's names made again from the lecture's."""
    names = torch_names(kind)
    return resolve(kind, {k: v for k, v in group.items() if k not in names}, {})


def _torch_value(group, names):
    return group[names[0]] if len(names) == 1 else tuple(group[name] for name in names)


class Group(dict):
    """A param group whose torch names and lecture names stay one value: writing
    ``group["betas"] = (0.85, 0.99)`` (as ``OneCycleLR`` does) sets ``beta1`` and ``beta2``,
    writing ``group["beta1"]`` sets ``betas``; Momentum's ``dampening`` follows β and the form.
    ``kind`` (a subclass's) says which method's names; GD has none."""

    kind = "gd"

    def __setitem__(self, key, value):
        aliases = ALIASES[self.kind]
        if self.kind == "momentum" and key == "dampening" and "beta" in self:
            self["form"] = _form_of({"dampening": value, "beta": self["beta"]})
            return
        if key in aliases:
            spread = _spread(key, value, aliases[key])  # (a bad pair refused before any write)
            super().__setitem__(key, value)
            for name, each in zip(aliases[key], spread, strict=True):
                super().__setitem__(name, each)
        else:
            super().__setitem__(key, value)
            for torch_name, names in aliases.items():
                if key in names and all(name in self for name in names):
                    super().__setitem__(torch_name, _torch_value(self, names))
        if self.kind == "momentum" and key in ("beta", "momentum", "form") and \
                "form" in self and "beta" in self:
            super().__setitem__("dampening", self["beta"] if self["form"] == "ewa" else 0.0)


class MomentumGroup(Group):
    kind = "momentum"


class RMSPropGroup(Group):
    kind = "rmsprop"


class AdamGroup(Group):
    kind = "adam"


GROUPS = {"gd": Group, "momentum": MomentumGroup, "rmsprop": RMSPropGroup, "adam": AdamGroup}
