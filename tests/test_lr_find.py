"""lr_find: the exponential α ramp over several seeds from the same start, the smoothed cost,
the stop at divergence, the suggested α and its spread, the figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gdlab.lab.lr_find import SKIP_START, LRFind, lr_find, steepest_fall
from test_batches import _Pairs

M = 256


def _classes(m=M, seed=0):
    """Three classes of 4 features, separable by a linear map."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(m, 4, generator=gen)
    Y = (X[:, :3] + 0.3 * torch.randn(m, 3, generator=gen)).argmax(1)
    return X, Y


def _net(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(16, 3))


def _regression(m=M, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(m, 5, generator=gen)
    return X, X @ torch.randn(5, 1, generator=gen)


def test_the_model_and_torchs_rng_are_left_as_they_were():
    model = _net(dropout=0.2).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    result = lr_find(model, _classes(), steps=30, seeds=2)
    assert all(n > 0 for n in result.steps_run)
    after = model.state_dict()
    assert after.keys() == before.keys()
    for name, value in before.items():  # weights and BatchNorm's running statistics alike
        assert torch.equal(after[name], value), name
    assert not model.training
    assert torch.equal(torch.get_rng_state(), rng)


def test_each_step_trains_at_the_ramps_alpha():
    seen = []

    class Recorder(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    result = lr_find(_net(), _classes(), Recorder, min_lr=1e-4, max_lr=1.0, steps=9, seeds=1)
    ramp = [1e-4 * (1.0 / 1e-4) ** (k / 8) for k in range(9)]  # 1e-4, 1e-3.5, ..., 1
    assert result.lrs == pytest.approx(ramp, rel=1e-12)
    assert seen == pytest.approx(ramp[:result.steps_run[0]], rel=1e-12)
    assert result.steps_run == [9]


def test_curves_are_the_bias_corrected_ewa_of_the_costs():
    result = lr_find(_net(), _classes(), steps=20, seeds=2)
    J, J_hat = result.costs[0], result.curves[0]
    assert J_hat[0] == pytest.approx(J[0], rel=1e-12)  # v̂_1 = 0.02·J_1 / (1 - 0.98)
    v_2 = 0.98 * 0.02 * J[0] + 0.02 * J[1]
    assert J_hat[1] == pytest.approx(v_2 / (1 - 0.98**2), rel=1e-12)
    assert result.beta == 0.98


def test_same_start_same_order_same_run():
    """With one mini-batch order (a DataLoader that does not shuffle) and no randomness in
    the model, every seed's run is the same, bit for bit: they start from the same state."""
    loader = DataLoader(TensorDataset(*_classes()), batch_size=64, shuffle=False)
    result = lr_find(_net(), loader, steps=25, seeds=3)
    assert np.array_equal(result.costs[0], result.costs[1], equal_nan=True)
    assert np.array_equal(result.costs[0], result.costs[2], equal_nan=True)


def test_seeds_see_different_orders_and_repeat_exactly():
    first = lr_find(_net(), _classes(), steps=25, seeds=2)
    again = lr_find(_net(), _classes(), steps=25, seeds=2)
    assert np.array_equal(first.costs, again.costs, equal_nan=True)
    assert not np.array_equal(first.costs[0], first.costs[1])  # other mini-batches
    # the first cost of each seed is the initial model's on that seed's first mini-batch
    X, Y = _classes()
    model = _net().train()
    order = torch.randperm(M, generator=torch.Generator().manual_seed(1))[:64]
    with torch.no_grad():
        J_1 = nn.functional.cross_entropy(model(X[order]), Y[order])
    assert first.costs[1, 0] == pytest.approx(float(J_1), rel=1e-6)


def test_a_run_stops_once_the_smoothed_cost_exceeds_four_times_its_minimum():
    # least squares with GD diverges once α passes 2/λ_max of the Hessian (about 1 here)
    torch.manual_seed(0)
    result = lr_find(nn.Linear(5, 1), _regression(), "gd", min_lr=1e-3, max_lr=100.0,
                     steps=60, seeds=2)
    for J, J_hat, n in zip(result.costs, result.curves, result.steps_run, strict=True):
        assert n < 60 and np.isnan(J[n:]).all() and np.isfinite(J[:n]).all()
        lowest = np.minimum.accumulate(J_hat[:n])
        assert J_hat[n - 1] > 4 * lowest[n - 1]  # the stop
        assert (J_hat[:n - 1] <= 4 * lowest[:n - 1]).all()  # not before
    assert 0.01 < result.suggestion < 2.0


def test_steepest_fall_of_a_known_curve():
    lrs = np.geomspace(1e-6, 10, 141)  # 20 steps a decade
    x = np.log(lrs / 1e-2)
    curve = 1 + 1 / (1 + np.exp(2 * x))  # falls fastest at α = 1e-2
    curve[:10] += 0.5 * (-1.0) ** np.arange(10)  # the first Ĵ's noise: steeper, left out
    rise = lrs > 1.0
    curve[rise] += (np.log(lrs[rise]) ** 2)  # diverges past α = 1
    assert steepest_fall(lrs, curve) == pytest.approx(1e-2, rel=1e-9)
    assert math.isnan(steepest_fall(lrs, 1 + lrs))  # never fell
    early = 1 + np.abs(np.arange(141.0) - 8)  # lowest at step 8: within the first 10
    assert math.isnan(steepest_fall(lrs, early))
    straight = 1 + np.abs(np.arange(141.0) - 40)  # equal slopes: the first step considered
    assert steepest_fall(lrs, straight) == lrs[SKIP_START]
    assert math.isnan(steepest_fall(lrs, np.full(141, np.nan)))


def test_suggestion_is_the_median_over_seeds_and_spread_their_range():
    lrs = np.geomspace(1e-6, 1, 121)  # 20 steps a decade
    centers = [1e-3, 1e-2, 1e-4]
    costs = np.stack([1 + 1 / (1 + (lrs / c) ** 2) for c in centers])
    costs[2, 80:] = np.nan  # a run that stopped
    result = LRFind(lrs=lrs, costs=costs, steps_run=[121, 121, 80], seeds=[0, 1, 2],
                    beta=0.0, optimizer="adam")
    assert result.suggestions == pytest.approx(centers, rel=1e-9)
    assert result.suggestion == pytest.approx(1e-3, rel=1e-9)
    assert result.spread == pytest.approx((1e-4, 1e-2), rel=1e-9)
    assert result.median[10] == np.median(costs[:, 10])
    assert result.median[90] == np.median(costs[:2, 90])  # over the runs still going
    low, high = result.band
    assert low[90] == costs[:2, 90].min() and high[90] == costs[:2, 90].max()
    assert "1e-03" in result.summary() or "0.001" in result.summary()


def test_no_fall_no_suggestion():
    lrs = np.geomspace(1e-5, 1, 11)
    result = LRFind(lrs=lrs, costs=np.stack([1 + lrs, 2 + lrs]), steps_run=[11, 11],
                    seeds=[0, 1], beta=0.5, optimizer="gd")
    assert result.suggestion is None and result.spread is None
    assert "did not fall" in result.summary()
    assert isinstance(result.figure(), Figure)


@pytest.mark.parametrize("kind", ["tensors", "numpy", "train_val", "tensor_dataset", "dataset",
                                  "loader"])
def test_data_as_tensors_datasets_or_loaders(kind):
    X, Y = _classes()
    data = {"tensors": (X, Y), "numpy": (X.numpy(), Y.numpy()),
            "train_val": ((X, Y), (X[:10], Y[:10])), "tensor_dataset": TensorDataset(X, Y),
            "dataset": _Pairs(X, Y),
            "loader": DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True)}[kind]
    result = lr_find(_net(), data, steps=12, seeds=2)
    assert result.costs.shape == (2, 12) and np.isfinite(result.costs[:, 0]).all()
    if kind != "loader":  # gdlab's seeded order; a DataLoader's comes from torch's RNG
        same = lr_find(_net(), data, steps=12, seeds=2)
        assert np.array_equal(result.costs, same.costs, equal_nan=True)


def test_figure_and_png(tmp_path):
    result = lr_find(_net(), _classes(), steps=40, seeds=2, max_lr=100.0)
    fig = result.figure()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["min–max of 2 seeds",
                                                                       "median"]
    path = result.save(tmp_path / "out")
    assert path == tmp_path / "out" / "lr_find.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs, message", [
    ({"min_lr": 1.0, "max_lr": 0.1}, "min_lr must be below max_lr, got min_lr=1.0"),
    ({"min_lr": 0}, "min_lr must be a finite number > 0, got 0"),
    ({"steps": 1}, "steps must be an integer >= 2 (a ramp has two ends), got 1"),
    ({"seeds": 0}, "seeds must be an integer >= 1, got 0"),
    ({"beta": 1.0}, "beta must be in [0, 1), got 1.0"),
    ({"factor": 1.0}, "factor must be a number > 1"),
    ({"optimizer": "sgdx"}, "optimizer must be one of gd, momentum, rmsprop, adam"),
    ({"optimizer": 3}, "optimizer must be a name (gd, momentum, rmsprop, adam) or a factory"),
    ({"data": "digits.csv"}, "data must be tensors (X, Y), a Dataset or a DataLoader, got str"),
    ({"model": "cnn"}, "model must be a torch.nn.Module, got str"),
])
def test_bad_input(kwargs, message):
    arguments = {"model": _net(), "data": _classes(), **kwargs}
    with pytest.raises(ValueError) as error:
        lr_find(arguments.pop("model"), arguments.pop("data"), **arguments)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_data_without_a_mini_batch():
    empty = DataLoader(TensorDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)))
    with pytest.raises(ValueError, match="^the data yielded no mini-batch$"):
        lr_find(_net(), empty, steps=5)


def test_the_loss_given_is_the_one_trained_on():
    calls = []

    def loss(output, Y):
        calls.append(output.shape)
        return nn.functional.cross_entropy(output, Y)

    lr_find(_net(), _classes(), loss=loss, steps=5, seeds=2)
    assert calls == [(64, 3)] * 10


def test_an_optimizer_instance_is_refused():
    model = _net()
    with pytest.raises(ValueError, match=r"got Adam \(lr_find builds one per seed\)"):
        lr_find(model, _classes(), torch.optim.Adam(model.parameters()))
