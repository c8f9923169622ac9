"""The divergence guard: a non-finite or exploding cost restores the start of the epoch, then
stops with a message naming the epoch and α, or retries with α cut; never on a normal noisy
run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from gdlab import GD, MLP, Adam, Diverged, Fit, Momentum, RMSProp, fit
from gdlab import schedules as S
from gdlab.cli import main


def _regression(m=160):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(m, 3, generator=gen, dtype=torch.float64)
    Y = X @ torch.tensor([[1.0], [2.0], [-1.0]], dtype=torch.float64)
    return X, Y


def _model(dims=(3, 8, 1), output="linear"):
    torch.manual_seed(0)
    return MLP(list(dims), output=output).double()


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_non_finite_cost_stops_with_the_epoch_and_alpha():
    X, Y = _regression()
    model = _model()
    # GD with α = 0.5 on this regression blows up in the first epoch, to inf and NaN
    with pytest.raises(Diverged, match=r"^diverged in epoch 1 at α = 0\.5: .*; the state at the "
                                       r"start of epoch 1 was restored") as info:
        fit(model, X, Y, GD(model.parameters(), lr=0.5), epochs=10, batch_size=32, seed=0,
            progress=False, on_divergence="stop")
    event = info.value.event
    assert (event["event"], event["epoch"], event["lr"], event["action"]) == (
        "diverged", 1, 0.5, "stop")
    assert info.value.history.epochs == 0 and info.value.history.events == [event]
    assert _weights(model).keys() == _weights(_model()).keys()
    assert all(torch.equal(a, b) for a, b in zip(_weights(model).values(),
                                                  _weights(_model()).values()))


def test_nan_in_a_later_epoch_restores_the_start_of_that_epoch():
    X, Y = _regression()

    def poison(run):  # makes epoch 4 produce NaN costs
        if run.epoch_num == 3:
            run.model.linears[0].weight.data[0, 0] = math.nan

    model = _model()
    run = Fit(model, X, Y, GD(model.parameters(), lr=0.01), epochs=10, batch_size=32, seed=0,
              progress=False, on_divergence="stop", callbacks=[poison])
    with pytest.raises(Diverged, match=r"diverged in epoch 4 at α = 0\.01: the cost of "
                                       r"mini-batch t = 16 is nan"):
        run.run()
    assert run.history.epochs == 3 and run.epoch_num == 3 and run.t == 15
    assert math.isnan(model.linears[0].weight[0, 0].item())  # the start of epoch 4


def test_reduce_retries_with_alpha_cut_and_records_it():
    X, Y = _regression()
    model = _model()
    history = fit(model, X, Y, GD(model.parameters(), lr=2.0), epochs=10, batch_size=32,
                  seed=0, progress=False, on_divergence="reduce", reduce_factor=0.5,
                  schedule=S.inverse_time(2.0, decay_rate=0.1))
    cuts = [(e["event"], e["epoch"], e["action"], e["lr"], e["new_lr"]) for e in history.events]
    assert cuts == [("diverged", 1, "reduce", 2 / 1.1, 1 / 1.1),
                    ("diverged", 1, "reduce", 1 / 1.1, 0.5 / 1.1)]
    assert "retrying epoch 1 from its start with α = 0.909091" in history.events[0]["message"]
    # the retries start from the restored state and RNG: exactly a run begun at α₀/4, whose
    # schedule still decays
    plain_model = _model()
    plain = fit(plain_model, X, Y, GD(plain_model.parameters(), lr=0.5), epochs=10,
                batch_size=32, seed=0, progress=False,
                schedule=S.inverse_time(0.5, decay_rate=0.1))
    assert history.costs == plain.costs
    assert history.lrs == pytest.approx(plain.lrs, rel=1e-15)
    assert history.lrs[-1] == pytest.approx(0.5 / (1 + 0.1 * 10))


def test_reduce_gives_up_after_too_many_cuts():
    X, Y = _regression()

    def poison(run):
        run.model.linears[0].weight.data[0, 0] = math.nan  # no α can save this

    model = _model()
    with pytest.raises(Diverged, match=r"still diverging after 10 cuts of α"):
        fit(model, X, Y, GD(model.parameters(), lr=0.01), epochs=3, batch_size=32,
            progress=False, on_divergence="reduce", callbacks=[poison])


def _kicked_at_epoch_5():
    """Separable data, and a callback that sets α = 200 after epoch 5 (the run then explodes)."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=gen, dtype=torch.float64)
    Y = (X[:, 0] > 0).double()

    def kick(run):
        if run.epoch_num == 5:
            run.set_lr(200.0)

    return X, Y, kick


