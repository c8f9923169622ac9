"""gdlab.lab.figures: the lecture's six figures, each checked on its matplotlib objects (axes,
lines, the numbers they draw) and on the runs behind it."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from matplotlib.figure import Figure

import gdlab
import gdlab.lab.landscape
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


def test_minibatch_cost_title_is_measured(cost_runs):
    m = figures.minibatch_cost_measures(cost_runs)
    J_mini = np.asarray(cost_runs[1].history.costs)
    assert m.steps == 119 and m.batch_rises == 0 and m.minibatch_rises > 20
    assert m.minibatch_rises == np.sum(np.diff(J_mini) > 0)
    assert m.window == 50 and m.minibatch_first == pytest.approx(J_mini[:50].mean(), rel=1e-12)
    assert m.minibatch_last < 0.8 * m.minibatch_first
    title = figures.minibatch_cost(cost_runs).get_suptitle()
    assert "batch GD's cost falls at every step" in title
    assert (f"mini-batch GD's rises at {m.minibatch_rises} of 119 steps, yet its mean falls "
            f"from {m.minibatch_first:.3f} (first 50) to {m.minibatch_last:.3f} (last 50)"
            ) in title


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


def test_paths_title_is_measured(paths):
    labels = ("batch GD (size m = 426)", "mini-batch GD (size 16)", "SGD (size 1)")
    spreads = [figures.spread(paths.paths[label][0], paths.problem.minimum) for label in labels]
    assert spreads[0] < spreads[1] < spreads[2]
    assert spreads[0] == pytest.approx(np.linalg.norm(
        paths.paths[labels[0]][0][-30:] - paths.problem.minimum, axis=1).mean(), rel=1e-12)
    title = figures.batch_sgd_paths(paths).get_suptitle()
    assert "batch GD lowers J at every step" in title
    assert (f"batch GD {spreads[0]:.3f} < mini-batch GD {spreads[1]:.3f} < "
            f"SGD {spreads[2]:.3f}") in title


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


def test_smoothness_by_hand():
    theta = np.array([0.0, 2.0, 0.0, 2.0, 0.0])
    raw = figures.smoothness(theta, 0.0)  # β = 0: the average is the data itself
    assert raw.change == 2.0 and raw.lag == 0
    assert figures.smoothness(np.sin(np.arange(400) / 20), 0.95).lag > 5  # EWA lags a wave


def test_ewa_title_is_measured(temps):
    measured = {beta: figures.smoothness(temps.theta, beta) for beta in (0.5, 0.9, 0.98)}
    assert measured[0.5].change > 3 * measured[0.9].change > 6 * measured[0.98].change
    assert measured[0.5].lag <= measured[0.9].lag < measured[0.98].lag <= 50
    title = figures.ewa_temperatures(temps).axes[0].get_title()
    assert "the larger β, the smoother and the later" in title and "daily high" in title
    for beta, m in measured.items():
        assert f"β = {beta:g}: {m.change:.2f} °C a day, lag {m.lag} days" in title


def test_bias_correction_title_is_measured(temps):
    title = figures.bias_correction(temps, days=56).axes[0].get_title()
    assert "on day 1, v₁ = 0.26 °C and v̂₁ = 12.8 °C for θ₁ = 12.8 °C" in title
    # 1 - v_t/v̂_t = β^t: 0.98^56 = 0.32
    assert f"on day 56 $v_t$ is still {0.98**56:.0%} below" in title and "32%" in title


# ---------------------------------------------------------------------------- 5


@pytest.fixture(scope="module")
def oscillation():
    return figures.oscillation_data()


def test_oscillation_conditions(oscillation):
    """Same α for GD and Momentum, 99 % of GD's stability limit 2/λ_max = 1; β = 0.9."""
    gd_row, adaptive_row = oscillation.rows
    assert list(gd_row.paths) == ["gd", "momentum"] and gd_row.lr == 0.99
    assert oscillation.limit == pytest.approx(1.0, rel=1e-12) and gd_row.lr < oscillation.limit
    assert gd_row.hyper["momentum"] == {"beta": 0.9}
    assert list(adaptive_row.paths) == ["rmsprop", "adam"] and adaptive_row.lr == 0.1
    for row in oscillation.rows:
        for name, path in row.paths.items():
            assert path.shape == (61, 2)
            np.testing.assert_array_equal(path, gdlab.lab.landscape.trajectory(
                "elongated", name, row.lr, 60, **row.hyper[name]))


