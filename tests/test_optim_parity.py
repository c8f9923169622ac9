"""What a torch.optim user switching to gdlab relies on (issue 27), each with torch.optim as the
control: weight decay of both kinds, AdamW, Nesterov, AMSGrad, maximize, RMSProp's momentum and
centered form on every path; torch's names in the param groups (betas, momentum, alpha) and
torch's schedulers that cycle them; state dicts that swap with torch's both ways; parameters by
name; and the flat buffer's contract — complex parameters, parameters tied through ``.data``,
``.data`` reassigned in place, channels_last, aliases, sparse gradients — in the same scenario
run with gdlab and with torch, for all four optimizers and both dtypes."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from gdlab.optim import GD, Adam, AdamW, Momentum, RMSProp

F32, F64 = torch.float32, torch.float64
DTYPES = pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
TOL = {F32: 2e-6, F64: 1e-12, torch.complex64: 2e-6, torch.complex128: 1e-12}
SHAPES = [(5,), (3, 4), (2, 3, 2)]
PATHS = {"per-tensor": {"flat": False}, "flat": {"flat": True},
         "fused": {"flat": True, "fused": True}, "eager-flat": {"flat": True, "fused": False}}


def _close(ours, theirs, dtype):
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=TOL[dtype], atol=TOL[dtype])


def _moved(ours, start):
    assert max((a - b).abs().max().item() for a, b in zip(ours, start, strict=True)) > 1e-3


def _train(make, dtype, steps=12, seed=0):
    """SHAPES trained ``steps`` steps on seeded random gradients (some large, some small)."""
    generator = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator, dtype=dtype)) for s in SHAPES]
    start = [p.detach().clone() for p in params]
    optimizer = make(params)
    grads = torch.Generator().manual_seed(seed + 1)
    for step in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=grads, dtype=dtype) * 10.0 ** (step % 3 - 1)
        optimizer.step()
    return [p.detach().clone() for p in params], start, optimizer


# --- every option against torch.optim, on every path -----------------------------------------

OPTIONS = [
    ("Adam-L2", Adam, {"weight_decay": 0.1}, torch.optim.Adam, {"weight_decay": 0.1}),
    ("Adam-decoupled", Adam, {"weight_decay": 0.1, "decoupled_weight_decay": True},
     torch.optim.AdamW, {"weight_decay": 0.1}),
    ("AdamW", AdamW, {}, torch.optim.AdamW, {}),
    ("AdamW-amsgrad-maximize", AdamW, {"amsgrad": True, "maximize": True, "weight_decay": 0.05},
     torch.optim.AdamW, {"amsgrad": True, "maximize": True, "weight_decay": 0.05}),
    ("Adam-amsgrad-betas", Adam, {"amsgrad": True, "betas": (0.8, 0.99)}, torch.optim.Adam,
     {"amsgrad": True, "betas": (0.8, 0.99)}),
    ("Adam-maximize", Adam, {"maximize": True}, torch.optim.Adam, {"maximize": True}),
    ("Momentum-nesterov", Momentum, {"form": "sum", "nesterov": True}, torch.optim.SGD,
     {"momentum": 0.9, "nesterov": True}),
    ("Momentum-nesterov-L2-maximize", Momentum, {"momentum": 0.8, "dampening": 0.0,
                                                 "nesterov": True, "weight_decay": 0.05,
                                                 "maximize": True},
     torch.optim.SGD, {"momentum": 0.8, "nesterov": True, "weight_decay": 0.05,
                       "maximize": True}),
    ("Momentum-L2", Momentum, {"form": "sum", "weight_decay": 0.1}, torch.optim.SGD,
     {"momentum": 0.9, "weight_decay": 0.1}),
    ("RMSProp-momentum-centered", RMSProp, {"alpha": 0.95, "momentum": 0.5, "centered": True},
     torch.optim.RMSprop, {"alpha": 0.95, "momentum": 0.5, "centered": True}),
    ("RMSProp-L2-maximize", RMSProp, {"weight_decay": 0.1, "maximize": True},
     torch.optim.RMSprop, {"alpha": 0.9, "weight_decay": 0.1, "maximize": True}),
    ("GD-L2-maximize", GD, {"weight_decay": 0.1, "maximize": True}, torch.optim.SGD,
     {"weight_decay": 0.1, "maximize": True}),
]


@DTYPES
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("cls", "kwargs", "twin", "twin_kwargs"), [o[1:] for o in OPTIONS],
                         ids=[o[0] for o in OPTIONS])
def test_option_equals_torch(cls, kwargs, twin, twin_kwargs, path, dtype):
    ours, start, _ = _train(lambda p: cls(p, lr=0.01, **kwargs, **PATHS[path]), dtype)
    theirs, _, _ = _train(lambda p: twin(p, lr=0.01, **twin_kwargs), dtype)
    _moved(theirs, start)
    _close(ours, theirs, dtype)


@pytest.mark.parametrize("cls", [GD, Momentum, RMSProp, Adam])
def test_the_two_weight_decays_differ_except_for_gd(cls):
    l2, _, _ = _train(lambda p: cls(p, lr=0.01, weight_decay=0.5), F64)
    decoupled, _, _ = _train(lambda p: cls(p, lr=0.01, weight_decay=0.5,
                                           decoupled_weight_decay=True), F64)
    if cls is GD:  # W - α·(dW + λ·W) = (1 - α·λ)·W - α·dW
        _close(l2, decoupled, F64)
    else:
        with pytest.raises(AssertionError):
            _close(l2, decoupled, F64)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_ewa_with_lr_equals_sum_with_lr_times_one_minus_beta(nesterov):
    ewa, start, _ = _train(lambda p: Momentum(p, lr=0.05, beta=0.9, nesterov=nesterov), F64)
    summed, _, _ = _train(lambda p: Momentum(p, lr=0.05 * 0.1, beta=0.9, form="sum",
                                             nesterov=nesterov), F64)
    _moved(ewa, start)
    _close(ewa, summed, F64)


def test_adamw_defaults_are_torchs():
    W = [torch.nn.Parameter(torch.zeros(1))]
    ours, theirs = AdamW(W).defaults, torch.optim.AdamW(W).defaults
    assert (ours["lr"], ours["betas"], ours["eps"], ours["weight_decay"]) == \
        (theirs["lr"], theirs["betas"], theirs["eps"], theirs["weight_decay"]) == \
        (1e-3, (0.9, 0.999), 1e-8, 1e-2)
    assert ours["decoupled_weight_decay"] is True


# --- torch's names in the param groups --------------------------------------------------------


def test_torch_names_follow_the_lectures_and_back():
    W = [torch.nn.Parameter(torch.zeros(2))]
    adam = Adam(W, betas=(0.8, 0.99)).param_groups[0]
    assert (adam["beta1"], adam["beta2"], adam["betas"]) == (0.8, 0.99, (0.8, 0.99))
    adam["beta1"] = 0.7
    assert adam["betas"] == (0.7, 0.99)
    adam["betas"] = (0.6, 0.95)
    assert (adam["beta1"], adam["beta2"]) == (0.6, 0.95)
    momentum = Momentum(W, momentum=0.8, dampening=0.0).param_groups[0]
    assert (momentum["beta"], momentum["form"]) == (0.8, "sum")
    momentum["momentum"] = 0.5
    assert momentum["beta"] == 0.5 and momentum["dampening"] == 0.0
    ewa = Momentum(W, beta=0.7).param_groups[0]
    assert (ewa["momentum"], ewa["dampening"]) == (0.7, 0.7)
    ewa["beta"] = 0.6
    assert (ewa["momentum"], ewa["dampening"]) == (0.6, 0.6)
    rms = RMSProp(W, alpha=0.95).param_groups[0]
    assert rms["beta2"] == 0.95
    rms["alpha"] = 0.5
    assert rms["beta2"] == 0.5


@pytest.mark.parametrize("cls", [GD, Momentum, RMSProp, Adam, AdamW])
def test_a_groups_keys_build_the_same_optimizer(cls):
    """What ZeroRedundancyOptimizer does (gdlab.train.distributed.shard_optimizer_state)."""
    W = [torch.nn.Parameter(torch.zeros(2))]
    group = {k: v for k, v in cls(W, lr=0.02).param_groups[0].items() if k != "params"}
    assert {k: v for k, v in cls(W, **group).param_groups[0].items() if k != "params"} == group


def test_a_group_added_with_torch_names():
    a, b = (torch.nn.Parameter(torch.zeros(2)) for _ in range(2))
    opt = Adam([a], lr=0.1)
    opt.add_param_group({"params": [b], "betas": (0.5, 0.9)})
    assert (opt.param_groups[1]["beta1"], opt.param_groups[1]["beta2"]) == (0.5, 0.9)
    c = torch.nn.Parameter(torch.zeros(2))
    opt.add_param_group({"params": [c], "beta1": 0.3})
    assert opt.param_groups[2]["betas"] == (0.3, 0.999)


SCHEDULED = [
    ("Adam", Adam, {}, torch.optim.Adam, {}),
    ("Momentum", Momentum, {"form": "sum"}, torch.optim.SGD, {"momentum": 0.9}),
    ("RMSProp", RMSProp, {"momentum": 0.9}, torch.optim.RMSprop, {"alpha": 0.9, "momentum": 0.9}),
]


@pytest.mark.parametrize("scheduler", ["OneCycleLR", "CyclicLR"])
@pytest.mark.parametrize(("cls", "kwargs", "twin", "twin_kwargs"), [s[1:] for s in SCHEDULED],
                         ids=[s[0] for s in SCHEDULED])
def test_schedulers_that_cycle_momentum(cls, kwargs, twin, twin_kwargs, scheduler):
    def make_scheduler(optimizer):
        if scheduler == "OneCycleLR":
            return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=12)
        return torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=0.001, max_lr=0.05,
                                                 step_size_up=4)

    def run(make):
        generator = torch.Generator().manual_seed(0)
        W = torch.nn.Parameter(torch.randn(6, generator=generator, dtype=F64))
        optimizer = make([W])
        sched = make_scheduler(optimizer)
        betas = []
        for _ in range(12):
            W.grad = torch.randn(6, generator=generator, dtype=F64)
            optimizer.step()
            sched.step()
            group = optimizer.param_groups[0]
            betas.append(group["betas"][0] if "betas" in group else group["momentum"])
        return W.detach(), betas, optimizer

    ours, our_betas, optimizer = run(lambda p: cls(p, lr=0.01, **kwargs))
    theirs, their_betas, _ = run(lambda p: twin(p, lr=0.01, **twin_kwargs))
    assert our_betas == their_betas and len(set(our_betas)) > 3  # it did cycle
    group = optimizer.param_groups[0]
    lecture = {Adam: "beta1", Momentum: "beta", RMSProp: "momentum"}[cls]
    assert group[lecture] == our_betas[-1]
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


# --- state dicts that swap with torch's -------------------------------------------------------

SWAPS = [
    ("Adam", Adam, {}, torch.optim.Adam, {}),
    ("Adam-amsgrad-L2", Adam, {"amsgrad": True, "weight_decay": 0.01}, torch.optim.Adam,
     {"amsgrad": True, "weight_decay": 0.01}),
    ("AdamW", AdamW, {}, torch.optim.AdamW, {}),
    ("Momentum-sum", Momentum, {"form": "sum"}, torch.optim.SGD, {"momentum": 0.9}),
    ("Momentum-nesterov", Momentum, {"form": "sum", "nesterov": True}, torch.optim.SGD,
     {"momentum": 0.9, "nesterov": True}),
    ("Momentum-ewa-as-dampening", Momentum, {"form": "ewa"}, torch.optim.SGD,
     {"momentum": 0.9, "dampening": 0.9}),
    ("RMSProp", RMSProp, {}, torch.optim.RMSprop, {"alpha": 0.9}),
    ("RMSProp-momentum-centered", RMSProp, {"momentum": 0.5, "centered": True},
     torch.optim.RMSprop, {"alpha": 0.9, "momentum": 0.5, "centered": True}),
]


def _switch(first, second, dtype, steps=5, load=True):
    """``steps`` steps with ``first``, its state dict through torch.save/load into ``second``
    (built on the same parameters; ``load=False``: without it), ``steps`` more steps."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator, dtype=dtype)) for s in SHAPES]
    grads = torch.Generator().manual_seed(1)
    optimizer = first(params)
    for step in range(2 * steps):
        if step == steps:
            buffer = io.BytesIO()
            torch.save(optimizer.state_dict(), buffer)
            buffer.seek(0)
            optimizer = second(params)
            if load:
                optimizer.load_state_dict(torch.load(buffer))
        for p in params:
            p.grad = torch.randn(p.shape, generator=grads, dtype=dtype)
        optimizer.step()
    return [p.detach().clone() for p in params]


