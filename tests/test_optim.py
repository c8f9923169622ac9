"""The optimizers: identities with torch.optim and with each other, hand-worked steps, the
torch.optim protocol (param groups, closures, state_dict, schedulers) and argument checks."""

from __future__ import annotations

import collections
import copy
import inspect
import io
import math
import re

import pytest
import torch

import gdlab
from gdlab import GD, Adam, Momentum, RMSProp

F64 = torch.float64
SHAPES = [(5,), (3, 4), (2, 3, 2), ()]
STEPS = 100


def _initial_params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=F64) for shape in SHAPES]


def _quadratic(seed=1):
    """J(W) = ½‖A·w - b‖² over all parameters flattened into w: a random, coupled quadratic,
    so that every step's gradient depends on the path taken."""
    n = sum(math.prod(shape) for shape in SHAPES)
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=gen, dtype=F64) / math.sqrt(n)
    b = torch.randn(n, generator=gen, dtype=F64)

    def loss(params, step):
        w = torch.cat([p.reshape(-1) for p in params])
        return 0.5 * ((A @ w - b) ** 2).sum()

    return loss


def _fixed_random_grads(seed=2):
    """A fixed random gradient per step and parameter, whatever the parameters are (the loss
    ⟨g_t, W⟩ has exactly that gradient). Some are large, some tiny."""
    gen = torch.Generator().manual_seed(seed)
    grads = [[torch.randn(shape, generator=gen, dtype=F64) * 10 ** float(torch.randint(
        -3, 3, (), generator=gen)) for shape in SHAPES] for _ in range(STEPS)]

    def loss(params, step):
        return sum((g * p).sum() for g, p in zip(grads[step], params))

    return loss


PROBLEMS = {"quadratic": _quadratic, "random-grads": _fixed_random_grads}


def _train(make_optimizer, loss_fn, steps=STEPS, params=None):
    params = [p.clone().requires_grad_(True) for p in (params or _initial_params())]
    optimizer = make_optimizer(params)
    for step in range(steps):
        optimizer.zero_grad()
        loss_fn(params, step).backward()
        optimizer.step()
    return [p.detach() for p in params], optimizer


