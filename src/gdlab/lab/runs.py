"""One training run's result, as ``gdlab compare`` and ``gdlab fit`` report it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..train.loop import History


@dataclass
class RunResult:
    """optimizer: "gd" | "momentum" | "rmsprop" | "adam";  schedule: a label such as "constant"
    or "inverse_time(decay_rate=1)";  label: how figures and tables name the run."""

    optimizer: str
    schedule: str
    label: str
    history: History
    model: nn.Module
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def final_cost(self) -> float:
        """The last epoch's cost (NaN before any epoch)."""
        return self.history.epoch_costs[-1] if self.history.epoch_costs else float("nan")


def predict(model: nn.Module, X, task: str):
    """Predicted labels (binary: a > 0.5, multiclass: argmax) or values (regression)."""
    parameter = next(model.parameters())
    with torch.no_grad():
        output = model(torch.as_tensor(X, dtype=parameter.dtype, device=parameter.device))
    if task == "binary":
        return (output > 0.5).long().reshape(-1)
    if task == "multiclass":
        return output.argmax(dim=-1)
    return output


def accuracy(model: nn.Module, X, Y, task: str) -> float | None:
    """Fraction of examples predicted right; None for regression or no examples."""
    if task == "regression" or len(X) == 0:
        return None
    predicted = predict(model, X, task).cpu()
    return float((predicted == torch.as_tensor(Y).reshape(-1).long()).double().mean())
