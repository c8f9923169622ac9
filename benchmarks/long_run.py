"""A long fit: 20,000 epochs of the default network ([2, 16, 8, 1] on moons, Adam, mini-batches
of 64) with the run folder's default checkpointing (every 10 epochs, live control), against
the same fit without a run folder.

Prints epochs per second over epochs 100–1,100 and over the last 1,000 (targets: the late rate
≥ 90 % of the early one), the checkpoint's size at 1,000 and at 20,000 epochs (the same), and
the whole run's time against the fit without checkpoints (≤ 1.2×).

    python -m benchmarks.long_run [--epochs 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import gdlab
from benchmarks.common import machine
from gdlab.data.datasets import load_data
from gdlab.models import default_layers, initial_model
from gdlab.train.callbacks.checkpoint import CHECKPOINT


def fit(dataset, epochs: int, run_dir=None, sizes=None):
    """(seconds, History) of one fit; ``sizes`` gets the checkpoint's size at each 1,000."""
    model = initial_model(dataset, default_layers(dataset), 0)
    X = torch.as_tensor(dataset.X_train, dtype=torch.float32)
    Y = torch.as_tensor(dataset.Y_train)

    def size(run):
        if sizes is not None and run.epoch_num % 1000 == 0:
            sizes[run.epoch_num] = (Path(run_dir) / CHECKPOINT).stat().st_size

    start = time.perf_counter()
    history = gdlab.fit(model, X, Y, gdlab.Adam(model.parameters(), lr=0.01), epochs=epochs,
                        batch_size=64, seed=0, progress=False, run_dir=run_dir,
                        callbacks=[size])
    return time.perf_counter() - start, history


def rate(times, first: int, last: int) -> float:
    """Epochs per second between the ends of epochs ``first`` and ``last``."""
    return (last - first) / (times[last - 1] - times[first - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20_000)
    args = parser.parse_args()
    dataset = load_data("moons", seed=0)
    epochs = args.epochs
    plain, _ = fit(dataset, epochs)
    sizes = {}
    with tempfile.TemporaryDirectory() as folder:
        checkpointed, history = fit(dataset, epochs, run_dir=folder, sizes=sizes)
        log = (Path(folder) / "history.jsonl").stat().st_size
    early, late = rate(history.times, 100, 1100), rate(history.times, epochs - 1000, epochs)
    print(f"machine: {machine()}")
    print(f"epochs/s, epochs 100–1,100: {early:.0f}; last 1,000: {late:.0f} "
          f"(late/early {late / early:.2f}, target ≥ 0.90)")
    print(f"checkpoint.pt at 1,000 epochs: {sizes[1000]} bytes; at {epochs:,}: "
          f"{sizes[epochs]} bytes (history.jsonl {log / 1e6:.1f} MB)")
    print(f"{epochs:,} epochs: {checkpointed:.1f} s with checkpoints, {plain:.1f} s without "
          f"({checkpointed / plain:.2f}×, target ≤ 1.20×)")


if __name__ == "__main__":
    main()