def test_finite_explosion_after_a_manual_alpha_and_the_reduce_cuts_that_alpha():
    X, Y, kick = _kicked_at_epoch_5()
    model = _model(output="sigmoid")
    with pytest.raises(Diverged, match=r"diverged in epoch 6 at α = 200: the epoch's cost .* "
                                       r"is over 10× the smoothed cost"):
        fit(model, X, Y, GD(model.parameters(), lr=0.5), epochs=10, batch_size=32, seed=0,
            progress=False, on_divergence="stop", callbacks=[kick])
    model = _model(output="sigmoid")
    history = fit(model, X, Y, GD(model.parameters(), lr=0.5), epochs=10, batch_size=32,
                  seed=0, progress=False, on_divergence="reduce", callbacks=[kick])
    kinds = [(e["event"], e["epoch"]) for e in history.events]
    assert kinds[0] == ("set_lr", 6) and set(kinds[1:]) == {("diverged", 6)}
    final_lr = 200.0 * 0.5 ** (len(kinds) - 1)
    assert history.lrs[5:] == [final_lr] * 5  # the manual α, cut, stays manual


def test_a_larger_factor_tolerates_more():
    X, Y, kick = _kicked_at_epoch_5()
    model = _model(output="sigmoid")
    history = fit(model, X, Y, GD(model.parameters(), lr=0.5), epochs=8, batch_size=32, seed=0,
                  progress=False, on_divergence="stop", divergence_factor=1e30, callbacks=[kick])
    assert [e["event"] for e in history.events] == ["set_lr"]
    assert history.epoch_costs[5] > 1e10  # exploded, but tolerated


MOONS = make_moons(n_samples=300, noise=0.3, random_state=0)


@pytest.mark.parametrize("cls, lr, batch_size", [
    (GD, 0.5, 1), (GD, 2.0, 1), (Momentum, 0.5, 1), (Adam, 0.01, 1), (Adam, 0.05, 4),
    (RMSProp, 0.01, 2), (Adam, 0.1, 32),
])
def test_the_default_never_fires_on_a_normal_noisy_run(cls, lr, batch_size):
    X = torch.tensor(MOONS[0])
    Y = torch.tensor(MOONS[1], dtype=torch.float64)
    model = _model(dims=(2, 16, 8, 1), output="sigmoid")
    history = fit(model, X, Y, cls(model.parameters(), lr=lr), epochs=4 if batch_size < 4 else 15,
                  batch_size=batch_size, seed=0, progress=False, on_divergence="stop")
    assert history.events == []
    costs = np.asarray(history.costs)
    if batch_size == 1:  # really noisy: single examples' costs span orders of magnitude
        assert costs.max() / np.median(costs) > 10


