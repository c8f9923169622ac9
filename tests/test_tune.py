"""gdlab tune batch-size: the lecture's rule, the memory check (with a simulated out-of-memory)
and the ranking."""

import math

import pytest
import torch

import gdlab
from gdlab.cli import main
from gdlab.lab import tune


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2048, 2, generator=g)
    Y = ((X[:, :1] * X[:, 1:]) > 0).float()
    torch.manual_seed(0)
    return gdlab.MLP([2, 5, 2, 1]), X, Y


def test_candidates_are_powers_of_two_bounded_by_m():
    assert tune.candidates(5000) == [16, 32, 64, 128, 256, 512, 1024]
    assert tune.candidates(100) == [16, 32, 64]
    with pytest.raises(ValueError, match="between 1 and m = 100"):
        tune.candidates(100, [8, 200])


def test_small_m_recommends_batch_gradient_descent(data):
    model, X, Y = data
    result = tune.tune_batch_size(model, X[:500], Y[:500])
    assert result.recommended == 500 and "batch gradient descent" in result.reason
    assert result.trained == []


def test_trial_step_memory_grows_with_the_batch(data):
    model, X, Y = data
    small, large = (tune.trial_step(model, X, Y, b) for b in (16, 1024))
    params = sum(p.numel() for p in model.parameters()) * 4
    assert small > 4 * params  # parameters, gradients and Adam's v and S at least
    # activations: z and a of each layer (5+5+2+2+1 floats), and their gradients, per example
    assert large - small == 2 * (1024 - 16) * 15 * 4 + (1024 - 16) * 3 * 4


def test_out_of_memory_and_over_budget_sizes_are_skipped(data):
    model, X, Y = data

    def measure(model, X, Y, batch_size, optimizer, lr):
        if batch_size >= 256:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return batch_size * 1000

    result = tune.tune_batch_size(model, X, Y, seconds=0.05, memory_budget=100_000,
                                  measure=measure)
    skipped = {r.batch_size: r.skipped for r in result.skipped}
    assert set(skipped) == {128, 256, 512, 1024}
    assert skipped[256] == skipped[1024] == "out of memory during the trial step"
    assert "over the budget" in skipped[128]
    assert sorted(r.batch_size for r in result.trained) == [16, 32, 64]


def test_other_errors_are_not_taken_for_out_of_memory(data):
    model, X, Y = data

    def measure(*args):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        tune.tune_batch_size(model, X, Y, sizes=[16], measure=measure)


def test_ranking_by_cost_reached_per_second(data):
    model, X, Y = data
    result = tune.tune_batch_size(model, X, Y, sizes=[32, 2048], seconds=0.2, lr=0.01)
    rates = [r.rate for r in result.trained]
    assert rates == sorted(rates, reverse=True)
    assert result.recommended == result.trained[0].batch_size
    for r in result.trained:
        assert r.seconds >= 0.2 and r.curve and math.isfinite(r.final_cost)
        assert r.rate == pytest.approx((r.initial_cost - r.final_cost) / r.seconds)


def test_target_cost_stops_early(data):
    model, X, Y = data
    result = tune.tune_batch_size(model, X, Y, sizes=[64], seconds=30, target_cost=10.0)
    (r,) = result.trained
    assert r.reached_target and r.epochs == 1


