"""gdlab.compare on any model and data: every run from the same start and in the same
mini-batch order, over several seeds, summarized with medians and ranges."""

from __future__ import annotations

import statistics

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gdlab import GD, MLP, fit
from gdlab.lab.compare import Comparison, compare


def _images(m=96, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(m, 1, 6, 6, generator=gen)
    Y = (X.mean((1, 2, 3)) > 0).long() + (X[:, 0, 0, 0] > 1).long()  # classes 0, 1, 2
    return X, Y


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Dropout(0.1), nn.Linear(3 * 16, 3))


def _first_costs(comparison):
    return {run.label: run.history.costs[0] for run in comparison.runs}


def test_every_run_starts_from_the_same_state_and_mini_batch_order():
    """J^{1} is taken before any step: equal for every optimizer only if each run starts from
    the same weights and buffers and sees the same first mini-batch."""
    X, Y = _images()
    torch.manual_seed(0)
    model = _cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = compare(model, (X, Y), epochs=2, batch_size=16, lr=0.01)
    assert len(result.runs) == 8  # 4 optimizers, each constant and with decay
    assert len(set(_first_costs(result).values())) == 1
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the caller's model untouched
    assert {run.history.loss for run in result.runs} == {"cross_entropy"}


def test_a_shuffling_dataloader_gets_one_seeded_order_for_every_run():
    X, Y = _images()
    loader = DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=True)
    torch.manual_seed(0)
    result = compare(_cnn(), loader, epochs=1, lr=0.01, optimizers=("gd", "adam"), decay=None)
    costs = [run.history.costs for run in result.runs]
    assert costs[0][0] == costs[1][0] and len(costs[0]) == 6


def test_seeds_give_medians_and_ranges_and_a_factory_is_called_per_seed():
    X, Y = _images()
    result = compare(_cnn, ((X[:64], Y[:64]), (X[64:], Y[64:])), epochs=2, batch_size=16,
                     seeds=3, seed=5, optimizers=("gd", "adam"), decay=None, lr=0.05)
    assert result.seeds == [5, 6, 7] and len(result.runs) == 6
    firsts = [run.history.costs[0] for run in result.runs if run.optimizer == "adam"]
    assert len(set(firsts)) == 3  # each seed its own initial weights
    summary = {row["label"]: row for row in result.summary()}
    adam = [run for run in result.runs if run.label == "adam"]
    val = [run.history.metrics["val_cost"][-1] for run in adam]
    assert summary["adam"]["val cost"] == (statistics.median(val), min(val), max(val))
    assert summary["adam"]["ranked by"] == "val cost"
    table = result.table()
    assert "median over 3 seeds" in table and "adam" in table and "gd" in table


def test_gdlabs_own_data_trains_its_mlp_as_a_plain_fit_would():
    from gdlab.data.datasets import load_data
    from gdlab.models import initial_model

    dataset = load_data("moons", seed=0)
    result = compare(data=dataset, epochs=3, optimizers=("gd",), decay=None)
    initial = initial_model(dataset, [2, 16, 8, 1], 0)
    X = torch.as_tensor(dataset.X_train, dtype=torch.float32)
    history = fit(initial, X, torch.as_tensor(dataset.Y_train),
                  GD(initial.parameters(), lr=0.1), epochs=3, batch_size=64, seed=0,
                  progress=False)
    assert result.runs[0].history.costs == history.costs
    assert isinstance(result.runs[0].model, MLP) and result.runs[0].test_accuracy is not None


def test_steps_to_target_and_overlaps(monkeypatch):
    from gdlab.lab.runs import RunResult
    from gdlab.train import History

    def run(label, finals, seed):
        history = History(costs=[1.0] * 2 * len(finals), epoch_costs=finals)
        return RunResult(optimizer=label, schedule="constant", label=label, history=history,
                         model=None, seconds=1.0, config={"seed": seed})

    result = Comparison([run("gd", [0.9, 0.5], 0), run("gd", [0.8, 0.45], 1),
                         run("adam", [0.4, 0.3], 0), run("adam", [0.6, 0.48], 1)], [0, 1])
    assert result.target_cost() == 0.5
    rows = {row["label"]: row for row in result.summary()}
    assert rows["adam"]["steps to target"] == (3.0, 2.0, 4.0)  # epochs 1 and 2, 2 steps each
    assert rows["adam"]["overlaps next"]  # adam 0.3–0.48 against gd 0.45–0.5
    assert "their ranges overlap" in result.table()


def test_bad_models_and_data_are_refused_in_one_line():
    X, Y = _images()
    with pytest.raises(TypeError, match="model must be an nn.Module or a function returning"):
        compare(lambda: "not a model", (X, Y), epochs=1)
    with pytest.raises(ValueError, match="seeds must be an integer >= 1"):
        compare(_cnn(), (X, Y), epochs=1, seeds=0)


def test_the_epoch_cost_figure_draws_the_validation_cost_dotted():
    from gdlab.lab.runs import RunResult
    from gdlab.report import figures
    from gdlab.train import History

    history = History(costs=[1.0, 0.5], epoch_costs=[0.9, 0.4], lrs=[0.1, 0.1],
                      metrics={"val_cost": [1.1, 0.7]})
    run = RunResult(optimizer="adam", schedule="constant", label="adam", history=history,
                    model=None)
    ax = figures.epoch_cost([run]).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["adam (validation)"].get_ydata()) == [1.1, 0.7]
    assert lines["adam (validation)"].get_linestyle() == ":"
    assert "dotted: on the validation data" in ax.get_title()
