"""The figure commands: gdlab figures, smooth, landscape and schedule. Each must write a real
image with the expected axes and series (checked on the matplotlib figure it saved), print
what it computed, and answer bad input with one line on stderr and exit status 2."""

from __future__ import annotations

import csv
import functools
import io
import json

import numpy as np
import pytest
from PIL import Image

import gdlab
from gdlab.cli import main
from gdlab.lab import figures


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def saved(monkeypatch):
    """The figures the commands save, by path (the files are still written)."""
    figs = {}
    real_save = figures.save_figure

    def save_figure(fig, path, *args, **kwargs):
        figs[str(path)] = fig
        return real_save(fig, path, *args, **kwargs)

    monkeypatch.setattr(figures, "save_figure", save_figure)
    return figs


def _png(path, min_width=400):
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= min_width
    assert path.stat().st_size > 10_000


def _error(capsys, *argv) -> str:
    status, out, err = run(capsys, *argv)
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------- figures


def test_figures_writes_all_eight_and_the_report(tmp_path, capsys, monkeypatch):
    drawn = {}
    real_png = figures.png_bytes

    def png_bytes(fig, *args, **kwargs):
        drawn[fig.get_suptitle() or fig.axes[0].get_title()] = fig
        return real_png(fig, *args, **kwargs)

    monkeypatch.setattr(figures, "png_bytes", png_bytes)
    # figure 7 times training steps; the test draws it from a small setting
    monkeypatch.setattr(figures, "batch_timing_data", functools.partial(
        figures.batch_timing_data, sizes=(63, 64, 65), examples=64, repeats=2))
    out = tmp_path / "figs"
    status, stdout, err = run(capsys, "figures", "--out", out)
    assert status == 0, err
    for spec in figures.FIGURES.values():
        _png(out / spec.file)
        assert f"figure {spec.number}: {out / spec.file}" in stdout
    assert json.loads((out / "config.json").read_text())["command"] == "figures"
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 8 and 'id="explore"' in page
    # the eight figures, by their matplotlib objects (figure 5: paths and traces, 2 × 3)
    panels = sorted(len(fig.axes) for fig in drawn.values())
    assert len(drawn) == 8 and panels == [1, 1, 1, 1, 2, 2, 3, 6]
    titles = " | ".join(drawn)
    for words in ("Batch vs mini-batch", "stochastic gradient descent", "daily high",
                  "Bias correction", "oscillates", "Learning-rate decay",
                  "Do powers of two run faster?", "Adam with L2 decays the flat coordinates"):
        assert words in titles, words
    # a second run into the same (gdlab) folder is allowed; a foreign folder is not
    assert run(capsys, "figures", "bias-correction", "--out", out)[0] == 0
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    assert "not a gdlab output folder" in _error(capsys, "figures", "--out", foreign)


def test_figures_errors(tmp_path, capsys):
    line = _error(capsys, "figures", "seven", "--out", tmp_path / "x")
    assert line.startswith("gdlab figures: error: unknown figure 'seven'; allowed: 1 ")


# ---------------------------------------------------------------------------- smooth


@pytest.fixture
def series_csv(tmp_path):
    path = tmp_path / "series.csv"
    rng = np.random.default_rng(0)
    theta = 10 + np.cumsum(rng.normal(size=80))
    rows = ["day,temp,label"] + [f"{i + 1},{v!r},x{i}" for i, v in enumerate(theta.tolist())]
    rows[5] = "5,,x4"  # an empty cell: a gap
    path.write_text("\n".join(rows) + "\n")
    theta[4] = np.nan
    return path, theta