def _assert_same(params_a, params_b, tol=1e-10):
    for a, b in zip(params_a, params_b, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def _moved(params_a, params_b):
    """The runs did move the parameters (an identity between two no-ops proves nothing)."""
    start = _initial_params()
    assert max((a - s).abs().max().item() for a, s in zip(params_a, start)) > 1e-3
    assert max((b - s).abs().max().item() for b, s in zip(params_b, start)) > 1e-3


# --- identities -------------------------------------------------------------------------------


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize(("lr", "betas", "eps"), [(1e-2, (0.9, 0.999), 1e-8),
                                                  (3e-2, (0.8, 0.95), 1e-6)])
def test_adam_equals_torch_adam(make, problem, lr, betas, eps):
    loss = PROBLEMS[problem]()
    ours, _ = _train(lambda p: make(Adam, p, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps),
                     loss)
    theirs, _ = _train(lambda p: torch.optim.Adam(p, lr=lr, betas=betas, eps=eps), loss)
    _moved(ours, theirs)
    _assert_same(ours, theirs)


def test_adam_step_counts_made_a_few_at_a_time(make, monkeypatch):
    """torch's kernel reads each step's t from a tensor, made STEPS_AHEAD at a time: with three
    at a time, a run of many steps still equals torch.optim.Adam."""
    from gdlab.optim import flat

    monkeypatch.setattr(flat, "STEPS_AHEAD", 3)
    loss = PROBLEMS["random-grads"]()
    ours, _ = _train(lambda p: make(Adam, p, lr=1e-2), loss)
    theirs, _ = _train(lambda p: torch.optim.Adam(p, lr=1e-2), loss)
    _moved(ours, theirs)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("beta", [0.9, 0.5, 0.0])
def test_momentum_sum_equals_torch_sgd_momentum(make, problem, beta):
    loss = PROBLEMS[problem]()
    ours, _ = _train(lambda p: make(Momentum, p, lr=0.01, beta=beta, form="sum"), loss)
    theirs, _ = _train(lambda p: torch.optim.SGD(p, lr=0.01, momentum=beta), loss)
    _moved(ours, theirs)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("beta", [0.9, 0.99])
def test_momentum_ewa_with_lr_equals_sum_with_lr_times_one_minus_beta(make, problem, beta):
    loss = PROBLEMS[problem]()
    lr = 0.05
    ewa_form, _ = _train(lambda p: make(Momentum, p, lr=lr, beta=beta, form="ewa"), loss)
    sum_form, _ = _train(lambda p: make(Momentum, p, lr=lr * (1 - beta), beta=beta,
                                        form="sum"), loss)
    _moved(ewa_form, sum_form)
    _assert_same(ewa_form, sum_form)


def test_momentum_default_form_is_ewa(make):
    loss = _quadratic()
    default, _ = _train(lambda p: make(Momentum, p, lr=0.05, beta=0.9), loss)
    ewa_form, _ = _train(lambda p: make(Momentum, p, lr=0.05, beta=0.9, form="ewa"), loss)
    sum_form, _ = _train(lambda p: make(Momentum, p, lr=0.05, beta=0.9, form="sum"), loss)
    _assert_same(default, ewa_form, tol=0)
    with pytest.raises(AssertionError):
        _assert_same(default, sum_form)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize(("beta2", "eps"), [(0.9, 1e-8), (0.99, 1e-6)])
def test_rmsprop_equals_torch_rmsprop(make, problem, beta2, eps):
    loss = PROBLEMS[problem]()
    ours, _ = _train(lambda p: make(RMSProp, p, lr=1e-3, beta2=beta2, eps=eps), loss)
    theirs, _ = _train(lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=beta2, eps=eps), loss)
    _moved(ours, theirs)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_rmsprop_bias_corrected_equals_adam_with_beta1_zero(make, problem):
    loss = PROBLEMS[problem]()
    rms, _ = _train(lambda p: make(RMSProp, p, lr=1e-2, beta2=0.99, eps=1e-8,
                                   bias_correction=True), loss)
    adam, _ = _train(lambda p: make(Adam, p, lr=1e-2, beta1=0.0, beta2=0.99, eps=1e-8), loss)
    _moved(rms, adam)
    _assert_same(rms, adam)
    # and without the correction it is a different method
    plain, _ = _train(lambda p: make(RMSProp, p, lr=1e-2, beta2=0.99, eps=1e-8), loss)
    with pytest.raises(AssertionError):
        _assert_same(plain, adam)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_gd_equals_torch_sgd(make, problem):
    loss = PROBLEMS[problem]()
    ours, _ = _train(lambda p: make(GD, p, lr=0.05), loss)
    theirs, _ = _train(lambda p: torch.optim.SGD(p, lr=0.05), loss)
    _moved(ours, theirs)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("cls", [GD, Momentum, RMSProp, Adam])
def test_flat_path_equals_per_tensor_path(cls):
    if "flat" not in inspect.signature(cls).parameters:
        pytest.skip("no flat path")
    loss = _quadratic()
    flat, _ = _train(lambda p: cls(p, lr=1e-2, flat=True), loss)
    ref, _ = _train(lambda p: cls(p, lr=1e-2, flat=False), loss)
    _assert_same(flat, ref, tol=1e-12)


# --- one or two steps by hand -----------------------------------------------------------------


def _one_param(values, grad):
    W = torch.nn.Parameter(torch.tensor(values, dtype=F64))
    W.grad = torch.tensor(grad, dtype=F64)
    return W


def test_gd_step_by_hand(make):
    W = _one_param([1.0, -2.0], [0.5, -4.0])
    make(GD, [W], lr=0.1).step()
    torch.testing.assert_close(W.detach(), torch.tensor([0.95, -1.6], dtype=F64))


