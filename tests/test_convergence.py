"""Behaviour: every optimizer × problem must reach a stated cost, and Momentum and RMSProp beat
GD on an elongated bowl at the same α, as the lecture says.

Each case runs in well under 2 s; the numbers are deterministic (float64 for the 2-D problems,
seeded initialization and batch order for the network).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_moons

from gdlab import GD, MLP, Adam, Momentum, RMSProp, fit

F64 = torch.float64

# --- the elongated bowl: f(w) = ½(w₁² + 100·w₂²), curvatures 1 and 100 -------------------------

BOWL_START = (-2.0, 0.5)  # far out along the flat direction, as in the lecture's picture


def bowl(w):
    return 0.5 * (w[0] ** 2 + 100 * w[1] ** 2)


def run_bowl(optimizer_cls, steps, **kwargs):
    w = torch.nn.Parameter(torch.tensor(BOWL_START, dtype=F64))
    optimizer = optimizer_cls([w], **kwargs)
    trace = [w.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        bowl(w).backward()
        optimizer.step()
        trace.append(w.detach().clone())
    return bowl(w).item(), torch.stack(trace)


F0 = bowl(torch.tensor(BOWL_START)).item()

# (optimizer, hyperparameters, steps): each must end below 1e-6 of the starting cost.
# GD must keep α < 2/100 (the steep curvature); Momentum tolerates a larger α; RMSProp with a
# long memory (β₂ = 0.999) shrinks its steps as the gradient shrinks (with β₂ = 0.9 and a
# constant α it ends in a small limit cycle of amplitude ≈ α instead).
BOWL_CASES = {
    "GD": (GD, {"lr": 0.019}, 400),
    "Momentum": (Momentum, {"lr": 0.1, "beta": 0.9}, 200),
    "RMSProp": (RMSProp, {"lr": 0.01, "beta2": 0.999}, 200),
    "Adam": (Adam, {"lr": 0.05}, 300),
}


@pytest.mark.parametrize("name", BOWL_CASES)
def test_bowl(name):
    cls, kwargs, steps = BOWL_CASES[name]
    cost, _ = run_bowl(cls, steps, **kwargs)
    assert cost < 1e-6 * F0


def test_bowl_gd_diverges_above_two_over_the_steep_curvature():
    # the premise of the comparison below: GD's α is capped by the steep direction
    cost, _ = run_bowl(GD, 50, lr=0.021)
    assert cost > F0


# --- the lecture's claim: at the same α, Momentum and RMSProp beat GD ----------------------------

SAME_LR = 0.0199  # GD: w₂ := (1 - 100α)·w₂ = -0.99·w₂ — it oscillates and barely shrinks
SAME_STEPS = 200


def test_gd_oscillates_in_the_steep_direction_at_this_lr():
    _, trace = run_bowl(GD, SAME_STEPS, lr=SAME_LR)
    w2 = trace[:, 1]
    assert (w2[1:] * w2[:-1] < 0).all()  # the sign of w₂ flips at every step
    assert abs(w2[-1].item()) > 0.05 * BOWL_START[1]  # after 200 steps it is still large


def test_momentum_and_rmsprop_beat_gd_at_the_same_lr():
    gd, _ = run_bowl(GD, SAME_STEPS, lr=SAME_LR)
    momentum, trace = run_bowl(Momentum, SAME_STEPS, lr=SAME_LR)  # form "ewa", β = 0.9
    rmsprop, _ = run_bowl(RMSProp, SAME_STEPS, lr=SAME_LR)  # β₂ = 0.9, ε = 1e-8
    assert momentum < gd / 100
    assert rmsprop < gd / 10
    # momentum damps the oscillation: w₂ no longer flips sign at every step
    w2 = trace[:, 1]
    assert (w2[1:] * w2[:-1] < 0).float().mean() < 0.5


# --- Rosenbrock: f(x, y) = (1-x)² + 100·(y-x²)², minimum 0 at (1, 1) -----------------------------

ROSENBROCK_START = (-1.2, 1.0)  # the classic start, on the far side of the curved valley


def rosenbrock(w):
    return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2


def rosenbrock_grad(w):
    """∇f by hand (thousands of steps: a tenth of the time autograd takes)."""
    x, y = w.detach().tolist()
    return torch.tensor([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)], dtype=F64)


def test_rosenbrock_gradient_matches_autograd():
    for point in [(-1.2, 1.0), (0.3, -0.7), (1.0, 1.0), (2.0, 3.5)]:
        w = torch.tensor(point, dtype=F64, requires_grad=True)
        rosenbrock(w).backward()
        torch.testing.assert_close(rosenbrock_grad(w), w.grad, rtol=1e-14, atol=1e-12)


# (optimizer, hyperparameters, steps): each must end within 1e-2 of the minimum (1, 1), in
# distance (and so also in cost). GD's α is capped near 2/1002 by the valley's steep wall, so it
# needs thousands of steps; RMSProp with β₂ = 0.9 ends hovering across the valley at ≈ α.
ROSENBROCK_CASES = {
    "GD": (GD, {"lr": 1.9e-3}, 7000),
    "Momentum": (Momentum, {"lr": 1e-2, "beta": 0.9}, 2000),
    "RMSProp": (RMSProp, {"lr": 3e-3}, 6000),
    "Adam": (Adam, {"lr": 2e-2}, 3000),
}


@pytest.mark.parametrize("name", ROSENBROCK_CASES)
def test_rosenbrock(name):
    cls, kwargs, steps = ROSENBROCK_CASES[name]
    w = torch.nn.Parameter(torch.tensor(ROSENBROCK_START, dtype=F64))
    optimizer = cls([w], **kwargs)
    for _ in range(steps):
        w.grad = rosenbrock_grad(w)
        optimizer.step()
    distance = math.dist(w.tolist(), (1.0, 1.0))
    assert distance < 1e-2
    assert rosenbrock(w).item() < 1e-2


# --- a small network on two moons ----------------------------------------------------------------

# (optimizer, α): 100 epochs of mini-batches of 32. A linear classifier gets accuracy 0.845 and
# cost 0.30 here, so the thresholds below need the hidden layers.
MOONS_CASES = {
    "GD": (GD, 0.5),
    "Momentum": (Momentum, 0.5),
    "RMSProp": (RMSProp, 0.005),
    "Adam": (Adam, 0.01),
}
MOONS_MAX_COST = 0.15
MOONS_MIN_ACCURACY = 0.95


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(n_samples=200, noise=0.2, random_state=0)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


@pytest.mark.parametrize("name", MOONS_CASES)
def test_moons(moons, name):
    cls, lr = MOONS_CASES[name]
    X, Y = moons
    torch.manual_seed(0)
    model = MLP([2, 16, 16, 1])
    history = fit(model, X, Y, cls(model.parameters(), lr=lr), epochs=100, batch_size=32, seed=0,
                  progress=False)
    with torch.no_grad():
        z = model.logits(X).squeeze(1)
    cost = F.binary_cross_entropy_with_logits(z, Y).item()
    accuracy = ((z > 0).float() == Y).float().mean().item()
    assert cost < MOONS_MAX_COST
    assert accuracy >= MOONS_MIN_ACCURACY
    assert history.epoch_costs[-1] < history.epoch_costs[0] / 3