def test_smooth_prints_the_ewa_of_a_column(capsys, series_csv):
    path, theta = series_csv
    status, out, err = run(capsys, "smooth", path, "--column", "temp", "--beta", "0.5,0.9",
                           "--bias-correction")
    assert status == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["t", "temp", "v_hat(beta=0.5)", "v_hat(beta=0.9)"]
    assert len(rows) == 81 and rows[5][1:] == ["", "", ""]  # the gap stays a gap
    for k, beta in enumerate((0.5, 0.9)):
        expected = gdlab.ewa(theta, beta, bias_correction=True)
        got = np.array([float(r[2 + k]) if r[2 + k] else np.nan for r in rows[1:]])
        np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_smooth_plots_each_beta(tmp_path, capsys, series_csv, saved):
    path, theta = series_csv
    out = tmp_path / "smooth.png"
    status, stdout, err = run(capsys, "smooth", path, "--column", "temp", "--out", out)
    assert status == 0, err
    assert stdout.strip() == f"figure: {out}"
    _png(out)
    (ax,) = saved[str(out)].axes
    data, *averages = ax.lines
    np.testing.assert_array_equal(data.get_ydata(), theta)
    assert len(averages) == 3  # the default β = 0.5, 0.9, 0.98, without correction
    for line, beta in zip(averages, (0.5, 0.9, 0.98), strict=True):
        np.testing.assert_array_equal(line.get_ydata(), gdlab.ewa(theta, beta))
        assert f"β = {beta:g}" in line.get_label() and "1/(1−β)" in line.get_label()
    assert ax.get_xlabel() == "t (row)" and "temp" in ax.get_title()


def test_smooth_errors(tmp_path, capsys, series_csv):
    path, _ = series_csv
    line = _error(capsys, "smooth", path, "--column", "tmp")
    assert line == f"gdlab smooth: error: unknown column 'tmp' in {path}; columns: day, temp, " \
                   "label"
    assert "column 'label' of" in _error(capsys, "smooth", path, "--column", "label")
    assert "is not numeric: line 2 has 'x0'" in _error(capsys, "smooth", path, "--column",
                                                         "label")
    assert "--beta values must be in [0, 1), got 1" in _error(
        capsys, "smooth", path, "--column", "temp", "--beta", "0.9,1")
    assert "--beta must be comma-separated numbers" in _error(
        capsys, "smooth", path, "--column", "temp", "--beta", "0.9;0.5")
    assert "no such file" in _error(capsys, "smooth", tmp_path / "nope.csv", "--column", "t")
    assert "the folder" in _error(capsys, "smooth", path, "--column", "temp", "--out",
                                  tmp_path / "no" / "where.png")
    assert "--column" in _error(capsys, "smooth", path)


# ---------------------------------------------------------------------------- landscape


def test_landscape_png(tmp_path, capsys, saved):
    out = tmp_path / "bowl.png"
    status, stdout, err = run(capsys, "landscape", "--function", "elongated", "--optimizers",
                              "gd,adam", "--lr", "gd=0.9", "--steps", "20", "--out", out)
    assert status == 0, err
    _png(out)
    (ax,) = saved[str(out)].axes
    labels = [line.get_label() for line in ax.lines]
    assert "GD, α = 0.9" in labels and "Adam, α = 0.25" in labels
    gd = next(line for line in ax.lines if line.get_label() == "GD, α = 0.9")
    assert len(gd.get_xdata()) == 21
    assert ax.get_xlabel() == "$w_1$" and ax.get_ylabel() == "$w_2$"
    assert "elongated" in ax.get_title()
    table = stdout.splitlines()
    assert table[1].split() == ["optimizer", "α", "steps", "w1", "w2", "J"]
    assert table[2].split()[:3] == ["gd", "0.9", "20"]


def test_landscape_gif(tmp_path, capsys):
    out = tmp_path / "rosen.gif"
    status, _, err = run(capsys, "landscape", "--function", "rosenbrock", "--steps", "6",
                         "--gif", "--out", out, "--start=-1,1.5")
    assert status == 0, err
    with Image.open(out) as image:
        assert image.format == "GIF" and image.n_frames == 7


