"""fit(): the training loop, its History, schedules, manual decay and callbacks."""

from __future__ import annotations

import copy
import io
import math
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gdlab import GD, MLP, Adam, Fit, History, Momentum, fit
from gdlab import schedules as S

M = 148


def _data(m=M, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(m, 3, generator=gen)
    Y = (X[:, 0] + 0.5 * X[:, 1] > 0).float()
    return X, Y


def _model(seed=0, dims=(3, 6, 1), **kwargs):
    torch.manual_seed(seed)
    return MLP(list(dims), **kwargs)


def _lr_recorder(optimizer):
    """Records the α of the first param group at every optimizer step."""
    used = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: used.append(
        opt.param_groups[0]["lr"]))
    return used


# --- History ----------------------------------------------------------------------------------


def test_history_lengths():
    X, Y = _data()
    model = _model()
    history = fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=4, batch_size=64, seed=0,
                  progress=False)
    assert isinstance(history, History)
    assert len(history.costs) == 4 * 3  # 148 = 64 + 64 + 20
    assert history.epochs == len(history.epoch_costs) == 4
    assert len(history.lrs) == 4 and history.lrs == [0.1] * 4
    assert len(history.times) == 4
    assert all(b > a for a, b in zip(history.times, history.times[1:]))
    assert history.times[0] > 0
    assert all(isinstance(c, float) and math.isfinite(c) for c in history.costs)
    assert history.events == []


@pytest.mark.parametrize("batch_size", [64, 1, M, 50])
def test_epoch_cost_is_the_size_weighted_mean_of_the_batch_costs(batch_size):
    X, Y = _data()
    model = _model()
    history = fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=3, batch_size=batch_size,
                  seed=1, progress=False)
    sizes = [min(batch_size, M - start) for start in range(0, M, batch_size)]
    n = len(sizes)
    assert len(history.costs) == 3 * n
    for epoch in range(3):
        costs = history.costs[epoch * n:(epoch + 1) * n]
        expected = sum(m_t * J_t for m_t, J_t in zip(sizes, costs)) / M
        assert history.epoch_costs[epoch] == pytest.approx(expected, rel=1e-12)
    if batch_size != M and M % batch_size:
        # not the plain mean of the batch costs (the last batch is smaller)
        plain = sum(history.costs[:n]) / n
        assert history.epoch_costs[0] != pytest.approx(plain, rel=1e-9)


def test_first_cost_is_the_cost_of_the_initial_model_on_the_first_batch():
    X, Y = _data()
    model = _model()
    initial = copy.deepcopy(model)
    history = fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=1, batch_size=M,
                  progress=False)
    expected = F.binary_cross_entropy(initial(X).squeeze(1), Y).item()
    assert history.costs[0] == pytest.approx(expected, rel=1e-5)
    assert history.epoch_costs[0] == pytest.approx(expected, rel=1e-5)


def test_smoothed_costs_and_state_dict():
    X, Y = _data()
    model = _model()
    history = fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=3, batch_size=16, seed=0,
                  progress=False)
    smoothed = history.smoothed_costs(0.9)
    assert smoothed.shape == (len(history.costs),)
    assert smoothed[0] == pytest.approx(history.costs[0])  # bias-corrected
    again = History.from_state_dict(history.state_dict())
    assert again == history


def test_training_reduces_the_cost():
    X, Y = _data()
    model = _model()
    history = fit(model, X, Y, Adam(model.parameters(), lr=0.01), epochs=30, batch_size=32,
                  seed=0, progress=False)
    assert history.epoch_costs[-1] < 0.5 * history.epoch_costs[0]


# --- reproducibility --------------------------------------------------------------------------


def _run(seed, data_seed=0, epochs=3):
    X, Y = _data(seed=data_seed)
    model = _model()
    history = fit(model, X, Y, Momentum(model.parameters(), lr=0.1), epochs=epochs,
                  batch_size=32, seed=seed, progress=False)
    return history, [p.detach().clone() for p in model.parameters()]


def test_same_seed_same_history_and_weights():
    h1, w1 = _run(seed=7)
    h2, w2 = _run(seed=7)
    assert h1.costs == h2.costs and h1.epoch_costs == h2.epoch_costs and h1.lrs == h2.lrs
    for a, b in zip(w1, w2, strict=True):
        assert torch.equal(a, b)


def test_different_seed_different_order():
    h1, w1 = _run(seed=7)
    h3, w3 = _run(seed=8)
    assert h1.costs != h3.costs
    assert any(not torch.equal(a, b) for a, b in zip(w1, w3))