def test_oscillation_claims_are_measured(oscillation):
    s = {name: swing for row in oscillation.rows for name, swing in row.swings.items()}
    # GD zig-zags: it crosses the valley's floor at every step, still 0.6 wide after 30 steps
    assert s["gd"].crossings == 60 and s["gd"].amplitude > 0.6
    # Momentum, same α: a slower swing (few crossings) that is 3× smaller after 30 steps ...
    assert s["momentum"].crossings < 12 and s["momentum"].amplitude < s["gd"].amplitude / 3
    # ... and no faster along the valley: the same distance to within 1 %
    assert s["momentum"].distance == pytest.approx(s["gd"].distance, rel=0.01)
    # RMSProp flattens the zig-zag; Adam, with Momentum's first moment, still swings
    assert s["rmsprop"].amplitude < 1e-3 * s["gd"].amplitude
    assert s["adam"].amplitude > 100 * s["rmsprop"].amplitude
    assert s["adam"].amplitude < s["gd"].amplitude / 3


def test_oscillation_title_is_written_from_the_measurements(oscillation):
    s = {name: swing for row in oscillation.rows for name, swing in row.swings.items()}
    title = figures.oscillation_title(oscillation)
    ratio = s["gd"].amplitude / s["momentum"].amplitude
    assert "GD oscillates: $w_2$ changes sign at 60 of GD's 60 steps" in title
    assert f"at {s['momentum'].crossings} of Momentum's" in title
    assert "the same α = 0.99 (GD's limit: α < 1), Momentum (β = 0.9)" in title
    assert f"swings {ratio:.2g}× less than GD across the valley after 30 steps" in title
    assert (f"goes as far along it ({s['momentum'].distance:.2f} vs "
            f"{s['gd'].distance:.2f})") in title
    assert "RMSProp swings over 100× less than GD" in title
    assert f"Adam {s['gd'].amplitude / s['adam'].amplitude:.2g}× less" in title
    # the words follow the numbers: a Momentum that swung more would be said to
    worse = dataclasses.replace(s["momentum"], amplitude=2 * s["gd"].amplitude)
    oscillation.rows[0].swings["momentum"] = worse
    try:
        assert "Momentum (β = 0.9) swings 2× more than GD" in figures.oscillation_title(
            oscillation)
    finally:
        oscillation.rows[0].swings["momentum"] = s["momentum"]


def test_oscillation_figure(oscillation):
    fig = figures.oscillation(oscillation)
    assert len(fig.axes) == 6
    assert fig.get_suptitle() == figures.oscillation_title(oscillation)
    axes = np.array(fig.axes).reshape(2, 3)
    for (ax_path, ax_w2, ax_w1), row in zip(axes, oscillation.rows, strict=True):
        # one legend per path panel, with that panel's α (and β for Momentum)
        legend = [t.get_text() for t in ax_path.get_legend().get_texts()]
        for name in row.paths:
            label = f"{gdlab.lab.landscape.NAMES[name]}, α = {row.lr:g}"
            assert any(text.startswith(label) for text in legend), (label, legend)
        assert f"α = {row.lr:g}" in ax_path.get_title()
        lines = _lines(ax_w2)
        for name, path in row.paths.items():
            label = gdlab.lab.landscape.NAMES[name]
            np.testing.assert_array_equal(lines[label].get_ydata(), path[:, 1])
            np.testing.assert_array_equal(_lines(ax_w1)[label].get_ydata(), path[:, 0])
            texts = " ".join(t.get_text() for t in ax_w2.texts + ax_w1.texts)
            assert f"{label}: {row.swings[name].amplitude:.3g}" in texts
            assert f"{label}: {row.swings[name].distance:.3g}" in texts
        assert ax_w2.get_ylabel() == "$w_2$" and ax_w1.get_ylabel() == "$w_1$"
    assert "Momentum, α = 0.99, β = 0.9" in [
        t.get_text() for t in axes[0, 0].get_legend().get_texts()]


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