def test_adam_first_step_moves_each_weight_by_lr_times_sign(make):
    dW = [3.0, -0.02, 500.0, -1e-3]
    W = _one_param([0.0, 0.0, 1.0, 1.0], dW)
    opt = make(Adam, [W], lr=0.01)  # β₁ = 0.9, β₂ = 0.999, ε = 1e-8
    opt.step()
    # v̂₁ = dW, Ŝ₁ = dW²: W := W - α·dW/(|dW| + ε) ≈ W - α·sign(dW), whatever the size of dW
    g = torch.tensor(dW, dtype=F64)
    expected = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=F64) - 0.01 * g / (g.abs() + 1e-8)
    torch.testing.assert_close(W.detach(), expected, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(W.detach(), torch.tensor([-0.01, 0.01, 0.99, 1.01], dtype=F64),
                               rtol=0, atol=1e-7)
    state = opt.state[W]
    assert state["t"] == 1
    torch.testing.assert_close(state["v"], 0.1 * g)
    torch.testing.assert_close(state["S"], 0.001 * g * g)


def test_adam_second_step_by_hand(make):
    W = _one_param([0.0], [1.0])
    opt = make(Adam, [W], lr=0.1, beta1=0.5, beta2=0.75, eps=0.0)
    opt.step()
    W.grad = torch.tensor([3.0], dtype=F64)
    opt.step()
    v = 0.5 * 0.5 * 1 + 0.5 * 3          # 1.75
    S = 0.75 * 0.25 * 1 + 0.25 * 9       # 2.4375
    step2 = 0.1 * (v / (1 - 0.5**2)) / math.sqrt(S / (1 - 0.75**2))
    assert W.item() == pytest.approx(-0.1 - step2, rel=1e-12)


def test_momentum_ewa_first_steps_by_hand(make):
    W = _one_param([1.0, 1.0], [2.0, -4.0])
    opt = make(Momentum, [W], lr=0.5, beta=0.9)
    opt.step()
    # v = (1-β)·dW = [0.2, -0.4];  W = 1 - 0.5·v
    torch.testing.assert_close(opt.state[W]["v"], torch.tensor([0.2, -0.4], dtype=F64))
    torch.testing.assert_close(W.detach(), torch.tensor([0.9, 1.2], dtype=F64))
    W.grad = torch.tensor([1.0, 1.0], dtype=F64)
    opt.step()
    # v = 0.9·[0.2, -0.4] + 0.1·[1, 1] = [0.28, -0.26]
    torch.testing.assert_close(opt.state[W]["v"], torch.tensor([0.28, -0.26], dtype=F64))
    torch.testing.assert_close(W.detach(), torch.tensor([0.9 - 0.14, 1.2 + 0.13], dtype=F64))


def test_momentum_sum_first_step_is_plain_gd(make):
    W = _one_param([1.0], [2.0])
    make(Momentum, [W], lr=0.5, beta=0.9, form="sum").step()
    assert W.item() == pytest.approx(0.0)


def test_rmsprop_first_step_without_bias_correction_is_large(make):
    # S₁ = (1-β₂)·dW², so the first step is α·dW/(√(1-β₂)·|dW|) = α/√(1-β₂) — 31.6·α at 0.999
    W = _one_param([0.0, 0.0], [0.3, -7.0])
    opt = make(RMSProp, [W], lr=0.01, beta2=0.999, eps=0.0)
    opt.step()
    torch.testing.assert_close(W.detach(), torch.tensor([-1.0, 1.0], dtype=F64) * 0.01
                               / math.sqrt(0.001))
    torch.testing.assert_close(opt.state[W]["S"], 0.001 * torch.tensor([0.09, 49.0], dtype=F64))
    W2 = _one_param([0.0, 0.0], [0.3, -7.0])
    make(RMSProp, [W2], lr=0.01, beta2=0.999, eps=0.0, bias_correction=True).step()
    torch.testing.assert_close(W2.detach(), torch.tensor([-0.01, 0.01], dtype=F64))


def test_defaults_follow_the_lecture():
    W = [torch.nn.Parameter(torch.zeros(1))]
    assert Momentum(W).defaults["beta"] == 0.9
    assert Momentum(W).defaults["form"] == "ewa"
    adam = Adam(W).defaults
    assert (adam["beta1"], adam["beta2"], adam["eps"]) == (0.9, 0.999, 1e-8)
    assert RMSProp(W).defaults["eps"] == 1e-8


def test_optimizers_registry():
    from gdlab.optim import OPTIMIZERS

    assert OPTIMIZERS == {"gd": GD, "momentum": Momentum, "rmsprop": RMSProp, "adam": Adam}


# --- the torch.optim protocol -----------------------------------------------------------------


@pytest.mark.parametrize(("cls", "torch_cls", "kwargs", "torch_kwargs"), [
    (GD, torch.optim.SGD, {}, {}),
    (Momentum, torch.optim.SGD, {"beta": 0.9, "form": "sum"}, {"momentum": 0.9}),
    (RMSProp, torch.optim.RMSprop, {"beta2": 0.9}, {"alpha": 0.9}),
    (Adam, torch.optim.Adam, {}, {}),
], ids=["GD", "Momentum", "RMSProp", "Adam"])
def test_param_groups_with_different_lr(make, cls, torch_cls, kwargs, torch_kwargs):
    loss = _quadratic()

    def groups(params):
        return [{"params": params[:2], "lr": 1e-2}, {"params": params[2:], "lr": 1e-3}]

    ours, opt = _train(lambda p: make(cls, groups(p), **kwargs), loss, steps=50)
    theirs, _ = _train(lambda p: torch_cls(groups(p), **torch_kwargs), loss, steps=50)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 1e-3]
    _assert_same(ours, theirs)
    # and the lr does matter: one lr for all gives something else
    same_lr, _ = _train(lambda p: make(cls, p, lr=1e-2, **kwargs), loss, steps=50)
    with pytest.raises(AssertionError):
        _assert_same(ours, same_lr)