def test_seeded_fit_does_not_depend_on_the_global_rng():
    X, Y = _data()
    results = []
    for global_seed in (1, 2):
        model = _model()
        torch.manual_seed(global_seed)
        results.append(fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=2, batch_size=32,
                           seed=3, progress=False).costs)
    assert results[0] == results[1]


def test_batch_order_fixes_the_permutation():
    X, Y = _data()
    model = _model()
    initial = copy.deepcopy(model)
    history = fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=1, batch_size=64,
                  batch_order=lambda epoch: torch.arange(M), progress=False)
    expected = F.binary_cross_entropy(initial(X[:64]).squeeze(1), Y[:64]).item()
    assert history.costs[0] == pytest.approx(expected, rel=1e-5)


def test_numpy_data():
    X, Y = _data()
    model = _model()
    history = fit(model, X.numpy().astype(np.float64), Y.numpy(), GD(model.parameters(), lr=0.1),
                  epochs=2, batch_size=32, seed=0, progress=False)
    assert len(history.epoch_costs) == 2


# --- schedules and manual decay ---------------------------------------------------------------


def test_schedule_sets_lr_per_epoch():
    X, Y = _data()
    model = _model()
    optimizer = GD(model.parameters(), lr=0.2)
    used = _lr_recorder(optimizer)
    schedule = S.inverse_time(0.2, decay_rate=1)
    history = fit(model, X, Y, optimizer, epochs=4, batch_size=64, schedule=schedule, seed=0,
                  progress=False)
    assert history.lrs == pytest.approx([0.1, 0.2 / 3, 0.05, 0.04], rel=1e-12)
    assert history.lrs == pytest.approx([schedule(e) for e in range(1, 5)], rel=1e-15)
    # every mini-batch of epoch e trained at α(e)
    assert used == pytest.approx([lr for lr in history.lrs for _ in range(3)], rel=1e-12)


def test_schedule_keeps_the_ratio_of_param_groups():
    X, Y = _data()
    model = _model()
    first, *rest = list(model.parameters())
    optimizer = GD([{"params": [first], "lr": 0.2}, {"params": rest, "lr": 0.02}])
    fit(model, X, Y, optimizer, epochs=3, batch_size=64, schedule=S.exponential(0.2, base=0.5),
        progress=False)
    lrs = [group["lr"] for group in optimizer.param_groups]
    assert lrs == pytest.approx([0.2 * 0.5**3, 0.02 * 0.5**3])


def test_per_step_schedule():
    X, Y = _data()
    model = _model()
    optimizer = GD(model.parameters(), lr=0.2)
    used = _lr_recorder(optimizer)
    history = fit(model, X, Y, optimizer, epochs=3, batch_size=64, progress=False,
                  schedule=S.inverse_sqrt(0.2, per="step"), seed=0)
    assert used == pytest.approx([0.2 / math.sqrt(t) for t in range(1, 10)], rel=1e-12)
    assert history.lrs == pytest.approx([0.2, 0.2 / 2, 0.2 / math.sqrt(7)], rel=1e-12)


def test_plateau_schedule_in_fit_observes_the_epoch_cost():
    X, Y = _data()
    model = _model()
    # threshold 0.5: only a halving of the cost counts as an improvement, so α gets cut
    schedule = S.plateau(0.5, factor=0.5, patience=1, beta=0.0, threshold=0.5)
    history = fit(model, X, Y, GD(model.parameters(), lr=0.5), epochs=5, batch_size=64,
                  schedule=schedule, seed=0, progress=False)
    replay = S.plateau(0.5, factor=0.5, patience=1, beta=0.0, threshold=0.5)
    expected = [0.5] + [replay.observe(c) for c in history.epoch_costs[:-1]]
    assert history.lrs == pytest.approx(expected, rel=1e-15)
    assert min(history.lrs) < 0.5


def test_set_lr_from_a_callback_takes_effect_at_the_next_mini_batch():
    X, Y = _data()
    model = _model()
    optimizer = GD(model.parameters(), lr=0.2)
    used = _lr_recorder(optimizer)

    def manual(f):
        if f.epoch_num == 2:
            f.set_lr(0.01)

    history = fit(model, X, Y, optimizer, epochs=4, batch_size=64, callbacks=[manual], seed=0,
                  progress=False, schedule=S.inverse_time(0.2, decay_rate=1))
    # epochs 1, 2 follow the schedule; from the next mini-batch on (t = 7) α = 0.01, for good
    assert used == pytest.approx([0.1] * 3 + [0.2 / 3] * 3 + [0.01] * 6, rel=1e-12)
    assert len(history.events) == 1
    event = history.events[0]
    assert (event["epoch"], event["t"], event["event"], event["lr"]) == (3, 7, "set_lr", 0.01)
    assert history.lrs[:2] == pytest.approx([0.1, 0.2 / 3])
    assert history.lrs[3] == pytest.approx(0.01, rel=1e-15)