@DTYPES
@pytest.mark.parametrize("flat", [True, False], ids=["flat", "per-tensor"])
@pytest.mark.parametrize(("cls", "kwargs", "twin", "twin_kwargs"), [s[1:] for s in SWAPS],
                         ids=[s[0] for s in SWAPS])
def test_state_dict_swaps_with_torch(cls, kwargs, twin, twin_kwargs, flat, dtype):
    def ours(p):
        return cls(p, lr=0.01, flat=flat, **kwargs)

    def theirs(p):
        return twin(p, lr=0.01, **twin_kwargs)

    # 5 steps with one, load, 5 with the other = 10 steps with the first
    _close(_switch(ours, theirs, dtype), _switch(ours, ours, dtype), dtype)
    _close(_switch(theirs, ours, dtype), _switch(theirs, theirs, dtype), dtype)
    # and the state matters: a second optimizer that loads nothing continues differently
    with pytest.raises(AssertionError):
        _close(_switch(ours, theirs, dtype, load=False), _switch(ours, ours, dtype), dtype)


def test_state_dict_has_torchs_keys_and_gdlabs():
    W = torch.nn.Parameter(torch.zeros(3))
    opt = Adam([W], lr=0.1, amsgrad=True)
    W.grad = torch.ones(3)
    opt.step()
    state = opt.state_dict()["state"][0]
    assert {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "t", "v", "S", "S_max"} <= set(
        state)
    assert state["exp_avg"] is state["v"] and torch.equal(state["step"], torch.tensor(1.0))
    assert opt.state_dict()["param_groups"][0]["betas"] == (0.9, 0.999)


