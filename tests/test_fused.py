"""The fused path (the rule compiled into one pass over flat buffers) equals the reference path
(the rule applied tensor by tensor): float32 to 1e-6 and float64 to 1e-12, relative to the
largest weight — for every optimizer, form and option, with param groups of different α, a
schedule changing α, parameters that miss a gradient, and a state_dict round trip."""

import copy
import warnings

import pytest
import torch

from gdlab import GD, Adam, Momentum, RMSProp
from gdlab.optim import AdamW, paths, rules

CASES = [(GD, {}), (Momentum, {"form": "ewa"}), (Momentum, {"form": "sum", "beta": 0.8}),
         (RMSProp, {}), (RMSProp, {"bias_correction": True, "beta2": 0.999}),
         (Adam, {}), (Adam, {"beta1": 0.5, "beta2": 0.99, "eps": 1e-6}),
         # issue 27's options: each on the fused path too
         (GD, {"weight_decay": 0.1, "maximize": True}),
         (Momentum, {"nesterov": True, "weight_decay": 0.05}),
         (Momentum, {"form": "sum", "nesterov": True, "weight_decay": 0.05,
                     "decoupled_weight_decay": True}),
         (RMSProp, {"momentum": 0.5, "centered": True, "maximize": True}),
         (RMSProp, {"bias_correction": True, "weight_decay": 0.01,
                    "decoupled_weight_decay": True}),
         (Adam, {"amsgrad": True, "weight_decay": 0.01, "maximize": True}),
         (AdamW, {"amsgrad": True})]
TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-12}
SHAPES = [(30, 40), (50,), (2, 3, 4), (700,), (16, 16)]


NO_GRAD = (8,)  # a parameter that never gets a gradient, in a group of its own


def train(cls, kwargs, dtype, device, steps=24, **path):
    """SHAPES in one group (α = 0.01) plus NO_GRAD in a second (α = 0.003), trained ``steps``
    steps on the same seeded gradients on ``device``: α halved at step 8 (a schedule), a
    state_dict round trip at step 12, and parameters 1 and 3 without a gradient at step 16
    (``.grad`` None: their t lags behind from then on)."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator, dtype=dtype).to(device))
              for s in [*SHAPES, NO_GRAD]]
    groups = [{"params": params[:-1]}, {"params": params[-1:], "lr": 0.003}]
    optimizer = cls(groups, lr=0.01, **kwargs, **path)
    grads = torch.Generator().manual_seed(1)
    for step in range(steps):
        optimizer.zero_grad(set_to_none=step in (0, 16) or step % 3 == 0)
        for i, p in enumerate(params[:-1]):
            if step == 16 and i in (1, 3):
                continue
            p.grad = torch.randn(p.shape, generator=grads, dtype=dtype).to(device)
        if step == 8:
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
        optimizer.step()
        if step == 12:
            saved = copy.deepcopy(optimizer.state_dict())
            optimizer = cls(groups, lr=0.01, **kwargs, **path)
            optimizer.load_state_dict(saved)
    return params, optimizer


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("cls", "kwargs"), CASES,
                         ids=[f"{c.__name__}-{'-'.join(map(str, k.values())) or 'default'}"
                              for c, k in CASES])
def test_fused_equals_reference(cls, kwargs, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # compiling must really work here
        ours, optimizer = train(cls, kwargs, dtype, "cpu", flat=True, fused=True)
    reference, _ = train(cls, kwargs, dtype, "cpu", flat=False)
    for a, b in zip(ours, reference):
        scale = b.detach().abs().max()
        assert (a.detach() - b.detach()).abs().max() <= TOLERANCE[dtype] * scale
    assert not any(flat is None for flat in optimizer._flat_groups.values())
    steps = {name: s["t"] for name, s in optimizer.state_dict()["state"].items()}
    assert sorted(steps.values()) == [23, 23] + [24] * (len(SHAPES) - 2)  # 1 and 3 lag
    assert torch.equal(ours[-1], reference[-1]) and not optimizer.state.get(ours[-1])


KERNEL_CASES = [(Momentum, {"form": "ewa"}), (Momentum, {"form": "sum", "beta": 0.8}),
                (Momentum, {"beta": 0.0}), (Adam, {}),
                (Adam, {"beta1": 0.5, "beta2": 0.99, "eps": 1e-6}),
                (Momentum, {"form": "sum", "nesterov": True, "weight_decay": 0.1,
                            "maximize": True}),
                (Adam, {"weight_decay": 0.1, "amsgrad": True, "maximize": True}),
                (AdamW, {"amsgrad": True})]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("cls", "kwargs"), KERNEL_CASES,
                         ids=[f"{c.__name__}-{'-'.join(map(str, k.values())) or 'default'}"
                              for c, k in KERNEL_CASES])
def test_torch_kernel_for_small_buffers_equals_reference(cls, kwargs, dtype, monkeypatch):
    """Below FUSED_MIN_NUMEL, auto runs torch's own fused Adam / SGD kernel (no compiling):
    it must compute the rule's formula."""
    calls = []
    real = cls.torch_kernel
    monkeypatch.setattr(cls, "torch_kernel", lambda self, *a: calls.append(1) or real(self, *a))
    ours, _ = train(cls, kwargs, dtype, "cpu", flat=True)
    reference, _ = train(cls, kwargs, dtype, "cpu", flat=False)
    assert len(calls) > 10  # every usual step
    for a, b in zip(ours, reference):
        scale = b.detach().abs().max()
        assert (a.detach() - b.detach()).abs().max() <= TOLERANCE[dtype] * scale


