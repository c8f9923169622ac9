"""The TensorBoard callback: what it writes, read back from the event files."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from gdlab import Adam, fit
from gdlab import schedules as S
from gdlab.train.callbacks.tensorboard import TensorBoard


def _run(log_dir, epochs=3):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 4, generator=gen)
    Y = (X[:, 0] - X[:, 1] > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return fit(model, X[:150], Y[:150], Adam(model.parameters(), lr=0.01), epochs=epochs,
               batch_size=64, seed=0, progress=False, val=(X[150:], Y[150:]),
               schedule=S.inverse_time(0.01, decay_rate=1.0), callbacks=[TensorBoard(log_dir)])


def _scalars(log_dir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: ([e.step for e in events.Scalars(tag)], [e.value for e in events.Scalars(tag)])
            for tag in events.Tags()["scalars"]}


def _float32(values):
    return np.asarray(values, dtype=np.float32).tolist()  # (event files hold float32)


def test_costs_lr_and_validation_metrics_are_written(tmp_path):
    pytest.importorskip("tensorboard")
    history = _run(tmp_path / "tb")
    scalars = _scalars(tmp_path / "tb")
    assert set(scalars) == {"mini-batch/cost", "epoch/cost", "epoch/lr", "epoch/val_cost",
                            "epoch/val_accuracy"}
    assert scalars["mini-batch/cost"] == (list(range(1, 10)), _float32(history.costs))  # 3 × 3
    assert scalars["epoch/cost"] == ([1, 2, 3], _float32(history.epoch_costs))
    # inverse time decay with α₀ = 0.01: α = 0.01 / (1 + epoch_num)
    assert scalars["epoch/lr"] == ([1, 2, 3], _float32([0.01 / 2, 0.01 / 3, 0.01 / 4]))
    assert scalars["epoch/val_cost"] == ([1, 2, 3], _float32(history.metrics["val_cost"]))
    assert scalars["epoch/val_accuracy"] == ([1, 2, 3],
                                             _float32(history.metrics["val_accuracy"]))


def test_without_tensorboard_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    with pytest.raises(ImportError) as error:
        TensorBoard(tmp_path)
    assert str(error.value) == ("TensorBoard logging needs the tensorboard package: "
                                "pip install 'gdlab[tensorboard]'")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_callbacks_namespace_names_the_same_classes():
    import gdlab

    assert gdlab.callbacks.TensorBoard is gdlab.TensorBoard
    assert gdlab.callbacks.Checkpoint is gdlab.Checkpoint
    assert gdlab.callbacks.Validation is gdlab.Validation