def test_old_checkpoints_with_t_v_S_still_load():
    def old(params, steps):
        """A state dict as gdlab wrote it before torch's names: t, v, S; no options."""
        opt = Adam(params, lr=0.01)
        for _ in range(steps):
            for p in params:
                p.grad = torch.full_like(p, 0.5)
            opt.step()
        saved = opt.state_dict()
        return {"state": {i: {k: s[k] for k in ("t", "v", "S")} for i, s in saved["state"].items()},
                "param_groups": [{k: g[k] for k in ("lr", "beta1", "beta2", "eps", "params")}
                                 for g in saved["param_groups"]]}

    params = [torch.nn.Parameter(torch.ones(3, dtype=F64))]
    saved = old(params, 3)
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt = torch.optim.Adam(theirs, lr=0.01)
    opt.load_state_dict({"state": {0: {"step": torch.tensor(3.0), "exp_avg": saved["state"][0]["v"],
                                       "exp_avg_sq": saved["state"][0]["S"]}},
                         "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8,
                                           "weight_decay": 0, "amsgrad": False,
                                           "params": [0]}]})
    ours = Adam(params, lr=0.5, amsgrad=True)
    ours.load_state_dict(copy.deepcopy(saved))
    assert ours.param_groups[0]["lr"] == 0.01
    for opt_, p in ((ours, params[0]), (opt, theirs[0])):
        p.grad = torch.full_like(p, 0.5)
        opt_.step()
    torch.testing.assert_close(params[0].detach(), theirs[0].detach(), rtol=1e-12, atol=1e-12)
    assert ours.state[params[0]]["t"] == 4