def test_param_group_lr_applies_per_group(make):
    a = _one_param([0.0], [1.0])
    b = _one_param([0.0], [1.0])
    make(GD, [{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1).step()
    assert (a.item(), b.item()) == pytest.approx((-0.1, -0.5))


@pytest.mark.parametrize("cls", [GD, Momentum, RMSProp, Adam])
def test_closure(make, cls):
    params = [p.clone().requires_grad_(True) for p in _initial_params()]
    loss_fn = _quadratic()
    opt = make(cls, params, lr=1e-2)
    calls = []

    def closure():
        opt.zero_grad()
        loss = loss_fn(params, 0)
        loss.backward()
        calls.append(loss.item())
        return loss

    returned = opt.step(closure)
    assert len(calls) == 1
    assert returned.item() == calls[0]
    # the step used the closure's gradient: same as stepping by hand
    by_hand, _ = _train(lambda p: make(cls, p, lr=1e-2), loss_fn, steps=1)
    _assert_same([p.detach() for p in params], by_hand, tol=1e-14)
    assert opt.step(closure).item() < returned.item()


@pytest.mark.parametrize(("cls", "kwargs"), [(GD, {"lr": 0.05}), (Momentum, {"lr": 0.05}),
                                             (RMSProp, {"lr": 1e-2}), (Adam, {"lr": 1e-2}),
                                             (RMSProp, {"lr": 1e-2, "bias_correction": True})])
def test_state_dict_round_trip_continues_identically(make, cls, kwargs):
    loss = _quadratic()
    straight, _ = _train(lambda p: make(cls, p, **kwargs), loss, steps=20)

    first, opt = _train(lambda p: make(cls, p, **kwargs), loss, steps=10)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    params = [p.clone().requires_grad_(True) for p in first]
    fresh = make(cls, params, **kwargs)
    fresh.load_state_dict(torch.load(buffer))
    for step in range(10, 20):
        fresh.zero_grad()
        loss(params, step).backward()
        fresh.step()
    _assert_same([p.detach() for p in params], straight, tol=1e-12)
    # without the saved state the continuation differs (for the methods that have state)
    if cls is not GD:
        restarted, _ = _train(lambda p: make(cls, p, **kwargs), loss, steps=10, params=first)
        with pytest.raises(AssertionError):
            _assert_same(restarted, straight)


def test_state_holds_t_and_moments(make):
    W = _one_param([1.0, 2.0], [1.0, 1.0])
    opt = make(Adam, [W], lr=1e-3)
    for _ in range(3):
        opt.step()
    state = opt.state_dict()["state"][0]
    assert state["t"] == 3
    assert set(state) >= {"t", "v", "S"}
    assert state["v"].shape == W.shape and state["S"].shape == W.shape


@pytest.mark.parametrize("cls", [GD, Adam])
def test_works_with_torch_step_lr(make, cls):
    W = torch.nn.Parameter(torch.zeros(3, dtype=F64))
    opt = make(cls, [W], lr=0.4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs, moves = [], []
    for _epoch in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        before = W.detach().clone()
        W.grad = torch.ones_like(W)  # constant dW: GD and Adam both move by α per step
        opt.step()
        moves.append((before - W.detach())[0].item())
        sched.step()
    assert lrs == pytest.approx([0.4, 0.4, 0.2, 0.2, 0.1, 0.1])
    assert moves == pytest.approx(lrs, rel=1e-6)


TORCH_TWINS = {GD: (torch.optim.SGD, {}), Momentum: (torch.optim.SGD, {"momentum": 0.9}),
               RMSProp: (torch.optim.RMSprop, {"alpha": 0.9}), Adam: (torch.optim.Adam, {})}
TWIN_KWARGS = {GD: {}, Momentum: {"form": "sum"}, RMSProp: {}, Adam: {}}


def _frozen_unused_used(set_to_none, optimizer_factory, steps=3):
    """Parameters [frozen (requires_grad=False), used, unused (not in the loss)]."""
    gen = torch.Generator().manual_seed(0)
    used = torch.nn.Parameter(torch.randn(4, generator=gen, dtype=F64))
    frozen = torch.nn.Parameter(torch.randn(3, generator=gen, dtype=F64), requires_grad=False)
    unused = torch.nn.Parameter(torch.randn(2, generator=gen, dtype=F64))
    opt = optimizer_factory([frozen, used, unused])
    for _ in range(steps):
        opt.zero_grad(set_to_none=set_to_none)
        (used**2).sum().backward()
        opt.step()
    return opt, frozen, used, unused


@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize("cls", [GD, Momentum, RMSProp, Adam])
def test_parameters_without_grad_are_not_moved(make, cls, set_to_none):
    ours = _frozen_unused_used(set_to_none, lambda p: make(cls, p, lr=0.1, **TWIN_KWARGS[cls]))
    twin_cls, twin_kwargs = TORCH_TWINS[cls]
    theirs = _frozen_unused_used(set_to_none, lambda p: twin_cls(p, lr=0.1, **twin_kwargs))
    gen = torch.Generator().manual_seed(0)  # the starting values, drawn as above
    used0 = torch.randn(4, generator=gen, dtype=F64)
    frozen0 = torch.randn(3, generator=gen, dtype=F64)
    unused0 = torch.randn(2, generator=gen, dtype=F64)
    _, frozen, used, unused = ours
    assert torch.equal(frozen.detach(), frozen0)
    assert torch.equal(unused.detach(), unused0)
    assert not torch.equal(used.detach(), used0)
    torch.testing.assert_close(used.detach(), theirs[2].detach(), rtol=1e-12, atol=1e-12)
    assert ours[0].state[used]["t"] == 3


@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize("cls", [GD, Momentum, RMSProp, Adam])
def test_parameters_without_grad_get_no_state(make, cls, set_to_none):
    opt, frozen, used, unused = _frozen_unused_used(set_to_none, lambda p: make(cls, p, lr=0.1))
    # as torch.optim: a parameter that never had a gradient has no state and keeps grad None
    assert frozen.grad is None and unused.grad is None
    assert not opt.state.get(frozen) and not opt.state.get(unused)
    assert len(opt.state_dict()["state"]) == 1


@pytest.mark.parametrize("cls", [GD, Momentum, RMSProp, Adam])
def test_add_param_group_during_training(make, cls):
    loss = _quadratic()
    twin_cls, twin_kwargs = TORCH_TWINS[cls]

    def run(factory):
        params = [p.clone().requires_grad_(True) for p in _initial_params()]
        opt = factory(params[:2])
        for step in range(10):
            if step == 5:
                opt.add_param_group({"params": params[2:], "lr": 0.02})
            opt.zero_grad()
            loss(params, step).backward()
            opt.step()
        return [p.detach() for p in params], opt

    ours, opt = run(lambda p: make(cls, p, lr=0.05, **TWIN_KWARGS[cls]))
    theirs, _ = run(lambda p: twin_cls(p, lr=0.05, **twin_kwargs))
    _assert_same(ours, theirs)
    assert [opt.state[p]["t"] for p in opt.param_groups[1]["params"]] == [5, 5]


def test_parameters_are_still_the_models(make):
    # whatever the optimizer does internally, the module's own parameters are trained
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).double()
    opt = make(Adam, model.parameters(), lr=0.1)
    X = torch.randn(8, 3, dtype=F64)
    before = model(X).detach().clone()
    for _ in range(3):
        opt.zero_grad()
        (model(X) ** 2).mean().backward()
        opt.step()
    after = model(X).detach()
    assert (after**2).mean() < (before**2).mean()
    assert all(p.grad is not None for p in model.parameters())
    assert list(model.parameters())[0] is opt.param_groups[0]["params"][0]


# --- the flat path's bookkeeping: t held by the group, and what makes it look again -----------


def _models(cls, dtype=F64, **kwargs):
    """The same small model twice, each with its optimizer: on the flat path, and per tensor."""
    pairs = []
    for flat in (True, False):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                    torch.nn.Linear(4, 1)).to(dtype)
        pairs.append((model, cls(model.parameters(), flat=flat, **kwargs)))
    return pairs


def _in_place_step(model, optimizer, before_step=None):
    """zero_grad(set_to_none=False) and backward: the gradients accumulate in place."""
    optimizer.zero_grad(set_to_none=False)
    X = torch.linspace(-1, 1, 24, dtype=next(model.parameters()).dtype).reshape(8, 3)
    (model(X) ** 2).mean().backward()
    if before_step is not None:
        before_step(model, optimizer)
    optimizer.step()


def _assert_same_models(pairs, tol=1e-12):
    (model, opt), (ref_model, ref) = pairs
    for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=tol, atol=tol)
        assert opt.state[p]["t"] == ref.state[q]["t"]
        for name in type(opt).moments:
            torch.testing.assert_close(opt.state[p][name], ref.state[q][name].to(p.dtype),
                                       rtol=tol, atol=tol)


