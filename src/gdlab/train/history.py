"""What a run did: ``History`` (costs per mini-batch and per epoch, α, times, events, metrics)
and the epoch cost J = Σ_t m_t·J^{t} / m."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ewa import ewa


@dataclass
class History:
    """What a run did.

    costs:        J^{t} of every mini-batch, in order (mean over the mini-batch)
    epoch_costs:  the cost of each epoch, Σ_t m_t·J^{t} / m (average over all m examples)
    lrs:          α used in each epoch (the first mini-batch's, if it changed within the epoch)
    times:        wall-clock seconds since the start, at the end of each epoch
    events:       notes such as manual learning-rate changes and divergences:
                  {"epoch", "t", "event": "set_lr" | "diverged", ...}
    metrics:      per-epoch values that callbacks record, by name (e.g. "accuracy",
                  "val_cost"); saved in checkpoints with the rest
    loss:         the cost J the run minimized, by name (e.g. "cross_entropy" where gdlab
                  inferred it, "CrossEntropyLoss" for that torch module)
    """

    costs: list[float] = field(default_factory=list)
    epoch_costs: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    metrics: dict[str, list] = field(default_factory=dict)
    loss: str | None = None

    @property
    def epochs(self) -> int:
        return len(self.epoch_costs)

    def smoothed_costs(self, beta: float = 0.98) -> np.ndarray:
        """The mini-batch costs through the bias-corrected EWA with β."""
        return ewa(np.asarray(self.costs, dtype=np.float64), beta, bias_correction=True)

    def state_dict(self) -> dict:
        return {"costs": list(self.costs), "epoch_costs": list(self.epoch_costs),
                "lrs": list(self.lrs), "times": list(self.times),
                "events": [dict(event) for event in self.events],
                "metrics": {name: list(values) for name, values in self.metrics.items()},
                "loss": self.loss}

    @classmethod
    def from_state_dict(cls, state: dict) -> History:
        return cls(**{k: ({name: list(values) for name, values in v.items()} if k == "metrics"
                          else [dict(e) for e in v] if k == "events"
                          else v if k == "loss" else list(v))
                      for k, v in state.items()})

    def _lengths(self) -> dict:
        return {"costs": len(self.costs), "epoch_costs": len(self.epoch_costs),
                "lrs": len(self.lrs), "times": len(self.times), "events": len(self.events),
                "metrics": {name: len(values) for name, values in self.metrics.items()}}

    def since(self, lengths: dict) -> dict:
        """What was added after ``_lengths()`` gave ``lengths``, as plain values (a chunk that
        :meth:`extend` appends)."""
        chunk = {name: getattr(self, name)[lengths[name]:]
                 for name in ("costs", "epoch_costs", "lrs", "times", "events")}
        chunk["metrics"] = {name: values[lengths["metrics"].get(name, 0):]
                            for name, values in self.metrics.items()}
        return chunk

    def extend(self, chunk: dict) -> None:
        """Append a chunk that :meth:`since` made."""
        for name in ("costs", "epoch_costs", "lrs", "times", "events"):
            getattr(self, name).extend(chunk[name])
        for name, values in chunk["metrics"].items():
            self.metrics.setdefault(name, []).extend(values)

    def _truncate(self, lengths: dict) -> None:
        """Back to the lengths ``_lengths()`` gave (drops what an abandoned epoch added)."""
        for name in ("costs", "epoch_costs", "lrs", "times", "events"):
            del getattr(self, name)[lengths[name]:]
        for name in list(self.metrics):
            if name in lengths["metrics"]:
                del self.metrics[name][lengths["metrics"][name]:]
            else:
                del self.metrics[name]


def epoch_cost_of(costs, sizes):
    """J of an epoch from its mini-batch costs J^{t} (first dimension: the steps; any others,
    e.g. configurations, kept): Σ_t m_t·J^{t} / Σ_t m_t with ``sizes`` the m_t. Where every
    mini-batch but the last has the same size (a source cut into ``batch_size`` rows), that
    size multiplies the sum of their costs once."""
    sizes = np.asarray(sizes)
    head, last = sizes[0], sizes[-1]
    if (sizes[:-1] == head).all():
        return (head * costs[:-1].sum(0) + last * costs[-1]) / sizes.sum()
    return np.tensordot(sizes, costs, 1) / sizes.sum()