def test_a_torch_sgd_with_other_dampening_is_refused():
    W = torch.nn.Parameter(torch.zeros(2))
    theirs = torch.optim.SGD([W], lr=0.1, momentum=0.9, dampening=0.3)
    ours = Momentum([W], lr=0.1)
    with pytest.raises(ValueError, match=r"dampening must be 0 \(form 'sum'\) or equal to "
                                         r"momentum = 0.9 \(form 'ewa'\), got 0.3"):
        ours.load_state_dict(theirs.state_dict())


def _stepped(cls, **kwargs):
    params = [torch.nn.Parameter(torch.ones(s)) for s in ((2, 3), (4,))]
    opt = cls(params, lr=0.1, **kwargs)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    return params, opt


@pytest.mark.parametrize(("source", "adam_groups", "match"), [
    (RMSProp, True, r"state of parameter 0 holds square_avg, which Adam does not keep"),
    (Momentum, False, r"param group 0 of the state dict has no beta1: not a state dict of Adam"),
])
def test_another_optimizers_state_is_refused_and_nothing_changes(source, adam_groups, match):
    _, other = _stepped(source)
    params, opt = _stepped(Adam)
    before = copy.deepcopy(opt.state_dict())
    saved = other.state_dict()
    if adam_groups:  # Adam's hyperparameters, another method's state
        saved["param_groups"] = before["param_groups"]
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(saved)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i, s in before["state"].items():
        assert s["t"] == after["state"][i]["t"] and torch.equal(s["v"], after["state"][i]["v"])


