"""Course-sized network: steps per second of ``gdlab.fit`` on the [2, 5, 2, 1] network with Adam
(float64, mini-batches of 64 over the 300 moons examples) against a plain-numpy version of the
same loop, written the way the course computes it (column layout, hand-written backward, and
each mini-batch's cost added up as the course's ``model()`` does — ``fit`` records the same
costs). The two loops run round by round; the ratio is the median of the rounds' ratios."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import gdlab
from gdlab.lab.course import course_data, course_model


def numpy_adam_loop(X, Y, epochs, lr=0.0007, beta1=0.9, beta2=0.999, eps=1e-8, batch=64):
    """The assignment's model() with Adam, in numpy; returns (mini-batch steps taken, each
    epoch's cost)."""
    X, Y = X.T, Y.T  # the course's (n_x, m) layout
    rng = np.random.RandomState(3)
    dims = [2, 5, 2, 1]
    P = {}
    for l in range(1, 4):
        P[f"W{l}"] = rng.randn(dims[l], dims[l - 1]) * np.sqrt(2 / dims[l - 1])
        P[f"b{l}"] = np.zeros((dims[l], 1))
    v = {k: np.zeros_like(p) for k, p in P.items()}
    s = {k: np.zeros_like(p) for k, p in P.items()}
    m, t, epoch_costs = X.shape[1], 0, []
    for epoch in range(epochs):
        order = np.random.RandomState(11 + epoch).permutation(m)
        Xs, Ys = X[:, order], Y[:, order]
        cost_total = 0.0
        for k in range(0, m, batch):
            x, y = Xs[:, k:k + batch], Ys[:, k:k + batch]
            z1 = P["W1"] @ x + P["b1"]
            a1 = np.maximum(0, z1)
            z2 = P["W2"] @ a1 + P["b2"]
            a2 = np.maximum(0, z2)
            z3 = P["W3"] @ a2 + P["b3"]
            a3 = 1 / (1 + np.exp(-z3))
            cost_total += np.sum(-np.log(a3) * y - np.log(1 - a3) * (1 - y))
            n = x.shape[1]
            dz3 = (a3 - y) / n
            grads = {"W3": dz3 @ a2.T, "b3": dz3.sum(axis=1, keepdims=True)}
            dz2 = (P["W3"].T @ dz3) * (a2 > 0)
            grads["W2"], grads["b2"] = dz2 @ a1.T, dz2.sum(axis=1, keepdims=True)
            dz1 = (P["W2"].T @ dz2) * (a1 > 0)
            grads["W1"], grads["b1"] = dz1 @ x.T, dz1.sum(axis=1, keepdims=True)
            t += 1
            for key, g in grads.items():
                v[key] = beta1 * v[key] + (1 - beta1) * g
                s[key] = beta2 * s[key] + (1 - beta2) * g ** 2
                v_hat = v[key] / (1 - beta1 ** t)
                s_hat = s[key] / (1 - beta2 ** t)
                P[key] = P[key] - lr * v_hat / (np.sqrt(s_hat) + eps)
        epoch_costs.append(cost_total / m)
    return t, epoch_costs


def gdlab_loop(X, Y, epochs):
    model = course_model()
    optimizer = gdlab.Adam(model.parameters(), lr=0.0007)
    history = gdlab.fit(model, torch.from_numpy(X), torch.from_numpy(Y), optimizer,
                        epochs=epochs, batch_size=64, seed=0, progress=False)
    return len(history.costs), history.epoch_costs


def run(epochs: int = 400, repeats: int = 7) -> dict:
    X, Y = course_data()
    gdlab_loop(X, Y, 1)  # the first call's one-time costs (imports, allocations) do not count
    per_step = {"numpy": [], "gdlab.fit": []}
    for _ in range(repeats):  # round by round, so that the machine's drift hits both alike
        for name, loop in (("numpy", numpy_adam_loop), ("gdlab.fit", gdlab_loop)):
            start = time.perf_counter()
            steps, _ = loop(X, Y, epochs)
            per_step[name].append((time.perf_counter() - start) / steps)
    result = {name: statistics.median(times) for name, times in per_step.items()}
    result["ratio"] = statistics.median(a / b for a, b in zip(per_step["numpy"],
                                                              per_step["gdlab.fit"], strict=True))
    return result


def table(result) -> str:
    return ("| network | numpy (course style) | gdlab.fit | gdlab vs numpy |\n|---|---|---|---|\n"
            f"| [2, 5, 2, 1], Adam, float64, batch 64 | {1e6 * result['numpy']:.0f} µs/step | "
            f"{1e6 * result['gdlab.fit']:.0f} µs/step | {result['ratio']:.2f}× |")


if __name__ == "__main__":
    print(table(run()))