def test_set_lr_at_epoch_end_is_recorded_as_the_next_epochs_lr():
    X, Y = _data()
    model = _model()
    optimizer = GD(model.parameters(), lr=0.2)
    used = _lr_recorder(optimizer)

    def manual(f):
        if f.epoch_num == 1:
            f.set_lr(0.05)

    history = fit(model, X, Y, optimizer, epochs=2, batch_size=64, callbacks=[manual], seed=0,
                  progress=False)
    assert used[3:] == [0.05] * 3  # epoch 2 trained at 0.05 ...
    assert history.lrs == [0.2, 0.05]  # ... and History.lrs says so


def test_set_lr_mid_epoch_takes_effect_at_the_next_mini_batch():
    X, Y = _data()
    model = _model()
    optimizer = GD(model.parameters(), lr=0.2)
    used = _lr_recorder(optimizer)
    run = Fit(model, X, Y, optimizer, epochs=2, batch_size=32, seed=0, progress=False)

    def after_step(opt, args, kwargs):
        if run.t == 2:
            run.set_lr(0.01)

    optimizer.register_step_post_hook(after_step)
    history = run.run()
    assert used == pytest.approx([0.2, 0.2] + [0.01] * 8)
    assert history.events == [{"epoch": 1, "t": 3, "event": "set_lr", "old_lr": 0.2,
                               "lr": 0.01}]


def test_set_lr_checked():
    X, Y = _data()
    model = _model()
    run = Fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got -0.1"):
        run.set_lr(-0.1)


# --- callbacks --------------------------------------------------------------------------------


def test_stop_ends_the_run_after_the_current_epoch():
    X, Y = _data()
    model = _model()

    def stopper(f):
        if f.epoch_num == 2:
            f.stop()

    history = fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=10, batch_size=64,
                  callbacks=[stopper], seed=0, progress=False)
    assert history.epochs == 2
    assert len(history.costs) == 6 and len(history.lrs) == 2 and len(history.times) == 2


def test_callbacks_as_objects_and_functions():
    X, Y = _data()
    model = _model()
    calls = []

    class Recorder:
        def on_fit_start(self, f):
            calls.append(("start", f.epoch_num))

        def on_epoch_end(self, f):
            calls.append(("epoch", f.epoch_num, len(f.history.epoch_costs)))

        def on_fit_end(self, f):
            calls.append(("end", f.epoch_num))

    def plain(f):
        assert isinstance(f, Fit)
        calls.append(("plain", f.epoch_num, f.t))

    fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=2, batch_size=64,
        callbacks=[Recorder(), plain], seed=0, progress=False)
    assert calls == [("start", 0), ("epoch", 1, 1), ("plain", 1, 3), ("epoch", 2, 2),
                     ("plain", 2, 6), ("end", 2)]


def test_object_with_only_some_hooks():
    X, Y = _data()
    model = _model()
    seen = []

    class EndOnly:
        def on_fit_end(self, f):
            seen.append(f.history.epochs)

    fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=3, callbacks=[EndOnly()],
        progress=False)
    assert seen == [3]


@pytest.mark.parametrize("when", ["pre", "post"])
def test_global_optimizer_step_hooks_run_at_every_step(when):
    """fit skips torch's step wrapper only while no hook would run in it: a hook registered for
    every optimizer (torch.optim.optimizer.register_optimizer_step_*_hook) runs at each step."""
    X, Y = _data()
    model = _model()
    steps = []
    from torch.optim import optimizer as torch_optimizer

    register = getattr(torch_optimizer, f"register_optimizer_step_{when}_hook")
    handle = register(lambda optimizer, args, kwargs: steps.append(1))
    try:
        history = fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=2, batch_size=64,
                      progress=False)
    finally:
        handle.remove()
    assert len(steps) == len(history.costs) == 6


# --- default losses ---------------------------------------------------------------------------


def _first_cost(model, X, Y):
    initial = copy.deepcopy(model)
    history = fit(model, X, Y, GD(model.parameters(), lr=0.01), epochs=1, batch_size=len(X),
                  progress=False)
    return history.costs[0], initial


def test_default_loss_mlp_sigmoid_is_binary_cross_entropy():
    X, Y = _data()
    cost, initial = _first_cost(_model(), X, Y)
    assert cost == pytest.approx(F.binary_cross_entropy(initial(X).squeeze(1), Y).item(),
                                 rel=1e-5)


def test_default_loss_mlp_softmax_takes_class_indices():
    X, _ = _data()
    labels = torch.randint(0, 3, (M,), generator=torch.Generator().manual_seed(0))
    cost, initial = _first_cost(_model(dims=(3, 6, 3), output="softmax"), X, labels)
    assert cost == pytest.approx(F.nll_loss(torch.log(initial(X)), labels).item(), rel=1e-5)


