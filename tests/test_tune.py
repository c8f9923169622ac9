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
