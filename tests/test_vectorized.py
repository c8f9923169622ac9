"""The vectorized trainer equals separate gdlab.fit runs (same init, same mini-batch order)."""

import copy

import pytest
import torch

import gdlab
from gdlab.lab import vectorized
from gdlab.lab.vectorized import VectorizedFit, fit_many
from gdlab.schedules import parse_schedule

EPOCHS = 4


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(150, 2, generator=g, dtype=torch.float64)
    Y = ((X[:, :1] * X[:, 1:]) > 0).double()
    torch.manual_seed(1)
    model = gdlab.MLP([2, 5, 2, 1]).double()
    return model, X, Y


CONFIGS = [
    {"optimizer": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999},
    {"optimizer": "adam", "lr": 0.003, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
    {"optimizer": "adam", "lr": 0.02, "schedule": "inverse_time:decay_rate=1"},
    {"optimizer": "momentum", "lr": 0.1, "beta": 0.9},
    {"optimizer": "momentum", "lr": 0.05, "beta": 0.5, "schedule": "exponential"},
    {"optimizer": "rmsprop", "lr": 0.01, "beta2": 0.9},
    {"optimizer": "rmsprop", "lr": 0.01, "beta2": 0.99, "bias_correction": True},
    {"optimizer": "gd", "lr": 0.2},
    {"optimizer": "gd", "lr": 0.1, "schedule": "inverse_sqrt:per=step"},
    {"optimizer": "adam", "lr": 0.05, "schedule": "plateau:patience=1,threshold=0.5"},
]


def _sequential(model, X, Y, config, batch_size, seed):
    net = copy.deepcopy(model)
    hyper = {k: v for k, v in config.items() if k not in ("optimizer", "lr", "schedule")}
    opt = gdlab.optim.OPTIMIZERS[config["optimizer"]](net.parameters(), lr=config["lr"], **hyper)
    schedule = parse_schedule(config["schedule"], config["lr"]) if config.get("schedule") \
        else None
    history = gdlab.fit(net, X, Y, opt, epochs=EPOCHS, batch_size=batch_size, seed=seed,
                        schedule=schedule, progress=False)
    return history, net


@pytest.mark.parametrize("path", ["mlp", "vmap"])
def test_equals_separate_fit_runs(data, path):
    model, X, Y = data
    histories, models = fit_many(model, X, Y, CONFIGS, epochs=EPOCHS, batch_size=32, seed=7,
                                 path=path)
    for config, history, trained in zip(CONFIGS, histories, models, strict=True):
        ref, net = _sequential(model, X, Y, config, 32, 7)
        assert len(history.costs) == len(ref.costs) == EPOCHS * 5
        torch.testing.assert_close(torch.tensor(history.costs), torch.tensor(ref.costs),
                                   rtol=0, atol=1e-10)
        torch.testing.assert_close(torch.tensor(history.epoch_costs),
                                   torch.tensor(ref.epoch_costs), rtol=0, atol=1e-10)
        assert history.lrs == pytest.approx(ref.lrs, rel=1e-12)
        for p, q in zip(trained.parameters(), net.parameters(), strict=True):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("path", ["mlp", "vmap"])
def test_float32_bias_corrections_are_those_of_the_averages_beta(data, path):
    """In float32, the bias corrections 1-β^t come from β as the averages use it (rounded to
    float32), so that after one step from zero the corrected averages are the gradient and
    its square: v̂ = dW and Ŝ = dW² to float32 rounding. (Corrected with 0.999's 1-β^t
    instead, Ŝ came out 1.3e-5 too small for β₂ = 0.999 and 1.7e-4 for 0.9999 — a bias that
    Adam at a large α turned into a visibly different run than fit's.)"""
    model, X, Y = data
    model, X = copy.deepcopy(model).float(), X.float()
    configs = [{"optimizer": "adam", "lr": 0.05, "beta1": 0.9, "beta2": 0.999},
               {"optimizer": "adam", "lr": 0.01, "beta1": 0.8, "beta2": 0.9999}]
    run = VectorizedFit(model, X, Y, configs, epochs=1, batch_size=len(X), seed=0, path=path)
    corrections = run._corrections(1)  # (those of t = 1, the step run() takes)
    run.run()
    dW = run.dW.double()
    for name, key, power in (("v", "v_correction", 1), ("S", "S_correction", 2)):
        corrected = run.moments[name].double() / corrections[key][0].double()
        torch.testing.assert_close(corrected, dW**power, rtol=1e-6, atol=0)


def test_32_configurations_as_the_benchmark_trains_them_equal_fit(data):
    """32 Adam configurations of the [2, 5, 2, 1] network, as benchmarks/vectorized.py trains
    them: the second layer's block-diagonal product then runs in two groups of networks and
    the first layer's dW (160 rows, 2 inputs) is made as its transpose. Each equals its own
    fit."""
    model, X, Y = data
    configs = [{"optimizer": "adam", "lr": 10 ** (-3 + 2 * i / 31), "beta1": (0.8, 0.9)[i % 2],
                "beta2": (0.99, 0.999)[i // 2 % 2]} for i in range(32)]
    run = VectorizedFit(model, X, Y, configs, epochs=EPOCHS, batch_size=64, seed=3)
    histories = run.run()
    kept = run._backprop._work["kept", True]
    assert len(kept.products[1].groups) == 2 and kept.products[0]._dW_t is not None
    for config, history in zip(configs[::5], histories[::5], strict=True):
        ref, _ = _sequential(model, X, Y, config, 64, 3)
        torch.testing.assert_close(torch.tensor(history.costs), torch.tensor(ref.costs),
                                   rtol=0, atol=1e-10)


@pytest.mark.parametrize("output", ["softmax", "linear"])
def test_other_outputs_equal_fit(output):
    g = torch.Generator().manual_seed(2)
    X = torch.randn(60, 3, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 3, (60,), generator=g)
    if output == "linear":
        Y = torch.randn(60, 3, generator=g, dtype=torch.float64)
    torch.manual_seed(0)
    model = gdlab.MLP([3, 4, 3], hidden="tanh", output=output).double()
    assert VectorizedFit(model, X, Y, [{"lr": 0.01}], epochs=1, batch_size=16).path == "mlp"
    configs = [{"optimizer": "adam", "lr": lr} for lr in (0.01, 0.03)]
    histories, _ = fit_many(model, X, Y, configs, epochs=EPOCHS, batch_size=16, seed=1)
    for config, history in zip(configs, histories, strict=True):
        ref, _ = _sequential(model, X, Y, config, 16, 1)
        torch.testing.assert_close(torch.tensor(history.costs), torch.tensor(ref.costs),
                                   rtol=0, atol=1e-10)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_bias_corrections_computed_ahead_are_those_of_each_step(data, optimizer, monkeypatch):
    """The corrections 1-β^t computed ahead (many steps at once) give what computing them at
    every epoch gives (CORRECTIONS_AHEAD = 1: a fresh computation each epoch)."""
    model, X, Y = data
    configs = [c for c in CONFIGS if c["optimizer"] == optimizer]
    ahead, _ = fit_many(model, X, Y, configs, epochs=EPOCHS, batch_size=32, seed=7)
    monkeypatch.setattr(vectorized, "CORRECTIONS_AHEAD", 1)
    each_epoch, _ = fit_many(model, X, Y, configs, epochs=EPOCHS, batch_size=32, seed=7)
    assert [h.costs for h in ahead] == [h.costs for h in each_epoch]


def test_mixed_optimizers_in_one_group_are_refused(data):
    model, X, Y = data
    with pytest.raises(ValueError, match="share the optimizer"):
        VectorizedFit(model, X, Y, [CONFIGS[0], CONFIGS[3]], epochs=1)


def test_bad_hyperparameter_is_refused_by_the_optimizer(data):
    model, X, Y = data
    with pytest.raises(ValueError, match="beta1"):
        VectorizedFit(model, X, Y, [{"optimizer": "adam", "lr": 0.1, "beta1": 1.5}], epochs=1)
    with pytest.raises(ValueError, match="takes"):
        VectorizedFit(model, X, Y, [{"optimizer": "gd", "lr": 0.1, "beta": 0.9}], epochs=1)


class _Scaled(torch.nn.Module):
    """A module of the user's with a buffer (a fixed input scale) that forward reads."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.tensor([2.0, 0.5], dtype=torch.float64))
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(),
                                       torch.nn.Linear(6, 3)).double()

    def forward(self, x):
        return self.net(x * self.scale)


def test_any_module_with_buffers_and_validation_equals_fit():
    """vmap over functional_call of a module of the user's (its buffer shared, the cost
    inferred: cross-entropy of class indices) gives each configuration's costs and validation
    figures as its own gdlab.fit does."""
    g = torch.Generator().manual_seed(4)
    X = torch.randn(90, 2, generator=g, dtype=torch.float64)
    Y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    val = (X[60:], Y[60:])
    torch.manual_seed(0)
    model = _Scaled()
    configs = [{"optimizer": "adam", "lr": lr} for lr in (0.01, 0.05)]
    run = VectorizedFit(model, X[:60], Y[:60], configs, epochs=3, batch_size=16, seed=2, val=val)
    assert run.path == "vmap"
    histories = run.run()
    for config, history in zip(configs, histories, strict=True):
        net = copy.deepcopy(model)
        ref = gdlab.fit(net, X[:60], Y[:60], gdlab.optim.OPTIMIZERS["adam"](
            net.parameters(), lr=config["lr"]), epochs=3, batch_size=16, seed=2, val=val,
            progress=False)
        torch.testing.assert_close(torch.tensor(history.costs), torch.tensor(ref.costs),
                                   rtol=0, atol=1e-10)
        for name in ("val_cost", "val_accuracy"):
            assert history.metrics[name] == pytest.approx(ref.metrics[name], abs=1e-10)


def test_why_not_vectorized_names_batch_norm_in_training_mode():
    X, Y = torch.randn(20, 2), torch.randint(0, 3, (20,))
    torch.manual_seed(0)
    batch_norm = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4),
                                     torch.nn.Linear(4, 3))
    before = copy.deepcopy(batch_norm.state_dict())
    reason = vectorized.why_not_vectorized(batch_norm, X, Y)
    assert reason.startswith("BatchNorm1d in training mode updates its running statistics")
    for key, value in batch_norm.state_dict().items():  # the trial ran on a copy
        assert torch.equal(value, before[key])
    assert vectorized.why_not_vectorized(batch_norm.eval(), X, Y) is None  # frozen statistics
    plain = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Dropout(0.2),
                                torch.nn.Linear(4, 3))
    assert vectorized.why_not_vectorized(plain, X, Y) is None  # (one dropout mask for all)