def test_a_state_of_other_shapes_is_refused_and_nothing_changes():
    _, opt = _stepped(Adam)
    other = Adam([torch.nn.Parameter(torch.ones(3, 2)), torch.nn.Parameter(torch.ones(4))])
    other_saved = other.state_dict()
    other_saved["state"] = {i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(3, 2) if i == 0
                                else torch.zeros(4), "exp_avg_sq": torch.zeros(3, 2) if i == 0
                                else torch.zeros(4)} for i in (0, 1)}
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match=r"state of parameter 0 has v of shape \(3, 2\); the "
                                         r"parameter's shape is \(2, 3\)"):
        opt.load_state_dict(other_saved)
    assert opt.state_dict()["state"][0]["t"] == before["state"][0]["t"]
    assert opt.param_groups[0]["lr"] == 0.1


def test_a_loaded_group_with_bad_values_is_refused():
    _, opt = _stepped(Adam)
    saved = opt.state_dict()
    saved["param_groups"][0]["betas"] = (1.5, 0.999)
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\), got 1.5"):
        opt.load_state_dict(saved)
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)


# --- parameters by name, duplicates ----------------------------------------------------------


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def _steps(model, opt, steps, seed=0):
    X = torch.randn(8, 3, generator=torch.Generator().manual_seed(seed))
    for _ in range(steps):
        opt.zero_grad()
        (model(X) ** 2).mean().backward()
        opt.step()