def test_the_usual_step_runs_compiled_code(monkeypatch):
    calls = []
    real_run = paths.run
    monkeypatch.setattr(paths, "run", lambda rule, *a, **k: (calls.append(rule.__name__),
                                                             real_run(rule, *a, **k)))
    W = torch.nn.Parameter(torch.zeros(10))
    W.grad = torch.ones(10)
    RMSProp([W], lr=0.1, beta2=0.5, eps=0.0, fused=True).step()
    assert calls == ["rmsprop"]
    assert torch.allclose(W.detach(), torch.full((10,), -0.1 / 0.5**0.5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("rule", "hyper"), [
    (rules.adam, {"beta1": 0.9, "beta2": 0.99, "eps": 1e-8}),
    (rules.momentum, {"beta": 0.9, "form": "ewa"}), (rules.momentum, {"beta": 0.8, "form": "sum"})],
    ids=["adam", "momentum-ewa", "momentum-sum"])
def test_compiled_rule_equals_the_eager_rule(rule, hyper, dtype):
    """Adam and Momentum run torch's kernels on the CPU; their compiled rule (what a GPU runs)
    must still equal the rule, here too."""
    generator = torch.Generator().manual_seed(0)
    W = torch.randn(5000, generator=generator, dtype=dtype)
    buffers = {"eager": [W.clone(), *(torch.zeros_like(W) for _ in range(2))],
               "compiled": [W.clone(), *(torch.zeros_like(W) for _ in range(2))]}
    moments = 2 if rule is rules.adam else 1
    for t in range(1, 8):
        dW = torch.randn(5000, generator=generator, dtype=dtype)
        extra = {"v_correction": 1 - 0.9**t, "S_correction": 1 - 0.99**t} \
            if rule is rules.adam else {}
        rule(buffers["eager"][0], dW, *buffers["eager"][1:1 + moments], lr=0.01, **hyper, **extra)
        paths.run(rule, buffers["compiled"][0], dW, *buffers["compiled"][1:1 + moments], lr=0.01,
                  **hyper, **extra)
    scale = buffers["eager"][0].abs().max()
    assert (buffers["compiled"][0] - buffers["eager"][0]).abs().max() <= TOLERANCE[dtype] * scale


@pytest.mark.parametrize(("cls", "kwargs"), [
    (Adam, {"amsgrad": True, "weight_decay": 0.01, "maximize": True}), (AdamW, {}),
    (Momentum, {"form": "sum", "nesterov": True, "weight_decay": 0.05, "maximize": True})],
    ids=["Adam-amsgrad-L2-maximize", "AdamW", "Momentum-sum-nesterov-L2-maximize"])
def test_compiled_options_equal_reference(cls, kwargs, monkeypatch):
    """The rules that run torch's kernels on the CPU, compiled as on a GPU, with the options."""
    monkeypatch.setattr(paths, "use_torch_kernel", lambda *args: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ours, _ = train(cls, kwargs, torch.float64, "cpu", flat=True, fused=True)
    reference, _ = train(cls, kwargs, torch.float64, "cpu", flat=False)
    for a, b in zip(ours, reference):
        scale = b.detach().abs().max()
        assert (a.detach() - b.detach()).abs().max() <= TOLERANCE[torch.float64] * scale


def test_auto_uses_fused_only_for_large_buffers():
    assert not paths.use_fused(None, torch.zeros(10))
    assert paths.use_fused(None, torch.zeros(paths.FUSED_MIN_NUMEL))
    assert paths.use_fused(True, torch.zeros(10))
    assert not paths.use_fused(False, torch.zeros(paths.FUSED_MIN_NUMEL))


def test_fused_needs_flat():
    with pytest.raises(ValueError, match="fused=True needs flat=True"):
        Adam([torch.nn.Parameter(torch.zeros(2))], fused=True, flat=False)


def test_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch):
    def broken_compile(*args, **kwargs):
        def compiled(*a, **k):
            raise RuntimeError("no C++ compiler found")
        return compiled

    monkeypatch.setattr(paths, "_compiled", {})
    monkeypatch.setattr(paths, "_broken", set())
    monkeypatch.setattr(torch, "compile", broken_compile)
    W = torch.nn.Parameter(torch.zeros(3))
    optimizer = GD([W], lr=0.5, fused=True)
    with pytest.warns(RuntimeWarning, match="fused gd step is not available on cpu"):
        W.grad = torch.ones(3)
        optimizer.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizer.step()
    assert torch.equal(W.detach(), torch.full((3,), -1.0))


def _train_in_place(cls, kwargs, dtype, steps=12, **path):
    """Gradients accumulated into ``.grad`` by backward after zero_grad(set_to_none=False): on
    the flat path, the usual step (every gradient in its view, one t held by the group)."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator, dtype=dtype))
              for s in SHAPES]
    optimizer = cls(params, lr=0.01, **kwargs, **path)
    for step in range(steps):
        optimizer.zero_grad(set_to_none=False)
        sum((p * torch.randn(p.shape, generator=generator, dtype=dtype)).sum()
            for p in params).backward()
        optimizer.step()
        if step == 6:  # reading the state in between changes nothing
            assert all(s["t"] == 7 for s in optimizer.state_dict()["state"].values())
    return params, optimizer


@pytest.mark.parametrize(("cls", "kwargs"), CASES,
                         ids=[f"{c.__name__}-{'-'.join(map(str, k.values())) or 'default'}"
                              for c, k in CASES])
def test_usual_fused_step_equals_reference(cls, kwargs):
    ours, optimizer = _train_in_place(cls, kwargs, torch.float32, flat=True, fused=True)
    reference, _ = _train_in_place(cls, kwargs, torch.float32, flat=False)
    assert optimizer._flat_groups[0].t == 12  # the usual step ran, with t held by the group
    for a, b in zip(ours, reference):
        scale = b.detach().abs().max()
        assert (a.detach() - b.detach()).abs().max() <= TOLERANCE[torch.float32] * scale
    assert [optimizer.state[p]["t"] for p in ours] == [12] * len(SHAPES)


def test_complex_parameters_keep_the_rule():
    """torch's fused kernels have no complex form: complex parameters run the rule itself."""
    for cls in (Adam, Momentum):
        ours, reference = (torch.nn.Parameter(torch.tensor([1 + 1j, 2 - 1j])) for _ in range(2))
        for p in (ours, reference):
            p.grad = torch.tensor([0.5 + 0j, -0.5j])
        cls([ours], lr=0.1).step()
        cls([reference], lr=0.1, flat=False).step()
        assert torch.equal(ours.detach(), reference.detach())
