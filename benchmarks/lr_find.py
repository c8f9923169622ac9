"""LR finder: ``gdlab.lr_find`` with its defaults (3 seeds × 100 steps of α, Adam, mini-batches
of 64) on the CNN of examples/cnn_digits.py, against one epoch of training that CNN with
``gdlab.fit`` (Adam, mini-batches of 64, 1438 digits: 23 steps). Medians of a few runs.

The issue's target is a ratio under 3. Both sides cost about the same per mini-batch, so the
ratio is about the number of steps lr_find takes (up to 3 × 100, fewer where runs diverge) over
the 23 of an epoch; the second ratio, lr_find's time per step over an epoch's, is its overhead.

    python -m benchmarks.lr_find
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gdlab
from benchmarks.common import machine, median_time
from gdlab.lab.lr_find import lr_find

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cnn_digits.py"


def example():
    spec = importlib.util.spec_from_file_location("cnn_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(repeats: int = 3) -> None:
    cnn = example()
    data = cnn.make_data()
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
    print(machine())
    print(f"one epoch of the CNN ({steps_per_epoch} steps):   {epoch_s:.3f} s")
    print(f"lr_find, 3 seeds ({steps} steps in all):  {find_s:.3f} s   {found[-1].summary()}")
    print(f"ratio lr_find / one epoch: {find_s / epoch_s:.1f}   (target < 3)")
    per_step = (find_s / steps) / (epoch_s / steps_per_epoch)
    print(f"time per step, lr_find / training: {per_step:.2f}   (3 epochs' time allows "
          f"{steps_per_epoch / per_step:.0f} steps per seed)")


if __name__ == "__main__":
    main()