def test_named_parameters_load_by_name_in_another_order():
    straight = _net()
    straight_opt = Adam(straight.named_parameters(), lr=0.05)
    _steps(straight, straight_opt, 10)

    model = _net()
    opt = Adam(model.named_parameters(), lr=0.05)
    assert opt.param_groups[0]["param_names"] == [n for n, _ in model.named_parameters()]
    _steps(model, opt, 5)
    saved = opt.state_dict()
    reordered = Adam(reversed(list(model.named_parameters())), lr=0.05)
    reordered.load_state_dict(saved)
    _steps(model, reordered, 5)
    for p, q in zip(model.parameters(), straight.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_named_parameters_of_another_model_are_refused():
    opt = Adam(_net().named_parameters(), lr=0.05)
    other = Adam([(f"x{i}", p) for i, p in enumerate(_net().parameters())], lr=0.05)
    with pytest.raises(ValueError, match=r"param group 0 of the state dict names parameters "
                                         r"this optimizer's lacks \('0.bias', '0.weight', "):
        other.load_state_dict(opt.state_dict())


@pytest.mark.parametrize("cls", [GD, Momentum, RMSProp, Adam, AdamW])
def test_a_parameter_given_twice_is_refused(cls):
    a, b = torch.nn.Parameter(torch.zeros(2, 3)), torch.nn.Parameter(torch.zeros(4))
    with pytest.raises(ValueError, match=r"parameter 2 of shape \(2, 3\) is given twice \(also "
                                         r"as parameter 0\)"):
        cls([a, b, a])
    with pytest.raises(ValueError, match=r"parameter 1 \('second'\) of shape \(4,\) is given "
                                         r"twice \(also as parameter 0\)"):
        cls([("first", b), ("second", b)])
    opt = cls([a])
    with pytest.raises(ValueError, match=r"parameter 0 of shape \(2, 3\) is given twice \(also "
                                         r"in an earlier param group\)"):
        opt.add_param_group({"params": [a]})


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "kwargs", "match"), [
    (Adam, {"weight_decay": -0.1}, r"weight_decay must be a finite number >= 0, got -0.1"),
    (GD, {"weight_decay": float("nan")}, r"weight_decay must be a finite number >= 0, got nan"),
    (RMSProp, {"momentum": 1.5}, r"momentum must be in \[0, 1\), got 1.5"),
    (Momentum, {"momentum": -0.1}, r"momentum must be in \[0, 1\), got -0.1"),
    (Adam, {"betas": (0.9,)}, r"betas must be a pair \(beta1, beta2\), got \(0.9,\)"),
    (Adam, {"betas": (0.9, 1.0)}, r"beta2 must be in \[0, 1\), got 1.0"),
    (Adam, {"betas": (0.8, 0.99), "beta1": 0.7},
     r"betas=\(0.8, 0.99\) disagrees with beta1=0.7; give one of them"),
    (Momentum, {"dampening": 0.5}, r"dampening must be 0 \(form 'sum'\) or equal to momentum"),
    (RMSProp, {"alpha": 0.5, "beta2": 0.7}, r"alpha=0.5 disagrees with beta2=0.7"),
    (AdamW, {"decoupled_weight_decay": False}, r"AdamW's weight decay is decoupled"),
    (RMSProp, {"centered": True, "bias_correction": True},
     r"centered=True cannot go with bias_correction=True"),
])
def test_bad_values_are_refused(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls([torch.nn.Parameter(torch.zeros(1))], **kwargs)


def test_betas_agreeing_with_beta1_are_accepted():
    opt = Adam([torch.nn.Parameter(torch.zeros(1))], betas=(0.8, 0.99), beta1=0.8)
    assert opt.defaults["betas"] == (0.8, 0.99)


# --- the flat buffer's contract, torch as the control ------------------------------------------

TWINS = {"GD": (GD, {}, torch.optim.SGD, {}),
         "Momentum": (Momentum, {"form": "sum"}, torch.optim.SGD, {"momentum": 0.9}),
         "RMSProp": (RMSProp, {}, torch.optim.RMSprop, {"alpha": 0.9}),
         "Adam": (Adam, {}, torch.optim.Adam, {})}
CONTRACT = pytest.mark.parametrize("name", TWINS)


def _both(name, scenario, *args):
    """``scenario(make, *args)`` run with gdlab's optimizer ``name`` and with its torch twin."""
    cls, kwargs, twin, twin_kwargs = TWINS[name]
    ours = scenario(lambda params: cls(params, lr=0.01, **kwargs), *args)
    theirs = scenario(lambda params: twin(params, lr=0.01, **twin_kwargs), *args)
    return ours, theirs


def _complex_scenario(make, dtype):
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator, dtype=dtype))
              for s in [(3,), (2, 2)]]
    opt = make(params)
    for _ in range(6):
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator, dtype=dtype)
        opt.step()
    return [p.detach() for p in params]


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128], ids=["complex64",
                                                                            "complex128"])