@pytest.mark.parametrize("cls", [Momentum, RMSProp, Adam])
def test_usual_step_holds_t_and_the_state_shows_it(cls):
    pairs = _models(cls, lr=0.01)
    (model, opt), _ = pairs
    for step in range(1, 6):
        for model_, opt_ in pairs:
            _in_place_step(model_, opt_)
        assert opt._flat_groups[0].t == step  # held by the group: the usual step ran
    assert [s["t"] for s in opt.state_dict()["state"].values()] == [5] * 4
    assert opt._flat_groups[0].t is None  # given back to the state, read again at the next step
    for _ in range(2):
        for model_, opt_ in pairs:
            _in_place_step(model_, opt_)
    assert opt._flat_groups[0].t == 7
    _assert_same_models(pairs)


def test_a_parameter_without_gradient_is_skipped_and_lags_in_t():
    def drop_last_grad(model, optimizer):
        model[2].bias.grad = None

    pairs = _models(Adam, lr=0.01)
    for step in range(6):
        for model, opt in pairs:
            _in_place_step(model, opt, drop_last_grad if step == 3 else None)
    model, opt = pairs[0]
    assert [opt.state[p]["t"] for p in model.parameters()] == [6, 6, 6, 5]
    _assert_same_models(pairs)


def test_a_gradient_set_by_hand_is_copied_in():
    a, b = _one_param([0.0, 0.0], [1.0, 1.0]), _one_param([0.0], [2.0])
    opt = GD([a, b], lr=0.5)
    opt.step()
    opt.step()  # the usual step: the gradients are in their views
    assert opt._flat_groups[0].t == 2
    a.grad = torch.tensor([4.0, -4.0], dtype=F64)  # not the view: copied in
    opt.step()
    torch.testing.assert_close(a.detach(), torch.tensor([-3.0, 1.0], dtype=F64))
    assert b.item() == pytest.approx(-3.0)
    assert opt._flat_groups[0].t == 3
    assert opt.state[a]["t"] == opt.state[b]["t"] == 3