def test_the_default_never_fires_near_zero_cost():
    """Adam on separable data: the cost falls to ~1e-4 and then jumps ×10 from epoch to epoch
    — still far below the initial cost, so not a divergence."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=gen, dtype=torch.float64)
    Y = (X[:, 0] > 0).double()
    model = _model(dims=(3, 32, 32, 1), output="sigmoid")
    history = fit(model, X, Y, Adam(model.parameters(), lr=0.1), epochs=150, batch_size=16,
                  seed=0, progress=False, on_divergence="stop")
    costs = np.asarray(history.epoch_costs)
    assert costs.min() < 1e-3 and (costs[1:] / costs[:-1]).max() > 10
    assert history.events == []


def test_off_by_default():
    X, Y = _regression()
    model = _model()
    history = fit(model, X, Y, GD(model.parameters(), lr=0.5), epochs=3, batch_size=32, seed=0,
                  progress=False)
    assert not all(math.isfinite(c) for c in history.costs) and history.events == []


@pytest.mark.parametrize("kwargs, message", [
    ({"on_divergence": "retry"}, r"on_divergence must be None, 'stop' or 'reduce', got 'retry'"),
    ({"divergence_factor": 1.0}, r"divergence_factor must be > 1"),
    ({"divergence_factor": -3}, r"divergence_factor must be a finite number > 0"),
    ({"reduce_factor": 1.5}, r"reduce_factor must be in \(0, 1\)"),
    ({"reduce_factor": 0}, r"reduce_factor must be a finite number > 0"),
])
def test_arguments_checked(kwargs, message):
    X, Y = _regression()
    model = _model()
    with pytest.raises(ValueError, match=message):
        fit(model, X, Y, GD(model.parameters()), epochs=1, progress=False, **kwargs)


# --- the command line -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_csv(tmp_path_factory):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 2)
    y = 3 * X[:, 0] - 2 * X[:, 1] + 0.1 * rng.randn(200)
    path = tmp_path_factory.mktemp("data") / "reg.csv"
    path.write_text("x1,x2,y\n" + "".join(f"{a!r},{b!r},{c!r}\n" for (a, b), c in
                                                zip(X.tolist(), y.tolist())))
    return path


def _fit(capsys, data, out, *extra):
    status = main(["fit", "--data", str(data), "--optimizer", "gd", "--epochs", "20",
                   "--out", str(out), "-q", *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_stops_with_one_line_status_1_and_keeps_the_good_epochs(tmp_path, capsys,
                                                                   regression_csv):
    status, out, err = _fit(capsys, regression_csv, tmp_path / "run", "--lr", "0.5")
    assert status == 1, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "gdlab fit: diverged in epoch 3 at α = 0.5:" in err
    assert "--on-divergence reduce" in err and "(the run folder holds epochs 1-2)" in err
    run = tmp_path / "run"
    events = json.loads((run / "events.json").read_text())
    assert [(e["event"], e["epoch"], e["action"]) for e in events] == [("diverged", 3, "stop")]
    assert len((run / "history.csv").read_text().strip().splitlines()) == 1 + 2
    assert (run / "model.safetensors").exists() and (run / "report.html").exists()
    assert main(["status", str(run)]) == 0
    shown = capsys.readouterr().out
    assert "state:          diverged" in shown and "diverged in epoch 3" in shown
    # continue the run by hand with a smaller α
    assert main(["fit", "--resume", str(run), "--lr", "0.05", "-q"]) == 0
    out = capsys.readouterr().out
    assert "α = 0.05 from the next mini-batch on" in out
    events = json.loads((run / "events.json").read_text())
    assert [e["event"] for e in events] == ["diverged", "set_lr"]
    assert len((run / "history.csv").read_text().strip().splitlines()) == 1 + 20


def test_cli_reduce_recovers_and_says_so(tmp_path, capsys, regression_csv):
    status, out, err = _fit(capsys, regression_csv, tmp_path / "run", "--lr", "1",
                            "--on-divergence", "reduce", "--reduce-factor", "0.5")
    assert status == 0, err
    assert "gdlab: diverged in epoch 1 at α = 1: the epoch's cost" in out
    assert "retrying epoch 1 from its start with α = 0.5" in out
    events = json.loads((tmp_path / "run" / "events.json").read_text())
    assert events and {e["action"] for e in events} == {"reduce"}
    assert "10× the initial cost" in events[0]["reason"]  # not escaped: readable JSON
    lrs = [float(line.split(",")[2]) for line in
           (tmp_path / "run" / "history.csv").read_text().strip().splitlines()[1:]]
    assert lrs[0] == 0.5 and lrs[-1] == 1 * 0.5 ** len(events)
