"""gdlab.lab.figures: the lecture's six figures, each checked on its matplotlib objects (axes,
lines, the numbers they draw) and on the runs behind it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.figure import Figure

import gdlab
from gdlab import schedules
from gdlab.lab import figures


def _lines(ax) -> dict:
    return {line.get_label(): line for line in ax.lines}


# ---------------------------------------------------------------------------- 1


@pytest.fixture(scope="module")
def cost_runs():
    return figures.minibatch_cost_runs(iterations=120)


def test_batch_cost_falls_every_step_minibatch_is_noisy(cost_runs):
    batch, mini = cost_runs
    J_batch = np.asarray(batch.history.costs)
    J_mini = np.asarray(mini.history.costs)
    assert len(J_batch) == len(J_mini) == 120
    assert np.all(np.diff(J_batch) < 0), "batch GD's cost must fall at every iteration"
    assert np.sum(np.diff(J_mini) > 0) > 20, "mini-batch GD's cost should be noisy"
    assert J_mini[-20:].mean() < 0.8 * J_mini[:20].mean(), "…but trend down"
    assert batch.config["batch_size"] == batch.config["m"] and mini.config["batch_size"] == 64


def test_minibatch_cost_figure(cost_runs):
    fig = figures.minibatch_cost(cost_runs, beta=0.9)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    left, right = fig.axes
    assert "batch GD" in left.get_title() and "mini-batch GD" in right.get_title()
    assert left.get_ylabel() == "cost J" and "iteration t" in right.get_xlabel()
    (batch_line,) = left.lines
    np.testing.assert_array_equal(batch_line.get_ydata(), cost_runs[0].history.costs)
    raw, smooth = right.lines
    np.testing.assert_array_equal(raw.get_ydata(), cost_runs[1].history.costs)
    np.testing.assert_array_equal(smooth.get_ydata(), gdlab.ewa(
        np.asarray(cost_runs[1].history.costs), 0.9, bias_correction=True))
    assert left.get_shared_y_axes().joined(left, right)


# ---------------------------------------------------------------------------- 2


@pytest.fixture(scope="module")
def paths():
    return figures.batch_sgd_paths_data()


def test_batch_steady_sgd_wanders_minibatch_between(paths):
    problem = paths.problem
    batch, mini, sgd = (paths.paths[label][0] for label in (
        f"batch GD (size m = {len(problem.X)})", "mini-batch GD (size 16)", "SGD (size 1)"))
    costs = problem.cost(batch[:, 0], batch[:, 1])
    assert np.all(np.diff(costs) < 0), "batch GD lowers J at every step"

    def spread(path):  # how far the last 30 steps stay from the minimum, on average
        return np.linalg.norm(path[-30:] - problem.minimum, axis=1).mean()

    assert spread(batch) < 0.1 and np.linalg.norm(batch[-1] - problem.minimum) < 0.02
    assert spread(batch) < spread(mini) < spread(sgd)
    assert spread(sgd) > 0.3, "SGD keeps wandering around the minimum"
    assert len(sgd) == 101 and len(batch) == len(mini) == 51
    np.testing.assert_array_equal(batch[0], figures.PATH_START)
    np.testing.assert_array_equal(sgd[0], figures.PATH_START)


def test_path_minimum_is_stationary(paths):
    problem = paths.problem
    W = gdlab.losses.torch.tensor(problem.minimum, requires_grad=True)
    J = gdlab.losses.binary_cross_entropy(problem.X @ W, problem.Y)
    (dW,) = gdlab.losses.torch.autograd.grad(J, W)
    assert np.abs(dW.numpy()).max() < 1e-9
    grid = problem.cost(np.array([problem.minimum[0]]), np.array([problem.minimum[1]]))
    assert grid[0] == pytest.approx(float(J.detach()), rel=1e-12)


def test_paths_figure(paths):
    fig = figures.batch_sgd_paths(paths)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "$w_1$ (mean texture)"
    assert ax.get_ylabel() == "$w_2$ (mean smoothness)"
    assert ax.collections, "contours"
    lines = _lines(ax)
    for label, (path, color, _) in paths.paths.items():
        line = lines[f"{label}: {len(path) - 1} steps"]
        np.testing.assert_array_equal(line.get_xydata(), path)
        assert line.get_color() == color
    assert "minimum W*" in lines and "start" in lines


# ---------------------------------------------------------------------------- 3, 4


@pytest.fixture(scope="module")
def temps():
    return figures.seattle_temperatures()


def test_temperatures_are_the_shipped_seattle_data(temps):
    assert len(temps.theta) == 366 and temps.dates[0] == "2012-01-01"
    assert temps.theta[0] == 12.8 and temps.theta[1] == 10.6  # the CSV's first two highs
    with pytest.raises(ValueError, match="covers 2012 to 2015"):
        figures.seattle_temperatures(1999)


def test_ewa_figure(temps):
    fig = figures.ewa_temperatures(temps)
    (ax,) = fig.axes
    data, *averages = ax.lines
    np.testing.assert_array_equal(data.get_ydata(), temps.theta)
    assert data.get_linestyle() == "None"  # points
    for line, beta in zip(averages, (0.9, 0.98, 0.5), strict=True):
        np.testing.assert_array_equal(line.get_ydata(),
                                      gdlab.ewa(temps.theta, beta, bias_correction=True))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    for window in ("1/(1−β) = 10 days", "1/(1−β) = 50 days", "1/(1−β) = 2 days"):
        assert any(window in text for text in legend), (window, legend)
    assert "day t" in ax.get_xlabel() and r"$\theta_t$" in ax.get_ylabel()
    # β = 0.98 is the smoothest, 0.5 the noisiest
    roughness = [np.abs(np.diff(line.get_ydata(), 2)).mean() for line in averages]
    assert roughness[1] < roughness[0] < roughness[2]


def test_bias_correction_figure(temps):
    fig = figures.bias_correction(temps, days=56)
    (ax,) = fig.axes
    data, raw, corrected = ax.lines
    assert len(data.get_ydata()) == 56
    assert raw.get_ydata()[0] == pytest.approx(0.02 * 12.8)  # v_1 = (1-β)·θ_1, near 0
    assert corrected.get_ydata()[0] == pytest.approx(12.8)  # v̂_1 = θ_1
    np.testing.assert_array_equal(raw.get_ydata(), gdlab.ewa(temps.theta[:56], 0.98))
    np.testing.assert_array_equal(corrected.get_ydata(),
                                  gdlab.ewa(temps.theta[:56], 0.98, bias_correction=True))
    assert np.all(raw.get_ydata() < corrected.get_ydata())
    # the corrected average stays within the data's range; the uncorrected one is far below
    assert corrected.get_ydata().min() >= temps.theta[:56].min()
    assert raw.get_ydata()[:28].max() < 0.5 * temps.theta[:28].mean()
    assert "8 weeks" in ax.get_title()


# ---------------------------------------------------------------------------- 5


def test_oscillation_figure():
    from gdlab.lab import landscape

    paths = {name: landscape.trajectories(name, steps=30) for name in ("elongated",
                                                                       "rosenbrock")}
    fig = figures.oscillation(paths)
    assert len(fig.axes) == 2
    for ax, name in zip(fig.axes, ("elongated", "rosenbrock"), strict=True):
        assert ax.get_title().startswith(name) and ax.get_xlabel() == "$w_1$"
        labels = [line.get_label() for line in ax.lines]
        for optimizer in ("GD", "Momentum", "RMSProp", "Adam"):
            assert any(label.startswith(optimizer + ",") for label in labels), optimizer
    assert fig.axes[-1].get_legend() is not None


# ---------------------------------------------------------------------------- 6


@pytest.fixture(scope="module")
def decay():
    return figures.learning_rate_decay_data(epochs=6, schedule_epochs=40)


def test_decay_settles_constant_keeps_circling(decay):
    last = decay.steps_per_epoch

    def spread(path):
        return np.linalg.norm(path[-last:] - decay.problem.minimum, axis=1).mean()

    assert spread(decay.decayed) < 0.5 * spread(decay.constant)
    # the same start and the same first mini-batch (epoch 1 trains at α₀/(1 + decay_rate))
    np.testing.assert_array_equal(decay.constant[0], decay.decayed[0])
    assert len(decay.constant) == len(decay.decayed) == 6 * decay.steps_per_epoch + 1


def test_schedule_curves_are_gdlab_schedules(decay):
    curves = decay.schedule_curves
    assert len(curves) == 6
    inverse = curves["inverse_time, decay_rate = 1"]
    np.testing.assert_allclose(inverse[:4], [0.1, 0.2 / 3, 0.05, 0.04])  # the lecture's table
    np.testing.assert_allclose(curves["exponential, base = 0.95"],
                               [schedules.exponential(0.2)(e) for e in range(1, 41)])
    plateau = next(v for k, v in curves.items() if k.startswith("plateau"))
    assert len(plateau) == 40 and plateau[0] == 0.2
    assert np.all(np.diff(plateau) <= 0) and plateau[-1] < 0.2


def test_decay_figure(decay):
    fig = figures.learning_rate_decay(decay)
    const_ax, decay_ax, lr_ax = fig.axes
    assert const_ax.get_title() == "constant α = 1"
    assert re.match(r"α = α₀/\(1 \+ 1·epoch_num\), α₀ = 1", decay_ax.get_title())
    first = decay.steps_per_epoch
    np.testing.assert_array_equal(_lines(const_ax)["W, epochs 2–6"].get_xydata(),
                                  decay.constant[first:])
    np.testing.assert_array_equal(_lines(decay_ax)["W, epochs 2–6"].get_xydata(),
                                  decay.decayed[first:])
    assert const_ax.get_xlim() == decay_ax.get_xlim()  # the same window
    assert lr_ax.get_xlabel() == "epoch_num" and lr_ax.get_ylabel() == "learning rate α"
    assert [line.get_label() for line in lr_ax.lines] == list(decay.schedule_curves)


# ---------------------------------------------------------------------------- all


def test_figure_names():
    assert figures.figure_names([]) == list(figures.FIGURES)
    assert figures.figure_names(["1", "ewa", "EWA", "6"]) == ["minibatch-cost", "ewa", "decay"]
    with pytest.raises(ValueError, match="unknown figure 'seven'; allowed: 1 minibatch-cost"):
        figures.figure_names(["seven"])


def test_write_figures_writes_pngs_and_report(tmp_path):
    figs = figures.write_figures(tmp_path, ["bias-correction", "3"])
    assert list(figs) == ["bias-correction", "ewa"]
    for name in figs:
        data = (tmp_path / figures.FIGURES[name].file).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
    page = (tmp_path / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2
    assert "Figure 4. Bias correction." in page and "Figure 3." in page
    assert 'id="explore"' not in page  # no mini-batch runs among these figures


def test_missing_vega_datasets_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(figures.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="need the vega_datasets package"):
        figures.seattle_temperatures()