@CONTRACT
def test_complex_parameters(name, dtype):
    ours, theirs = _both(name, _complex_scenario, dtype)
    _close(ours, theirs, dtype)


@CONTRACT
def test_complex_one_step_by_hand(name):
    """p = 1+1j, dW = 1j: the real part does not move (its gradient is 0), as in torch."""
    def scenario(make):
        W = torch.nn.Parameter(torch.tensor([1 + 1j]))
        opt = make([W])
        W.grad = torch.tensor([1j])
        opt.step()
        return [W.detach()]

    ours, theirs = _both(name, scenario)
    assert ours[0].real.item() == 1.0
    _close(ours, theirs, torch.complex64)


def _tied_scenario(make, dtype, tie_after_first_step):
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 3).to(dtype), torch.nn.Linear(3, 3).to(dtype)
    if not tie_after_first_step:
        b.weight.data = a.weight.data
    opt = make([*a.parameters(), *b.parameters()])
    X = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=dtype)
    for step in range(4):
        if tie_after_first_step and step == 1:
            b.weight.data = a.weight.data
        opt.zero_grad()
        (b(torch.tanh(a(X))) ** 2).mean().backward()
        opt.step()
    assert torch.equal(a.weight, b.weight)  # still one tensor
    return [p.detach().clone() for p in (*a.parameters(), *b.parameters())]


@pytest.mark.parametrize("later", [False, True], ids=["tied-first", "tied-after-a-step"])
@DTYPES
@CONTRACT
def test_parameters_tied_through_data(name, dtype, later):
    ours, theirs = _both(name, _tied_scenario, dtype, later)
    _close(ours, theirs, dtype)


def _transposed_scenario(make, dtype, set_to_none):
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 4).to(dtype)
    opt = make(lin.parameters())
    X = torch.randn(6, 4, generator=torch.Generator().manual_seed(1), dtype=dtype)
    for step in range(5):
        if step == 2:
            lin.weight.data = lin.weight.data.t()  # the same address, other strides
        opt.zero_grad(set_to_none=set_to_none)
        (lin(X) ** 2).mean().backward()
        opt.step()
    return [lin.weight.detach().contiguous(), lin.bias.detach()]


@pytest.mark.parametrize("set_to_none", [True, False], ids=["grads-none", "grads-in-place"])
@DTYPES
@CONTRACT
def test_data_reassigned_at_the_same_address(name, dtype, set_to_none):
    ours, theirs = _both(name, _transposed_scenario, dtype, set_to_none)
    _close(ours, theirs, dtype)


def _channels_last_scenario(make, dtype):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3).to(dtype=dtype, memory_format=torch.channels_last)
    opt = make(conv.parameters())
    X = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1), dtype=dtype)
    for _ in range(3):
        opt.zero_grad(set_to_none=False)
        (conv(X.contiguous(memory_format=torch.channels_last)) ** 2).mean().backward()
        opt.step()
    return [conv.weight.detach(), conv.bias.detach()], conv.weight.stride()


@DTYPES
@CONTRACT
def test_channels_last_is_kept(name, dtype):
    (ours, our_stride), (theirs, their_stride) = _both(name, _channels_last_scenario, dtype)
    assert our_stride == their_stride == (27, 1, 9, 3)
    _close(ours, theirs, dtype)