def test_cli_tune_batch_size(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["tune", "batch-size", "--layers", "2,5,2,1", "--sizes", "16,750",
                 "--seconds", "0.1", "--memory-budget", "30K", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped batch 750: needs" in text and "recommended mini-batch size: 16" in text
    assert (out / "cost_vs_time.png").exists() and (out / "results.json").exists()
    assert text.splitlines()[-1] == f"results: {out} (results.json, config.json, " \
                                    "cost_vs_time.png)"  # the folder it wrote, said
    assert main(["tune", "batch-size", "--memory-budget", "lots", "--out", str(out)]) == 2
    assert "--memory-budget must be a size" in capsys.readouterr().err


def test_a_cost_that_rose_everywhere_is_said_not_praised(data):
    model, X, Y = data
    # α so large that every step throws the weights far (Adam moves each by about α): the
    # cost stays far above its start however many steps fit in the time (α = 50 sometimes
    # landed near a low cost once steps got faster)
    result = tune.tune_batch_size(model, X, Y, sizes=[16, 64], seconds=0.2, lr=1e4)
    assert all(not r.rate > 0 for r in result.trained)
    assert result.reason.startswith("no size lowered the cost (α = 10000 may be too large")


@pytest.mark.parametrize("device,message", [
    ("gpu", "--device must be cpu, cuda or cuda:N, got 'gpu'"),
    ("cuda:64", "--device cuda:64: "),
])
def test_cli_bad_device_is_one_line_and_writes_nothing(tmp_path, capsys, device, message):
    for command in (["tune", "batch-size"], ["sweep", "--method", "grid"]):
        out = tmp_path / command[0]
        assert main([*command, "--device", device, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not out.exists()


@pytest.mark.parametrize("command", [["tune", "batch-size"], ["sweep"], ["fit"], ["compare"]])
def test_dtype_is_explained(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--dtype {float32,float64} floating-point type of the data, the weights and the " \
           "optimizer's state: float32 (fast) or float64" in text


YOUR_MODEL = '''
import torch
from torch import nn


def make_model():
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def make_data():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(400, 2, generator=gen)
    Y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    return X, Y  # no validation data of its own: a fifth is held out
'''


def test_cli_tune_your_model_by_time_to_a_validation_cost(tmp_path, capsys):
    import json

    spec = tmp_path / "mine.py"
    spec.write_text(YOUR_MODEL)
    out = tmp_path / "t"
    argv = ["tune", "batch-size", "--model", f"{spec}:make_model", "--data",
            f"{spec}:make_data", "--seconds", "0.1"]
    assert main([*argv, "--sizes", "16,64,256", "--memory", "1G", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == f"{spec}:make_model on {spec}:make_data: 320 training " \
                                   "examples, 80 for validation"
    assert "ranked by the time to reach the validation cost" in text
    result = json.loads((out / "results.json").read_text())
    target, sizes = result["target_val_cost"], result["sizes"]
    assert result["ranked_by"] == "time to the target validation cost"
    times = [s["time_to_target"] for s in sizes]
    assert None not in times and times == sorted(times)  # the default target: all reach it
    assert target == max(min(c for _, c in s["val_curve"]) for s in sizes)
    assert f"recommended mini-batch size: {sizes[0]['batch_size']} — mini-batch " \
           f"{sizes[0]['batch_size']} reached the validation cost {target:.4g} fastest" in text
    assert text.splitlines()[-1].startswith(f"results: {out} (results.json")
    assert main([*argv, "--out", str(tmp_path / "gd")]) == 0  # m = 320 < 2000: batch GD
    assert "recommended mini-batch size: 320 — m = 320 < 2000" in capsys.readouterr().out


def test_tune_any_model_on_a_dataset_with_a_loss_and_a_budget():
    """A Dataset, a loss of one's own, a held-out share, and a memory budget that only the
    small sizes fit (the trial step's measure on the CPU)."""
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(1)
    X = torch.randn(300, 4, generator=g)
    Y = X.sum(1, keepdim=True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    need = {b: tune.trial_step(model, X, Y, b, loss=torch.nn.MSELoss()) for b in (16, 32, 64)}
    assert need[16] < need[32] < need[64]
    result = tune.tune_batch_size(model, TensorDataset(X, Y), sizes=[16, 32, 64], seconds=0.1,
                                  loss=torch.nn.MSELoss(), val_fraction=0.25,
                                  memory_budget=(need[32] + need[64]) // 2)
    assert result.m == 225 and result.target is not None
    assert sorted(r.batch_size for r in result.trained) == [16, 32]
    assert "over the budget" in result.skipped[0].skipped
    assert all(r.val_curve and r.best_val_cost <= r.val_curve[0][1] for r in result.trained)