def test_landscape_errors(capsys):
    assert _error(capsys, "landscape", "--function", "himmelblau") == (
        "gdlab landscape: error: unknown function 'himmelblau'; allowed: elongated, "
        "rosenbrock, beale")
    assert "unknown optimizer 'sgd'" in _error(capsys, "landscape", "--optimizers", "gd,sgd")
    assert "--lr must be" in _error(capsys, "landscape", "--lr", "-1")
    assert "not among --optimizers" in _error(capsys, "landscape", "--optimizers", "gd",
                                              "--lr", "adam=0.1")
    assert "--start must be two numbers" in _error(capsys, "landscape", "--start", "1,2,3")
    assert "--steps must be" in _error(capsys, "landscape", "--steps", "0")


# ---------------------------------------------------------------------------- schedule


def test_schedule_prints_the_lectures_table(tmp_path, capsys, saved):
    out = tmp_path / "alpha.png"
    status, stdout, err = run(capsys, "schedule", "--kind", "inverse_time", "--lr0", "0.2",
                              "--decay-rate", "1", "--epochs", "50", "--out", out)
    assert status == 0, err
    lines = stdout.splitlines()
    assert lines[2:6] == ["        1  0.1", "        2  0.0666667", "        3  0.05",
                          "        4  0.04"]
    assert len([line for line in lines if line.strip()[:1].isdigit()]) == 50
    _png(out)
    (ax,) = saved[str(out)].axes
    (line,) = ax.lines
    np.testing.assert_allclose(line.get_ydata(), [0.2 / (1 + e) for e in range(1, 51)])
    assert ax.get_xlabel() == "epoch_num" and ax.get_ylabel() == "learning rate α"


def test_schedule_runs_with_its_own_defaults(capsys):
    """`gdlab schedule` alone: inverse_time with α₀ = 0.2 and the default decay_rate 1 its help
    states — the lecture's table."""
    status, stdout, err = run(capsys, "schedule")
    assert status == 0, err
    assert "decay_rate=1" in stdout.splitlines()[0]
    alphas = [float(line.split()[1]) for line in stdout.splitlines()[2:]]
    np.testing.assert_allclose(alphas[:4], [0.1, 0.2 / 3, 0.05, 0.04], rtol=1e-5)
    assert len(alphas) == 10
    with pytest.raises(SystemExit):
        main(["schedule", "--help"])
    assert "(default 1: α = α₀/(1 + ⌊epoch_num/time_interval⌋))" in " ".join(
        capsys.readouterr().out.split())


@pytest.mark.parametrize("argv, expected", [
    (["--kind", "exponential", "--base", "0.5", "--epochs", "3"], [0.1, 0.05, 0.025]),
    (["--kind", "staircase", "--factor", "0.5", "--every", "2", "--epochs", "5"],
     [0.2, 0.2, 0.1, 0.1, 0.05]),
    (["--kind", "inverse-sqrt", "--epochs", "4"], [0.2, 0.2 / 2**0.5, 0.2 / 3**0.5, 0.1]),
    (["--kind", "inverse_sqrt", "--per", "step", "--batches-per-epoch", "3", "--epochs", "2"],
     [0.2, 0.1]),
])
def test_schedule_kinds(capsys, argv, expected):
    status, stdout, err = run(capsys, "schedule", *argv)
    assert status == 0, err
    alphas = [float(line.split()[1]) for line in stdout.splitlines()[2:]]
    np.testing.assert_allclose(alphas, expected, rtol=1e-5)


def test_schedule_errors(capsys):
    assert "unknown schedule kind 'cosine'; allowed: constant, inverse_time" in _error(
        capsys, "schedule", "--kind", "cosine")
    assert "--decay-rate does not apply to exponential; it takes --base" in _error(
        capsys, "schedule", "--kind", "exponential", "--decay-rate", "1")
    assert "plateau" in _error(capsys, "schedule", "--kind", "plateau")
    assert "--epochs must be" in _error(capsys, "schedule", "--kind", "constant",
                                        "--epochs", "0")
    assert "lr0 must be a finite number > 0" in _error(capsys, "schedule", "--kind", "constant",
                                                       "--lr0", "-1")