def test_decay_title_is_measured(decay):
    last = decay.steps_per_epoch
    constant, decayed = (figures.spread(path, decay.problem.minimum, last)
                         for path in (decay.constant, decay.decayed))
    title = figures.learning_rate_decay(decay).get_suptitle()
    assert f"decay settles {constant / decayed:.2g}× closer" in title
    assert f"{decayed:.3f} with decay, {constant:.3f} with constant α" in title


# ---------------------------------------------------------------------------- 7


@pytest.fixture(scope="module")
def timing():
    """A small setting of figure 7 (a fraction of a second): no assertion is on its times."""
    return figures.batch_timing_data(sizes=(63, 64, 65, 127, 128), examples=128, repeats=2)


def test_batch_timing_structure(timing):
    assert timing.sizes == (63, 64, 65, 127, 128) and timing.repeats == 2
    assert list(timing.seconds) == ["MLP [2, 16, 8, 1], moons", "CNN (2 conv layers), 8×8 digits"]
    for table in timing.seconds.values():
        assert table.shape == (2, 5) and np.all(table > 0) and np.all(np.isfinite(table))
    assert "1 torch thread" in timing.machine
    assert figures.BATCH_SIZES == (48, 63, 64, 65, 96, 100, 127, 128, 129, 192, 256, 384,
                                   500, 512)
    # the CNN is a CNN on 1×8×8 images, and fits the digits' ten classes
    cnn = figures.digits_cnn()
    assert any(isinstance(m, gdlab.lab.figures.nn.Conv2d) for m in cnn.modules())
    assert cnn(gdlab.lab.figures.torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def _fake_timing(t64, noise=0.0):
    """Seconds per example where 63 and 65 take 1 µs and 64 takes ``t64`` µs."""
    row = np.array([1.0, t64, 1.0]) * 1e-6
    table = np.stack([row * (1 - noise), row * (1 + noise)])
    return figures.BatchTiming((63, 64, 65), {"MLP [2, 16, 8, 1], moons": table}, 2, "a CPU")


@pytest.mark.parametrize(("t64", "noise", "verdict"), [
    (0.5, 0.0, "yes, faster"), (1.02, 0.0, "no difference beyond the noise"),
    (2.0, 0.0, "no, slower"), (0.7, 0.4, "no difference beyond the noise")])
def test_batch_timing_verdict_follows_the_numbers(t64, noise, verdict):
    timing = _fake_timing(t64, noise)
    ratios = figures.powers_of_two(timing, "MLP [2, 16, 8, 1], moons")
    assert ratios == {64: pytest.approx(t64, rel=1e-12)}
    assert timing.spread("MLP [2, 16, 8, 1], moons") == pytest.approx(2 * noise, abs=1e-12)
    title = figures.batch_timing_title(timing)
    assert title.startswith(f"Do powers of two run faster? MLP: {verdict}\n")
    assert "median of 2 interleaved runs on this machine: a CPU" in title


def test_batch_timing_figure_titles_are_its_medians(timing):
    fig = figures.batch_timing(timing)
    assert fig.get_suptitle() == figures.batch_timing_title(timing)
    assert len(fig.axes) == 2
    for ax, label in zip(fig.axes, timing.seconds, strict=True):
        ratios = figures.powers_of_two(timing, label)
        assert set(ratios) == {64, 128}
        assert ratios[64] == pytest.approx(timing.medians(label)[1] / np.mean(
            timing.medians(label)[[0, 2]]), rel=1e-12)
        verdict, detail = figures.batch_timing_verdict(ratios, timing.spread(label))
        assert ax.get_title() == f"{label}: {verdict}\n{detail}"
        assert f"64: {ratios[64]:.2f}×, 128: {ratios[128]:.2f}×" in detail
        median = _lines(ax)["median of 2 runs (points: each run)"]
        np.testing.assert_allclose(median.get_ydata(), 1e6 * timing.medians(label))
        assert [t.get_text() for t in ax.get_xticklabels()] == ["63", "64", "65", "127", "128"]


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
