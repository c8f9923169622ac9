"""gdlab.lab.landscape: the test functions, optimizer paths on them, the picture and the GIF."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from gdlab.lab import landscape
from gdlab.report.style import optimizer_color

LABELS = {"gd": "GD", "momentum": "Momentum", "rmsprop": "RMSProp", "adam": "Adam"}


@pytest.fixture(scope="module")
def elongated_paths():
    return landscape.trajectories("elongated")


@pytest.mark.parametrize("name", list(landscape.LANDSCAPES))
def test_minimum_is_a_stationary_point_with_zero_cost(name):
    land = landscape.LANDSCAPES[name]
    W = torch.tensor(land.minimum, dtype=torch.float64, requires_grad=True)
    J = land.J(W[0], W[1])
    (dW,) = torch.autograd.grad(J, W)
    assert float(J.detach()) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(dW.numpy(), 0.0, atol=1e-10)
    # the same formula on a numpy grid (for the contours) gives the same numbers
    grid = np.array([[land.start[0], land.minimum[0]]]), np.array([[land.start[1],
                                                                     land.minimum[1]]])
    start = land.J(torch.tensor(land.start[0]), torch.tensor(land.start[1]))
    np.testing.assert_allclose(land.J(*grid), [[float(start), 0.0]], atol=1e-12)


def test_first_gd_step_by_hand():
    """J = 0.01·w₁² + w₂², dW = (0.02·w₁, 2·w₂); from (-9, 1.2) with α = 0.9:
    W = (-9 + 0.9·0.18, 1.2 - 0.9·2.4) = (-8.838, -0.96)."""
    path = landscape.trajectory("elongated", "gd", lr=0.9, steps=1)
    np.testing.assert_allclose(path, [[-9.0, 1.2], [-8.838, -0.96]], rtol=1e-12)


def test_first_adam_step_moves_each_weight_by_alpha():
    """v̂₁ = dW and Ŝ₁ = dW², so Adam's first step is -α·sign(dW) (up to ε)."""
    path = landscape.trajectory("rosenbrock", "adam", lr=0.1, steps=1, start=(-1.5, 2.0))
    np.testing.assert_allclose(np.abs(path[1] - path[0]), [0.1, 0.1], rtol=1e-6)


def test_gd_zigzags_the_others_head_for_the_minimum(elongated_paths):
    """The lecture's picture: GD oscillates across the narrow direction (w₂ changes sign at
    every one of its first steps), Momentum, RMSProp and Adam travel far less up and down."""
    gd = elongated_paths["gd"]
    assert np.all(np.sign(gd[1:12, 1]) == -np.sign(gd[:11, 1]))
    vertical = {name: np.abs(np.diff(p[:, 1])).sum() for name, p in elongated_paths.items()}
    start_height = abs(gd[0, 1])
    assert vertical["gd"] > 7 * start_height
    for name in ("momentum", "rmsprop", "adam"):
        assert vertical[name] < 0.7 * vertical["gd"], name
    land = landscape.LANDSCAPES["elongated"]
    distance = {name: np.linalg.norm(p[-1] - land.minimum) for name, p in elongated_paths.items()}
    assert distance["momentum"] < distance["gd"]
    assert distance["rmsprop"] < 0.2 and distance["adam"] < 0.2
    assert all(len(p) == land.steps + 1 for p in elongated_paths.values())


def test_momentum_and_adam_reach_rosenbrocks_minimum():
    land = landscape.LANDSCAPES["rosenbrock"]
    paths = landscape.trajectories(land, ("gd", "momentum", "adam"))
    for name in ("momentum", "adam"):
        assert np.linalg.norm(paths[name][-1] - land.minimum) < 0.25, name
    assert land.J(*paths["gd"][-1]) > 10 * land.J(*paths["adam"][-1])


def test_a_diverging_path_ends_where_it_diverges():
    path = landscape.trajectory("elongated", "gd", lr=3.0, steps=200)
    assert len(path) < 200 and np.all(np.isfinite(path))


