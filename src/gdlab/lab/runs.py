"""One training run's result, as ``gdlab compare`` and ``gdlab fit`` report it."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..train import History


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
