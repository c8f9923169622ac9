"""On a CUDA device: the fused step (compiled to Triton) equals the reference rule, ``fit`` and
the vectorized sweep trainer on the GPU equal themselves on the CPU, and ``gdlab tune
batch-size`` measures a step's CUDA memory and treats a CUDA out-of-memory as "does not fit".
Every test skips without a CUDA device."""

import copy
import os
import subprocess
import sys
import warnings

import pytest
import torch

import gdlab
from gdlab.lab import tune
from gdlab.optim import paths as fused
from test_fused import CASES, SHAPES, TOLERANCE, train
from test_tune import data  # noqa: F401  (the fixture: MLP 2-5-2-1 and 2048 examples)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("cls", "kwargs"), CASES,
                         ids=[f"{c.__name__}-{'-'.join(map(str, k.values())) or 'default'}"
                              for c, k in CASES])
def test_fused_on_cuda_equals_reference(cls, kwargs, dtype, monkeypatch):
    calls = []
    real_run = fused.run
    monkeypatch.setattr(fused, "run", lambda rule, *a, **k: (calls.append(a[0].device.type),
                                                             real_run(rule, *a, **k)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # compiling must really work on CUDA
        ours, optimizer = train(cls, kwargs, dtype, CUDA, flat=True, fused=True)
    assert (cls.rule, "cuda") not in fused._broken
    assert calls and set(calls) == {"cuda"}  # the compiled step ran, on the GPU
    reference, _ = train(cls, kwargs, dtype, CUDA, flat=False)
    on_cpu, _ = train(cls, kwargs, dtype, "cpu", flat=False)
    for a, b, c in zip(ours, reference, on_cpu, strict=True):
        assert a.device.type == "cuda" and a.dtype == dtype
        scale = b.detach().abs().max()
        assert (a.detach() - b.detach()).abs().max() <= TOLERANCE[dtype] * scale
        assert (a.detach().cpu() - c.detach()).abs().max() <= TOLERANCE[dtype] * scale
    # the parameter that never had a gradient: untouched and without state, also after reload
    no_grad = ours[-1]
    assert torch.equal(no_grad.detach().cpu(), on_cpu[-1].detach())
    assert not optimizer.state.get(no_grad)
    state = optimizer.state_dict()["state"]
    assert len(state) == len(SHAPES) and all(s["t"] in (23, 24) for s in state.values())
    for moment in (t for s in state.values() for t in s.values() if torch.is_tensor(t)):
        assert moment.device.type == "cuda"


def _train_by_backward(cls, kwargs, dtype, device, steps=12, **path):
    """SHAPES in one group, gradients accumulated into ``.grad`` by backward after
    zero_grad(set_to_none=False): the usual step of a training loop (every gradient in its view
    of the flat buffer), with a state_dict read in between."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator, dtype=dtype).to(device))
              for s in SHAPES]
    optimizer = cls(params, lr=0.01, **kwargs, **path)
    for step in range(steps):
        optimizer.zero_grad(set_to_none=False)
        sum((p * torch.randn(p.shape, generator=generator, dtype=dtype).to(device)).sum()
            for p in params).backward()
        optimizer.step()
        if step == 6:
            assert all(s["t"] == 7 for s in optimizer.state_dict()["state"].values())
    return params, optimizer


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("cls", "kwargs"), CASES,
                         ids=[f"{c.__name__}-{'-'.join(map(str, k.values())) or 'default'}"
                              for c, k in CASES])
def test_usual_fused_step_on_cuda_equals_reference(cls, kwargs, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ours, optimizer = _train_by_backward(cls, kwargs, dtype, CUDA, flat=True, fused=True)
    reference, _ = _train_by_backward(cls, kwargs, dtype, CUDA, flat=False)
    on_cpu, _ = _train_by_backward(cls, kwargs, dtype, "cpu", flat=False)
    for a, b, c in zip(ours, reference, on_cpu, strict=True):
        scale = b.detach().abs().max()
        assert (a.detach() - b.detach()).abs().max() <= TOLERANCE[dtype] * scale
        assert (a.detach().cpu() - c.detach()).abs().max() <= TOLERANCE[dtype] * scale
    assert [optimizer.state[p]["t"] for p in ours] == [12] * len(SHAPES)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("cls", [gdlab.Adam, gdlab.Momentum, gdlab.RMSProp, gdlab.GD],
                         ids=lambda c: c.__name__)
def test_fit_on_cuda_equals_cpu(data, cls, dtype):  # noqa: F811
    model, X, Y = data
    tolerance = {torch.float32: 1e-4, torch.float64: 1e-10}[dtype]  # matmuls: cuBLAS vs CPU
    results = {}
    for device in ("cpu", "cuda"):
        net = copy.deepcopy(model).to(device=device, dtype=dtype)
        history = gdlab.fit(net, X.to(dtype), Y.to(dtype), cls(net.parameters(), lr=0.05),
                            epochs=3, batch_size=64, seed=0, progress=False)
        assert next(net.parameters()).device.type == device
        results[device] = (net, history)
    (cpu, cpu_history), (gpu, gpu_history) = results["cpu"], results["cuda"]
    assert len(gpu_history.costs) == len(cpu_history.costs) == 3 * 2048 // 64
    assert gpu_history.epoch_costs == pytest.approx(cpu_history.epoch_costs, rel=tolerance)
    for a, b in zip(gpu.parameters(), cpu.parameters(), strict=True):
        scale = b.detach().abs().max()
        assert (a.detach().cpu() - b.detach()).abs().max() <= tolerance * scale


@pytest.mark.parametrize("path", ["mlp", "vmap"])
def test_vectorized_training_on_cuda_equals_cpu(data, path):  # noqa: F811
    """The sweep's vectorized trainer gives on the GPU what it gives on the CPU, for several
    configurations of two optimizers (one batch each)."""
    from gdlab.lab.vectorized import fit_many

    model, X, Y = data
    configs = [{"optimizer": "adam", "lr": 0.01}, {"optimizer": "adam", "lr": 0.003, "beta1": 0.8},
               {"optimizer": "momentum", "lr": 0.05, "beta": 0.9}]
    results = {}
    for device in ("cpu", "cuda"):
        net = copy.deepcopy(model).to(device=device, dtype=torch.float64)
        results[device] = fit_many(net, X.double(), Y.double(), configs, epochs=2,
                                   batch_size=64, seed=0, path=path)
    (gpu_histories, gpu_models), (cpu_histories, cpu_models) = results["cuda"], results["cpu"]
    for gpu_history, cpu_history in zip(gpu_histories, cpu_histories, strict=True):
        assert len(gpu_history.costs) == 2 * 2048 // 64
        assert gpu_history.costs == pytest.approx(cpu_history.costs, rel=1e-10)
    for gpu_net, cpu_net in zip(gpu_models, cpu_models, strict=True):
        for a, b in zip(gpu_net.parameters(), cpu_net.parameters(), strict=True):
            assert a.device.type == "cuda"
            torch.testing.assert_close(a.detach().cpu(), b.detach(), rtol=1e-10, atol=1e-12)


def test_trial_step_peak_is_positive_and_grows_with_the_batch(data):  # noqa: F811
    model, X, Y = data
    net = copy.deepcopy(model).to(CUDA)
    tune.trial_step(net, X, Y, 16)  # one-time allocations out of the way (see the next test)
    sizes = [16, 256, 2048]
    memory = [tune.trial_step(net, X, Y, b) for b in sizes]
    memory += [tune.trial_step(net, X, Y, b) for b in sizes]  # the same again: reproducible
    assert all(m > 0 for m in memory)
    assert memory[:3] == memory[3:]
    assert memory[0] < memory[1] < memory[2]
    params = sum(p.numel() for p in net.parameters()) * 4
    assert memory[0] >= 3 * params  # gradients and Adam's v and S at least
    # at least the first hidden layer's float32 activations (kept for backward) of the
    # 2048 - 16 more examples
    assert memory[2] - memory[0] >= (2048 - 16) * 5 * 4


_FRESH_PROCESS = """
import torch, gdlab
from gdlab.lab import tune
g = torch.Generator().manual_seed(0)
X = torch.randn(2048, 2, generator=g)
Y = ((X[:, :1] * X[:, 1:]) > 0).float()
torch.manual_seed(0)
model = gdlab.MLP([2, 5, 2, 1]).to("cuda")
print(*[tune.trial_step(model, X, Y, b) for b in (16, 256, 2048, 16, 256, 2048)])
"""


def test_first_trial_step_in_a_fresh_process_is_not_inflated():
    """The command measures in a fresh process: its first trial step must not count one-time
    allocations (cuBLAS's workspace, CUDA context) against the first (smallest) size."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-c", _FRESH_PROCESS], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    memory = [int(v) for v in done.stdout.split()]
    first, again = memory[:3], memory[3:]
    assert first == again, f"first pass {first} ≠ second pass {again} (bytes)"
    assert first[0] < first[1] < first[2]


def test_budget_below_the_measured_need_is_skipped(data):  # noqa: F811
    model, X, Y = data
    net = copy.deepcopy(model).to(CUDA)
    tune.trial_step(net, X, Y, 16)  # one-time allocations out of the way
    need = {b: tune.trial_step(net, X, Y, b) for b in (16, 64, 1024)}
    budget = (need[64] + need[1024]) // 2
    result = tune.tune_batch_size(net, X, Y, sizes=[16, 64, 1024], seconds=0.05,
                                  memory_budget=budget)
    assert result.budget == budget
    assert {r.batch_size: r.memory for r in result.results} == need
    assert sorted(r.batch_size for r in result.trained) == [16, 64]
    (skipped,) = result.skipped
    assert skipped.batch_size == 1024 and "over the budget" in skipped.skipped
    with pytest.raises(ValueError, match="no mini-batch size fits"):
        tune.tune_batch_size(net, X, Y, sizes=[16, 64], seconds=0.05,
                             memory_budget=need[16] - 1)


def test_real_cuda_out_of_memory_does_not_fit(data, monkeypatch):  # noqa: F811
    model, X, Y = data
    net = copy.deepcopy(model).to(CUDA)
    tune.tune_batch_size(net, X, Y, sizes=[16, 64], seconds=0.05)  # one-time allocations
    real_loss = tune.default_loss

    def greedy_loss(model):  # trial steps of 256 to 1024 examples ask CUDA for 64 TiB
        forward, loss = real_loss(model)

        def greedy_forward(X_t):
            if 256 <= X_t.shape[0] <= 1024:  # (not the cost on all 2048 examples)
                torch.empty(2**44, dtype=torch.float32, device=X_t.device)
            return forward(X_t)
        return greedy_forward, loss

    with pytest.raises(torch.cuda.OutOfMemoryError) as caught:
        torch.empty(2**44, dtype=torch.float32, device=CUDA)
    assert tune.is_out_of_memory(caught.value)
    del caught
    before = torch.cuda.memory_allocated(CUDA)
    monkeypatch.setattr(tune, "default_loss", greedy_loss)
    result = tune.tune_batch_size(net, X, Y, sizes=[16, 64, 256, 1024], seconds=0.05)
    skipped = {r.batch_size: r.skipped for r in result.skipped}
    assert skipped == {256: "out of memory during the trial step",
                       1024: "out of memory during the trial step"}
    assert sorted(r.batch_size for r in result.trained) == [16, 64]
    assert all(r.memory is None for r in result.skipped)
    assert result.budget > 0
    assert torch.cuda.memory_allocated(CUDA) <= before + 2**20  # the failed trials freed


def test_default_budget_is_what_cuda_has_free(data):  # noqa: F811
    model, X, Y = data
    net = copy.deepcopy(model).to(CUDA)
    free, total = torch.cuda.mem_get_info()
    assert tune.free_memory(CUDA) == pytest.approx(free, rel=0.05)
    result = tune.tune_batch_size(net, X, Y, sizes=[16, 64], seconds=0.05)
    assert 0 < result.budget <= total
    assert result.budget == pytest.approx(free, rel=0.05)
    assert sorted(r.batch_size for r in result.trained) == [16, 64]
    assert all(r.memory and r.memory < result.budget for r in result.trained)