def test_moving_the_model_rebuilds_the_buffers():
    pairs = _models(Adam, dtype=torch.float32, lr=0.01)
    for _ in range(3):
        for model, opt in pairs:
            _in_place_step(model, opt)
    for model, _ in pairs:
        model.to(F64)  # new storage for every parameter (and gradient)
    for model, opt in pairs:
        _in_place_step(model, opt)
    model, opt = pairs[0]
    flat = opt._flat_groups[0]
    assert flat.W.dtype == F64 and all(m.dtype == F64 for m in flat.moments.values())
    assert list(model.parameters()) == opt.param_groups[0]["params"]
    # every parameter's memory lies in W (each through a storage of its own: see gdlab.optim.flat)
    start, end = flat.W.data_ptr(), flat.W.data_ptr() + flat.W.nbytes
    assert all(start <= p.data_ptr() < end for p in model.parameters())
    assert flat.t == 4
    # the per-tensor path keeps float32 moments after the move: equal to float32 precision
    _assert_same_models(pairs, tol=1e-6)


def test_state_changed_from_outside_is_used():
    def change_state(model, optimizer):
        first, second = list(model.parameters())[:2]
        optimizer.state[first]["t"] = 0  # restart its bias correction
        optimizer.state[first]["v"] = torch.zeros_like(first)  # a new tensor
        optimizer.state[second] = {k: v.clone() if isinstance(v, torch.Tensor) else v
                                   for k, v in optimizer.state[second].items()}  # as ZeRO loads

    pairs = _models(Adam, lr=0.01)
    for step in range(6):
        for model, opt in pairs:
            _in_place_step(model, opt, change_state if step == 3 else None)
    model, opt = pairs[0]
    assert [opt.state[p]["t"] for p in model.parameters()] == [3, 6, 6, 6]
    _assert_same_models(pairs)


