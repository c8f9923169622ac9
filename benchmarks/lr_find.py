"""LR finder: ``gdlab.lr_find`` with its defaults (3 seeds × 100 steps of α, Adam, mini-batches
of 64) on the CNN of examples/cnn_digits.py, against one epoch of training that CNN with
``gdlab.fit`` (Adam, mini-batches of 64, 1438 digits: 23 steps). Medians of a few runs.

The issue's target is a ratio under 3. Both sides cost about the same per mini-batch, so the
ratio is about the number of steps lr_find takes (up to 3 × 100, fewer where runs diverge) over
the 23 of an epoch; the second ratio, lr_find's time per step over an epoch's, is its overhead.

Could the seeds share a step? The script also times one training step of 3 seeds' copies of the
CNN batched through ``torch.func.vmap`` (each its own mini-batch, BatchNorm and Dropout included)
against one step of one copy: where the step is bound by arithmetic, as here, batching the seeds
saves little.

The second part asks what the target's budget would buy: ramps of as many steps a seed as fit
3 seeds into 3 epochs' time, against the default 100, for each optimizer over four groups of 3
seeds. For each it prints the suggestions (the median of each group), how far they stray from
each other (the highest over the lowest), and the validation cost after training the CNN for 3
epochs at each group's suggestion (median and worst of the four), beside the best that a grid
of α from 0.001 to 1 reaches in the same 3 epochs: a suggestion that trains well is the point
of the finder.

    python -m benchmarks.lr_find            # both parts (about two minutes on 2 cores)
    python -m benchmarks.lr_find --time     # the ratio only
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
from pathlib import Path

import numpy as np

import gdlab
from benchmarks.common import machine, median_time
from gdlab.lab.lr_find import lr_find
from gdlab.optim import OPTIMIZERS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cnn_digits.py"
SEED_GROUPS = (0, 3, 6, 9)  # lr_find's seeds 0-2, 3-5, 6-8, 9-11
GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
EPOCHS = 3  # the training each suggestion is judged by


def example():
    spec = importlib.util.spec_from_file_location("cnn_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timing(cnn, data, repeats: int = 3) -> int:
    """Print lr_find's time over one epoch's; return the steps a seed that 3 epochs allow."""
    (X, Y), _ = data

    def epoch():
        model = cnn.make_model()
        gdlab.fit(model, X, Y, gdlab.Adam(model.parameters(), lr=1e-3), epochs=1,
                  progress=False)

    found = []

    def find():
        found.append(lr_find(cnn.make_model(), data))

    epoch_s = median_time(epoch, repeats=2 * repeats + 1, warmup=1)
    find_s = median_time(find, repeats=repeats, warmup=0)
    steps_per_epoch = -(-len(X) // 64)
    steps = sum(found[-1].steps_run)
    print(f"one epoch of the CNN ({steps_per_epoch} steps):   {epoch_s:.3f} s")
    print(f"lr_find, 3 seeds ({steps} steps in all):  {find_s:.3f} s   {found[-1].summary()}")
    print(f"ratio lr_find / one epoch: {find_s / epoch_s:.1f}   (target < 3)")
    per_step = (find_s / steps) / (epoch_s / steps_per_epoch)
    allowed = int(steps_per_epoch / per_step)
    print(f"time per step, lr_find / training: {per_step:.2f}   (3 epochs' time allows "
          f"{allowed} steps per seed)")
    return allowed


def batched_seeds(cnn, data, seeds: int = 3, repeats: int = 5) -> None:
    """Print the time of one step of ``seeds`` copies of the CNN batched through vmap over one
    step of one copy (forward, backward, Adam; mini-batches of 64)."""
    import copy

    import torch
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    (X, Y), _ = data
    model = cnn.make_model()
    loss = torch.nn.functional.cross_entropy
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def one():
        rows = torch.randint(0, len(X), (64,))
        optimizer.zero_grad()
        loss(model(X[rows]), Y[rows]).backward()
        optimizer.step()

    params, buffers = stack_module_state([copy.deepcopy(model) for _ in range(seeds)])
    params = {name: p.detach().requires_grad_() for name, p in params.items()}
    skeleton = copy.deepcopy(model).to("meta")
    gradient = vmap(grad_and_value(lambda p, b, x, y: loss(functional_call(skeleton, (p, b),
                                                                           (x,)), y)),
                    randomness="different")
    stacked = torch.optim.Adam(params.values(), lr=1e-3)

    def batched():
        rows = torch.randint(0, len(X), (seeds, 64))
        grads, _ = gradient(params, buffers, X[rows], Y[rows])
        for name, p in params.items():
            p.grad = grads[name]
        stacked.step()

    one_s = median_time(lambda: [one() for _ in range(20)], repeats=repeats)
    batched_s = median_time(lambda: [batched() for _ in range(20)], repeats=repeats)
    print(f"one step of {seeds} seeds batched through vmap / one step of one: "
          f"{batched_s / one_s:.2f}   (running them one after another: {seeds})")


def val_cost_after(cnn, data, optimizer: str, lr: float, seed: int) -> float:
    """Validation cost of the CNN after EPOCHS epochs at α = ``lr`` (NaN: it diverged)."""
    (X, Y), val = data
    model = cnn.make_model(seed)
    history = gdlab.fit(model, X, Y, OPTIMIZERS[optimizer](model.parameters(), lr=lr),
                        epochs=EPOCHS, seed=seed, val=val, progress=False)
    return history.metrics["val_cost"][-1]


def quality(cnn, data, allowed: int) -> None:
    """Print, for each optimizer, what the default ramp and a ramp of ``allowed`` steps
    suggest, and how well the CNN trains at their suggestions."""
    print(f"\nsuggestions of 4 groups of 3 seeds; validation cost after {EPOCHS} epochs at each "
          f"(median / worst); best of the α grid {GRID}")
    for optimizer in ("gd", "momentum", "rmsprop", "adam"):
        best = min((statistics.median(val_cost_after(cnn, data, optimizer, lr, seed)
                                      for seed in (0, 1)), lr) for lr in GRID)
        print(f"{optimizer:9s} best of the grid: {best[0]:.3f} at α = {best[1]:g}")
        for steps in (100, allowed):
            suggestions = [lr_find(cnn.make_model(), data, optimizer, steps=steps,
                                   seed=seed).suggestion for seed in SEED_GROUPS]
            found = [s for s in suggestions if s is not None]
            costs = [val_cost_after(cnn, data, optimizer, lr, seed)
                     for lr, seed in zip(suggestions, SEED_GROUPS, strict=True)
                     if lr is not None]
            costs = np.nan_to_num(costs, nan=np.inf)
            stray = max(found) / min(found) if found else float("nan")
            print(f"  {steps:3d} steps: α = " + ", ".join(
                "none" if s is None else f"{s:.2g}" for s in suggestions)
                + f"   (highest/lowest {stray:.1f})   validation cost "
                f"{np.median(costs):.3f} / {costs.max():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", action="store_true", help="the ratio only")
    args = parser.parse_args()
    cnn = example()
    data = cnn.make_data()
    print(machine())
    allowed = timing(cnn, data)
    batched_seeds(cnn, data)
    if not args.time:
        quality(cnn, data, allowed)


if __name__ == "__main__":
    main()