def test_default_loss_mlp_linear_is_mean_squared_error():
    X, _ = _data()
    Y = X @ torch.tensor([[1.0], [-2.0], [0.5]])
    cost, initial = _first_cost(_model(output="linear"), X, Y)
    assert cost == pytest.approx(((initial(X) - Y) ** 2).mean().item(), rel=1e-5)


def test_plain_sequential_ending_in_sigmoid():
    X, Y = _data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 1), nn.Sigmoid())
    cost, initial = _first_cost(model, X, Y)
    assert cost == pytest.approx(F.binary_cross_entropy(initial(X).squeeze(1), Y).item(),
                                 rel=1e-5)
    history = fit(model, X, Y, Adam(model.parameters(), lr=0.01), epochs=20, batch_size=32,
                  seed=0, progress=False)
    assert history.epoch_costs[-1] < history.epoch_costs[0]


def test_explicit_loss():
    X, Y = _data()
    model = _model(output="linear")
    initial = copy.deepcopy(model)
    history = fit(model, X, Y, GD(model.parameters(), lr=0.01), epochs=1, batch_size=M,
                  loss=lambda out, y: (out.squeeze(1) - y).abs().mean(), progress=False)
    assert history.costs[0] == pytest.approx((initial(X).squeeze(1) - Y).abs().mean().item(),
                                              rel=1e-5)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_bar(monkeypatch, capsys, terminal):
    # tqdm stays silent when stderr is not a terminal; pretend it is one to see the bar
    err = _Terminal() if terminal else None
    if terminal:
        monkeypatch.setattr(sys, "stderr", err)
    X, Y = _data()
    model = _model()

    def callback(f):
        pass

    run = Fit(model, X, Y, GD(model.parameters(), lr=0.1), epochs=2, batch_size=64,
              callbacks=[callback], progress=True)
    history = run.run()
    assert history.epochs == 2
    assert run.callbacks == [callback]  # the bar is not left among the callbacks
    if terminal:
        assert "0/2" in err.getvalue() and "epoch" in err.getvalue()
    capsys.readouterr()


def test_torch_lr_scheduler_in_a_callback():
    X, Y = _data()
    model = _model()
    optimizer = GD(model.parameters(), lr=0.2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "lr_scheduler.step() before optimizer.step()"
        history = fit(model, X, Y, optimizer, epochs=3, batch_size=64, progress=False,
                      callbacks=[lambda f: scheduler.step()])
    assert history.lrs == pytest.approx([0.2, 0.1, 0.05])


# --- argument checks --------------------------------------------------------------------------


@pytest.mark.parametrize("epochs", [0, -1, 1.5, None])
def test_epochs_checked(epochs):
    X, Y = _data()
    model = _model()
    with pytest.raises(ValueError, match=rf"epochs must be an integer >= 1, got {epochs!r}"):
        fit(model, X, Y, GD(model.parameters()), epochs=epochs, progress=False)


@pytest.mark.parametrize("batch_size", [0, -64])
def test_batch_size_checked(batch_size):
    X, Y = _data()
    model = _model()
    with pytest.raises(ValueError, match=rf"batch_size must be an integer >= 1, got "
                                         rf"{batch_size}"):
        fit(model, X, Y, GD(model.parameters()), epochs=1, batch_size=batch_size,
            progress=False)


def test_batch_size_larger_than_m():
    X, Y = _data()
    model = _model()
    with pytest.raises(ValueError, match=rf"batch_size must be at most m = {M} \(the number of "
                                         rf"examples\), got {M + 1}"):
        fit(model, X, Y, GD(model.parameters()), epochs=1, batch_size=M + 1, progress=False)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_data_rejected(bad):
    X, Y = _data()
    model = _model()
    X_bad = X.clone()
    X_bad[5, 1] = bad
    with pytest.raises(ValueError, match="X contains NaN or infinite values"):
        fit(model, X_bad, Y, GD(model.parameters()), epochs=1, progress=False)
    Y_bad = Y.clone()
    Y_bad[3] = bad
    with pytest.raises(ValueError, match="Y contains NaN or infinite values"):
        fit(model, X, Y_bad, GD(model.parameters()), epochs=1, progress=False)


def test_x_y_rows_must_match():
    X, Y = _data()
    model = _model()
    with pytest.raises(ValueError, match=r"X and Y must have the same number of rows "
                                         rf"\(examples\), got {M} and {M - 1}"):
        fit(model, X, Y[:-1], GD(model.parameters()), epochs=1, progress=False)