def _alias_scenario(make, dtype):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).to(dtype)
    opt = make(model.parameters())
    w = model.weight.detach()  # aliases taken after the optimizer, before its first step
    saved = model.state_dict()
    X = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=dtype)
    for _ in range(3):
        opt.zero_grad()
        (model(X) ** 2).mean().backward()
        opt.step()
    assert torch.equal(w, model.weight) and torch.equal(saved["bias"], model.bias)
    return [model.weight.detach()]


@DTYPES
@CONTRACT
def test_aliases_taken_before_the_first_step_follow(name, dtype):
    ours, theirs = _both(name, _alias_scenario, dtype)
    _close(ours, theirs, dtype)


def _sparse_scenario(make, dtype, try_sparse):
    torch.manual_seed(0)
    dense, other = (torch.nn.Parameter(torch.randn(3, 2, dtype=dtype)) for _ in range(2))
    second = torch.nn.Parameter(torch.randn(2, dtype=dtype))
    opt = make([{"params": [dense, other]}, {"params": [second]}])
    for p in (dense, other, second):
        p.grad = torch.ones_like(p)
    if try_sparse:
        other.grad = torch.ones(3, 2, dtype=dtype).to_sparse()
        with pytest.raises((TypeError, RuntimeError), match="sparse"):
            opt.step()
        other.grad = torch.ones_like(other)
    opt.step()
    opt.step()
    steps = [int(opt.state[p].get("t", opt.state[p].get("step", 0))) for p in (dense, second)]
    return [p.detach().clone() for p in (dense, other, second)], steps


@DTYPES
@CONTRACT
def test_a_sparse_gradient_is_refused_before_anything_changes(name, dtype):
    cls, kwargs, twin, twin_kwargs = TWINS[name]
    ours, our_steps = _sparse_scenario(lambda p: cls(p, lr=0.01, **kwargs), dtype, True)
    theirs, their_steps = _sparse_scenario(lambda p: twin(p, lr=0.01, **twin_kwargs), dtype,
                                           False)
    _close(ours, theirs, dtype)
    if name in ("RMSProp", "Adam"):  # (torch's SGD keeps no step count)
        assert our_steps == their_steps == [2, 2]


@pytest.mark.parametrize("name", TWINS)
def test_safetensors_save_model_of_a_model_trained_flat(name, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    cls, kwargs, _, _ = TWINS[name]
    model = _net()
    opt = cls(model.parameters(), lr=0.01, **kwargs)
    _steps(model, opt, 2)
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_model(model, str(path))
    loaded = _net(seed=1)
    safetensors_torch.load_model(loaded, str(path))
    for p, q in zip(model.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(p, q)
    _steps(model, opt, 1)  # and the optimizer goes on with the model's parameters
    assert not torch.equal(next(model.parameters()), next(loaded.parameters()))


def test_weight_decay_comparison_of_a_real_run():
    """The data of the AdamW-against-L2 figure: Adam with L2 settles at h/(h + λ), decaying the
    coordinates the loss barely constrains to nothing; AdamW shrinks every coordinate alike."""
    from gdlab.lab.weight_decay import weight_decay_data, weight_decay_title

    result = weight_decay_data([1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0], steps=4000)
    torch.testing.assert_close(torch.tensor(result.l2), torch.tensor(result.l2_fixed_point),
                               rtol=0, atol=2e-3)
    assert result.l2[0] < 0.02 and result.l2[-1] > 0.99
    decoupled = torch.tensor(result.decoupled)
    assert decoupled.min() > 0.98 and decoupled.max() - decoupled.min() < 5e-3
    title = weight_decay_title(result)  # the figure's claim is these numbers
    assert f"W from {result.l2[0]:.3f} at h = 1e-03 to {result.l2[-1]:.3f}" in title
    assert f"W from {decoupled.min():.3f} to {decoupled.max():.3f}" in title
