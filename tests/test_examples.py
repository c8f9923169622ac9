"""The example models of examples/: their data as documented, and 3 epochs of Adam with
gdlab.fit lower the validation cost."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gdlab import Adam, fit
from gdlab.models import predict

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def val_cost(model, X, Y) -> float:
    """Cross-entropy of the model's output (classes last) on (X, Y), in eval mode."""
    output = predict(model, X)
    return float(F.cross_entropy(output.reshape(-1, output.shape[-1]), Y.reshape(-1)))


def test_cnn_digits_data():
    (X, Y), (X_val, Y_val) = load("cnn_digits").make_data()
    assert X.shape == (1438, 1, 8, 8) and X_val.shape == (359, 1, 8, 8)
    assert X.dtype == torch.float32 and Y.dtype == torch.int64
    assert Y.shape == (1438,) and Y_val.shape == (359,)
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0
    assert set(Y.tolist()) == set(range(10))


def test_tiny_transformer_data():
    example = load("tiny_transformer")
    (X, Y), (X_val, Y_val) = example.make_data()
    assert X.shape == Y.shape == (2048, 8) and X_val.shape == Y_val.shape == (512, 8)
    assert X.dtype == Y.dtype == torch.int64
    assert torch.equal(Y, X.flip(1)) and torch.equal(Y_val, X_val.flip(1))
    assert example.make_model()(X[:5]).shape == (5, 8, 8)  # (N, L, C): classes last


@pytest.mark.parametrize("name, lr, at_most", [
    ("cnn_digits", 1e-3, 0.3),  # from ln 10 ≈ 2.3 at the start
    ("tiny_transformer", 3e-3, 0.85),  # from ln 8 ≈ 2.1: a start, the task takes ~8 epochs
])
def test_three_epochs_of_adam_lower_the_validation_cost(name, lr, at_most):
    example = load(name)
    (X, Y), val = example.make_data()
    assert torch.equal(example.make_data()[0][0], X)  # seeded
    model = example.make_model()
    before = val_cost(model, *val)
    history = fit(model, X, Y, Adam(model.parameters(), lr=lr), epochs=3, seed=0,
                  progress=False, val=val)
    assert history.loss == "cross_entropy"  # inferred from the class indices
    costs = history.metrics["val_cost"]
    assert costs[-1] == pytest.approx(val_cost(model, *val), rel=1e-5)
    assert costs[-1] < at_most * before
    assert costs[-1] < costs[0]