def test_curvatures_and_gds_stability_limit():
    """The bowl's Hessian is diag(0.02, 2); Rosenbrock's at (1, 1) is [[802, -400], [-400, 200]]."""
    np.testing.assert_allclose(landscape.curvatures("elongated"), [0.02, 2.0], rtol=1e-12)
    assert landscape.gd_stability_limit("elongated") == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(landscape.curvatures("rosenbrock"),
                               np.linalg.eigvalsh([[802.0, -400.0], [-400.0, 200.0]]),
                               rtol=1e-12)
    # the limit is real: GD just below it converges, just above it diverges along w₂
    below = landscape.trajectory("elongated", "gd", lr=0.99, steps=300)
    above = landscape.trajectory("elongated", "gd", lr=1.01, steps=300)
    assert abs(below[-1, 1]) < 0.01 and abs(above[-1, 1]) > abs(above[0, 1])


def test_momentum_tolerates_a_larger_alpha_than_gd():
    """Heavy ball with β = 0.9 (form "ewa") is stable along w₂ while α·(1-β)·2 < 2(1+β), i.e.
    α < 19: with α = 5 it settles where GD (limit 1) diverges, and goes further along w₁."""
    momentum = landscape.trajectory("elongated", "momentum", lr=5.0, steps=60, beta=0.9)
    gd = landscape.trajectory("elongated", "gd", lr=5.0, steps=60)
    assert len(momentum) == 61 and abs(momentum[-1, 1]) < 0.1
    assert len(gd) < 61  # diverged and cut
    gd_at_limit = landscape.trajectory("elongated", "gd", lr=0.99, steps=60)
    assert momentum[-1, 0] - momentum[0, 0] > gd_at_limit[-1, 0] - gd_at_limit[0, 0]


def test_swing_by_hand():
    path = np.array([[-9.0, 1.0], [-8.0, -0.5], [-7.5, 0.25], [-7.0, 0.1], [-6.0, -0.05]])
    swing = landscape.swing(path, k=2)
    assert swing == landscape.Swing(amplitude=0.25, distance=3.0, crossings=3, k=2, N=4)
    assert landscape.swing(path, k=0, minimum=(0.0, 1.0)).amplitude == 1.5
    with pytest.raises(ValueError, match=r"path must have shape \(N \+ 1, 2\) with N >= k = 5"):
        landscape.swing(path, k=5)


def test_bad_input_names_what_is_allowed():
    with pytest.raises(ValueError, match="unknown function 'himmelblau'; allowed: elongated, "
                       "rosenbrock, beale"):
        landscape.trajectory("himmelblau", "gd")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        landscape.trajectory("elongated", "lbfgs")
    with pytest.raises(ValueError, match="start must be two finite numbers"):
        landscape.trajectory("elongated", "gd", start=(1.0, float("nan")))
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        landscape.trajectory("elongated", "gd", lr=-1.0)


def test_figure_draws_each_path_over_the_contours(elongated_paths):
    land = landscape.LANDSCAPES["elongated"]
    fig = landscape.landscape_figure("elongated", elongated_paths, land.lr)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xlabel() == "$w_1$" and ax.get_ylabel() == "$w_2$"
    assert ax.collections, "no contours"
    lines = {line.get_label(): line for line in ax.lines}
    for name, path in elongated_paths.items():
        line = lines[f"{LABELS[name]}, α = {land.lr[name]:g}"]
        np.testing.assert_array_equal(line.get_xydata(), path)
        assert line.get_color() == optimizer_color(name)
    assert "minimum" in lines and "start" in lines
    assert [t.get_text() for t in ax.get_legend().get_texts()][:1] == ["minimum"]


def test_gif_is_animated(tmp_path):
    paths = landscape.trajectories("elongated", ("gd", "adam"), steps=5)
    out = landscape.save_gif("elongated", paths, tmp_path / "bowl.gif")
    with Image.open(out) as image:
        assert image.format == "GIF" and image.n_frames == 6
        assert image.size[0] > 300
    assert [p.name for p in tmp_path.iterdir()] == ["bowl.gif"]  # written whole, atomically