def test_a_new_state_starts_over():
    def reset(model, optimizer):
        optimizer.state = collections.defaultdict(dict)

    pairs = _models(Adam, lr=0.01)
    for step in range(6):
        for model, opt in pairs:
            _in_place_step(model, opt, reset if step == 3 else None)
    model, opt = pairs[0]
    assert [opt.state[p]["t"] for p in model.parameters()] == [3] * 4
    _assert_same_models(pairs)


def test_a_copied_optimizer_continues_the_same(make):
    W = _one_param([1.0, -2.0], [0.5, -4.0])
    opt = make(Adam, [W], lr=0.1)
    opt.step()
    opt.step()
    W2, opt2 = copy.deepcopy((W, opt))
    for p, o in ((W, opt), (W2, opt2)):
        p.grad = torch.tensor([1.0, 3.0], dtype=F64)
        o.step()
    torch.testing.assert_close(W2.detach(), W.detach(), rtol=0, atol=0)
    assert opt2.state[W2]["t"] == 3


# --- argument checks --------------------------------------------------------------------------

ALL = [GD, Momentum, RMSProp, Adam]


@pytest.mark.parametrize("lr", [0, -1, math.nan, math.inf, -math.inf, "0.1", True])
@pytest.mark.parametrize("cls", ALL)
def test_lr_checked(cls, lr):
    W = [torch.nn.Parameter(torch.zeros(1))]
    message = rf"lr must be a finite number > 0, got {re.escape(repr(lr))}"
    with pytest.raises(ValueError, match=message):
        cls(W, lr=lr)


@pytest.mark.parametrize("value", [-0.1, 1, 1.2, math.nan])
@pytest.mark.parametrize(("cls", "name"), [(Momentum, "beta"), (RMSProp, "beta2"),
                                           (Adam, "beta1"), (Adam, "beta2")])
def test_betas_checked(cls, name, value):
    W = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match=rf"^{name} must be in \[0, 1\), got {value!r}$"):
        cls(W, **{name: value})


def test_beta_message_example_from_the_design():
    with pytest.raises(ValueError, match=r"^beta must be in \[0, 1\), got 1.2$"):
        Momentum([torch.nn.Parameter(torch.zeros(1))], beta=1.2)


@pytest.mark.parametrize("eps", [-1e-8, -1, math.nan, math.inf])
@pytest.mark.parametrize("cls", [RMSProp, Adam])
def test_eps_checked(cls, eps):
    W = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match=rf"eps must be a finite number >= 0, got {eps!r}"):
        cls(W, eps=eps)


@pytest.mark.parametrize("form", ["nesterov", "EWA", None])
def test_form_checked(form):
    with pytest.raises(ValueError, match=rf"form must be one of 'ewa', 'sum', got {form!r}"):
        Momentum([torch.nn.Parameter(torch.zeros(1))], form=form)


def test_boundary_values_accepted():
    W = [torch.nn.Parameter(torch.zeros(1))]
    Momentum(W, beta=0.0)
    Adam(W, beta1=0.0, beta2=0.0, eps=0.0)
    RMSProp(W, beta2=0.0, eps=0.0)
    GD(W, lr=1e-12)


def test_numpy_scalars_accepted():
    np = pytest.importorskip("numpy")
    W = [torch.nn.Parameter(torch.zeros(1))]
    opt = Adam(W, lr=np.float32(0.01), beta1=np.float64(0.9))
    assert opt.defaults["lr"] == pytest.approx(0.01)
    assert isinstance(opt.defaults["lr"], float)


def test_sparse_gradients_rejected(make):
    W = torch.nn.Parameter(torch.zeros(3, 2))
    W.grad = torch.zeros(3, 2).to_sparse()
    with pytest.raises(TypeError, match="sparse"):
        make(Adam, [W], lr=0.1).step()


def test_exported_names():
    for name in ("GD", "Momentum", "RMSProp", "Adam"):
        assert issubclass(getattr(gdlab, name), torch.optim.Optimizer)
