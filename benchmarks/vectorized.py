"""Vectorized sweep: 32 configurations of the course's [2, 5, 2, 1] network (moons, m = 300,
mini-batch 64, Adam with 32 different (α, β₁, β₂)) trained at once by
:class:`gdlab.lab.vectorized.VectorizedFit`, against one ``gdlab.fit`` run and against the 32
runs one after another (estimated as 32 × one run). ``python benchmarks/vectorized.py``."""

from __future__ import annotations

import copy
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import gdlab  # noqa: E402
from gdlab.data.datasets import load_data  # noqa: E402
from gdlab.lab.vectorized import VectorizedFit  # noqa: E402
from gdlab.models import initial_model  # noqa: E402

CONFIGS = 32
EPOCHS = 200


def _configs(n):
    lrs = [10 ** (-3 + 2 * i / (n - 1)) for i in range(n)]
    return [{"optimizer": "adam", "lr": lr, "beta1": (0.8, 0.9)[i % 2],
             "beta2": (0.99, 0.999)[(i // 2) % 2]} for i, lr in enumerate(lrs)]


def run(repeats: int = 7, epochs: int = EPOCHS, n: int = CONFIGS) -> dict:
    torch.set_num_threads(1)
    dataset = load_data("moons", seed=0, n_samples=400)  # 300 training examples
    model = initial_model(dataset, [2, 5, 2, 1], 0, torch.float32)
    X, Y = torch.as_tensor(dataset.X_train, dtype=torch.float32), torch.as_tensor(
        dataset.Y_train)
    configs = _configs(n)

    def one_fit():
        net = copy.deepcopy(model)
        gdlab.fit(net, X, Y, gdlab.Adam(net.parameters(), lr=0.01), epochs=epochs,
                  batch_size=64, seed=0, progress=False)

    def vectorized(k, path="auto"):
        VectorizedFit(model, X, Y, configs[:k], epochs=epochs, batch_size=64, seed=0,
                      path=path).run()

    contenders = {"one": one_fit, "together": lambda: vectorized(n),
                  "together_vmap": lambda: vectorized(n, "vmap"), "single": lambda: vectorized(1)}
    seconds = {name: [] for name in contenders}
    for _ in range(repeats):  # round by round, so that the machine's drift hits all alike
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    result = {name: statistics.median(times) for name, times in seconds.items()}
    # each round's time over that round's one run, then the median of those ratios
    result["ratios"] = {name: statistics.median(t / o for t, o in zip(times, seconds["one"],
                                                                       strict=True))
                        for name, times in seconds.items()}
    return {"n": n, "epochs": epochs, "m": len(X), "repeats": repeats, **result}


def table(r: dict) -> str:
    n, ratio = r["n"], r["ratios"]
    rows = [("one `gdlab.fit` run", r["one"], 1.0, ""),
            (f"{n} runs one after another (= {n} × one)", n * r["one"], n, "1×"),
            (f"{n} configurations vectorized (closed-form backprop, flat rule)", r["together"],
             ratio["together"], f"{n / ratio['together']:.1f}× faster"),
            (f"{n} configurations vectorized (torch.func vmap path)", r["together_vmap"],
             ratio["together_vmap"], f"{n / ratio['together_vmap']:.1f}× faster"),
            ("1 configuration through the vectorized trainer", r["single"], ratio["single"], "")]
    lines = [f"[2, 5, 2, 1] network, moons m = {r['m']}, mini-batch 64, Adam, {r['epochs']} "
             f"epochs, float32, one thread. The contenders run round by round ({r['repeats']} "
             f"rounds); seconds are medians, and each time in units of one run is the median "
             f"of the rounds' ratios (target: {n} configurations in ≤ 2× one run).", "",
             "| what | seconds | time | vs one after another |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b:.3f} | {c:.2f}× one run | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
