"""The report of ``gdlab compare`` / ``gdlab fit``: figures, CSV files and the HTML page."""

from __future__ import annotations

import csv
import fnmatch
import html
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import gdlab
from gdlab import schedules
from gdlab.data.datasets import Dataset
from gdlab.lab.runs import RunResult
from gdlab.report import figures, write_report
from gdlab.report.style import optimizer_color

EVIL = "<script>alert(1)</script>"
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
PNGS = ("cost_per_iteration.png", "epoch_cost.png", "cost_over_time.png", "learning_rate.png",
        "decision_boundary.png")
EPOCHS, BATCH = 4, 16


# ---------------------------------------------------------------------------- data and runs


def _standardize(X_train, X_test):
    mu, sigma = X_train.mean(axis=0), X_train.std(axis=0)
    return (X_train - mu) / sigma, (X_test - mu) / sigma


def _blobs(rng, m, n_classes, n_features=2):
    centers = np.array([[np.cos(a), np.sin(a)] for a in
                        np.linspace(0, 2 * np.pi, n_classes, endpoint=False)]) * 2.5
    y = rng.integers(0, n_classes, m)
    X = centers[y] + rng.normal(0, 0.8, (m, 2))
    if n_features > 2:
        X = np.column_stack([X, rng.normal(size=(m, n_features - 2))])
    return X, y


def make_dataset(task="binary", n_features=2, name="two blobs", seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    n_classes = 3 if task == "multiclass" else 2
    X, y = _blobs(rng, 160, n_classes, n_features)
    if task == "regression":
        Y = (X @ rng.normal(size=(n_features, 1)) + 0.1 * rng.normal(size=(160, 1)))
    elif task == "binary":
        Y = y.reshape(-1, 1).astype(np.float64)
    else:
        Y = y
    X_train, X_test = _standardize(X[:120], X[120:])
    class_names = None if task == "regression" else [f"class {EVIL} {k}" for k in range(
        n_classes)]
    return Dataset(name=name, X_train=X_train, Y_train=Y[:120], X_test=X_test, Y_test=Y[120:],
                   task=task, n_outputs=1 if task != "multiclass" else n_classes,
                   feature_names=[f"x{k} {EVIL}" if k == 0 else f"x{k}" for k in range(
                       n_features)], class_names=class_names)


def _accuracy(model, X, Y, task):
    if task == "regression":
        return None
    with torch.no_grad():
        out = model(torch.as_tensor(X, dtype=next(model.parameters()).dtype)).numpy()
    predicted = (out[:, 0] > 0.5) if task == "binary" else out.argmax(axis=1)
    return float(np.mean(predicted == np.asarray(Y).reshape(len(Y), -1)[:, 0]))


SPECS = [("gd", "constant", "GD", 0.5), ("gd", "inverse_time(decay_rate=1)", "GD + decay", 0.5),
         ("momentum", "constant", "Momentum $β$", 0.5), ("adam", "constant", f"Adam {EVIL}", 0.05)]


def make_runs(dataset, specs=SPECS) -> list[RunResult]:
    runs = []
    for optimizer, schedule, label, lr in specs:
        torch.manual_seed(0)
        model = gdlab.MLP([dataset.n_features, 8, dataset.n_outputs], output=dataset.output)
        opt = {"gd": gdlab.GD, "momentum": gdlab.Momentum, "adam": gdlab.Adam}[optimizer](
            model.parameters(), lr=lr)
        decay = schedules.inverse_time(lr, 1.0) if schedule != "constant" else None
        history = gdlab.fit(model, dataset.X_train, dataset.Y_train, opt, epochs=EPOCHS,
                            batch_size=BATCH, schedule=decay, seed=0, progress=False)
        runs.append(RunResult(
            optimizer, schedule, label, history, model,
            train_accuracy=_accuracy(model, dataset.X_train, dataset.Y_train, dataset.task),
            test_accuracy=_accuracy(model, dataset.X_test, dataset.Y_test, dataset.task),
            seconds=history.times[-1], config={"lr": lr, "epochs": EPOCHS}))
    return runs


@pytest.fixture(scope="module")
def binary():
    dataset = make_dataset("binary", name=f"blobs {EVIL}")
    return dataset, make_runs(dataset)


@pytest.fixture(scope="module")
def binary_report(binary, tmp_path_factory):
    dataset, runs = binary
    out = tmp_path_factory.mktemp("report") / "nested" / "compare"
    config = {"data": f"blobs {EVIL}", "layer_dims": [2, 8, 1], "epochs": EPOCHS,
              "batch_size": BATCH, "seed": 0, "note": EVIL}
    path = write_report(out, runs, dataset, title=f"compare {EVIL}", config=config)
    return out, path, path.read_text(encoding="utf-8")


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def _data_block(page: str) -> str:
    match = re.search(r'<script type="application/json" id="gdlab-data">(.*?)</script>', page,
                      re.S)
    assert match, "no gdlab-data block"
    return match.group(1)


def _tbody_rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr[^>]*>.*?</tr>", body, re.S)


# ---------------------------------------------------------------------------- write_report


def test_write_report_writes_every_file(binary_report):
    out, path, _ = binary_report
    assert path == out / "report.html" and path.is_file()
    for name in PNGS:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000, name
    assert (out / "history.csv").is_file() and (out / "minibatch_costs.csv").is_file()


def test_html_is_self_contained(binary_report):
    _, _, page = binary_report
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('src="data:image/png;base64,') == len(PNGS)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page and "@import" not in page and "url(" not in page


def test_html_has_config_and_a_row_per_run(binary, binary_report):
    dataset, runs = binary
    _, _, page = binary_report
    for text in ("layer_dims", "[2, 8, 1]", "batch_size", "120 train, 40 test"):
        assert text in page
    rows = _tbody_rows(page)
    assert len(rows) == len(runs)
    for run in runs:
        cell = re.compile(re.escape("</span>" + html.escape(run.label)) + " ?<")
        assert sum(bool(cell.search(row)) for row in rows) == 1
    best = max(runs, key=lambda r: (r.test_accuracy, -r.final_cost))
    assert 'class=best' in rows[0] and best.optimizer in rows[0]
    assert sum("class=best" in row for row in rows) == 1
    accuracies = [float(a) for a in re.findall(r">([\d.]+) %<", "".join(rows))]
    tests = accuracies[1::2]
    assert tests == sorted(tests, reverse=True)


def test_user_strings_are_escaped(binary_report):
    _, _, page = binary_report
    assert EVIL not in page
    # label, title, dataset, feature and class names, config values: all escaped
    assert page.count(EVIL_ESCAPED) >= 6
    assert page.count("<script") == 2  # the JSON data block and the page's own script
    assert "<title>compare &lt;script&gt;" in page


def _costs(item) -> np.ndarray:
    """A run's mini-batch costs from the page's data: float32 in base64."""
    import base64

    return np.frombuffer(base64.b64decode(item["costs_f32"]), "<f4").astype(np.float64)


def test_embedded_json_has_the_costs_and_cannot_break_out(binary, binary_report):
    _, runs = binary
    _, _, page = binary_report
    block = _data_block(page)
    assert "<" not in block and ">" not in block
    data = json.loads(block)
    assert data["beta"] == 0.98
    assert [r["label"] for r in data["runs"]] == [r.label for r in runs]
    for item, run in zip(data["runs"], runs, strict=True):
        np.testing.assert_allclose(_costs(item), run.history.costs, rtol=1e-6)
        np.testing.assert_allclose(item["lrs"], run.history.lrs, rtol=1e-6)
        assert item["color"] == optimizer_color(run.optimizer)
        assert item["batches_per_epoch"] == 120 // BATCH + 1


def test_history_csv(binary, binary_report):
    _, runs = binary
    out, _, _ = binary_report
    with (out / "history.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["run", "optimizer", "schedule", "epoch", "cost", "lr", "time"]
    assert len(rows) == 1 + len(runs) * EPOCHS
    for i, run in enumerate(runs):
        mine = rows[1 + i * EPOCHS: 1 + (i + 1) * EPOCHS]
        assert {r[0] for r in mine} == {run.label}
        assert [int(r[3]) for r in mine] == list(range(1, EPOCHS + 1))
        assert [float(r[4]) for r in mine] == run.history.epoch_costs
        assert [float(r[5]) for r in mine] == run.history.lrs
        assert [float(r[6]) for r in mine] == run.history.times


def test_minibatch_csv(binary, binary_report):
    _, runs = binary
    out, _, _ = binary_report
    with (out / "minibatch_costs.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["run", "t", "epoch", "cost", "smoothed"]
    assert len(rows) == 1 + sum(len(run.history.costs) for run in runs)
    per_epoch = 120 // BATCH + 1
    start = 1
    for run in runs:
        n = len(run.history.costs)
        mine = rows[start:start + n]
        start += n
        assert [int(r[1]) for r in mine] == list(range(1, n + 1))
        assert [int(r[2]) for r in mine] == [(t - 1) // per_epoch + 1 for t in range(1, n + 1)]
        assert [float(r[3]) for r in mine] == run.history.costs
        smoothed = gdlab.ewa(np.asarray(run.history.costs), 0.98, bias_correction=True)
        np.testing.assert_array_equal([float(r[4]) for r in mine], smoothed)


def test_regression_report_has_no_accuracy_and_no_boundary(tmp_path):
    dataset = make_dataset("regression", n_features=3)
    runs = make_runs(dataset, [("gd", "constant", "GD", 0.05), ("adam", "constant", "Adam", 0.05)])
    (tmp_path / "decision_boundary.png").write_bytes(b"stale")
    path = write_report(tmp_path, runs, dataset)
    page = path.read_text(encoding="utf-8")
    assert not (tmp_path / "decision_boundary.png").exists()
    assert page.count('src="data:image/png;base64,') == 4  # no boundary: 4 of the 5
    rows = _tbody_rows(page)
    assert len(rows) == 2
    for row in rows:
        assert row.count(">—<") == 2  # train and test accuracy
    best = min(runs, key=lambda run: run.final_cost)
    assert f"</span>{best.label} <span class=\"badge\">best</span>" in rows[0]
    assert "Sorted by final cost" in page


def test_a_diverged_run_is_reported_last(tmp_path):
    dataset = make_dataset("regression", n_features=3)
    # plain GD with α = 0.5 diverges on this problem: its costs end as NaN
    runs = make_runs(dataset, [("gd", "constant", "GD α=0.5", 0.5),
                               ("adam", "constant", "Adam", 0.05)])
    assert not np.isfinite(runs[0].final_cost)
    page = write_report(tmp_path, runs, dataset).read_text(encoding="utf-8")
    rows = _tbody_rows(page)
    assert "GD α=0.5" in rows[1] and rows[1].count(">—<") == 3  # cost and accuracies
    costs = _costs(json.loads(_data_block(page))["runs"][0])
    assert np.isnan(costs).any()
    with (tmp_path / "history.csv").open(newline="", encoding="utf-8") as f:
        assert "nan" in [row[4] for row in csv.reader(f)]


def test_single_run_and_multiclass_report(tmp_path):
    dataset = make_dataset("multiclass")
    runs = make_runs(dataset, SPECS[3:])
    path = write_report(tmp_path, runs, dataset, title="gdlab fit")
    page = path.read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 5
    assert len(_tbody_rows(page)) == 1 and "class=best" not in page
    assert "lr" in page and "0.05" in page  # a lone run's config is the setup


def test_write_report_needs_runs(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        write_report(tmp_path, [], make_dataset())


# ---------------------------------------------------------------------------- figures


def test_cost_per_iteration(binary):
    _, runs = binary
    fig = figures.cost_per_iteration(runs)
    assert isinstance(fig, Figure)
    axes = _visible_axes(fig)
    assert len(axes) == len(runs)
    for ax, run in zip(axes, runs, strict=True):
        assert ax.get_xlabel() == "iteration t (mini-batch)"
        assert ax.get_ylabel() == "cost J"
        assert len(ax.lines) == 2
        raw, smooth = ax.lines
        costs = np.asarray(run.history.costs)
        np.testing.assert_array_equal(raw.get_xdata(), np.arange(1, len(costs) + 1))
        np.testing.assert_array_equal(raw.get_ydata(), costs)
        np.testing.assert_array_equal(smooth.get_ydata(),
                                      gdlab.ewa(costs, 0.98, bias_correction=True))
        assert raw.get_alpha() == pytest.approx(0.3)
        assert smooth.get_color() == raw.get_color() == optimizer_color(run.optimizer)
    other = figures.cost_per_iteration(runs, beta=0.9)
    np.testing.assert_array_equal(
        _visible_axes(other)[0].lines[1].get_ydata(),
        gdlab.ewa(np.asarray(runs[0].history.costs), 0.9, bias_correction=True))


def test_cost_per_iteration_thins_long_series_for_drawing_only():
    rng = np.random.default_rng(0)
    costs = np.exp(-np.arange(20_000) / 5000) + rng.normal(0, 0.1, 20_000) ** 2
    costs[123] = 5.0
    history = gdlab.History(costs=costs.tolist(), epoch_costs=[1.0] * 100, lrs=[0.1] * 100,
                            times=list(range(100)))
    run = RunResult("gd", "constant", "long", history, gdlab.MLP([2, 1]))
    fig = figures.cost_per_iteration([run], max_points=2000)
    raw, smooth = fig.axes[0].lines
    assert len(raw.get_xdata()) <= 2100 and len(smooth.get_xdata()) <= 2100
    assert max(raw.get_ydata()) == 5.0 and min(raw.get_ydata()) == costs.min()
    t = np.asarray(smooth.get_xdata())
    full = gdlab.ewa(costs, 0.98, bias_correction=True)
    np.testing.assert_array_equal(smooth.get_ydata(), full[t - 1])
    assert t[0] == 1 and t[-1] == len(costs)


@pytest.mark.parametrize("name, ylabel", [("epoch_cost", "cost J"),
                                          ("learning_rate", "learning rate α")])
def test_per_epoch_figures(binary, name, ylabel):
    _, runs = binary
    fig = getattr(figures, name)(runs)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == ylabel
    assert len(ax.lines) == len(runs)
    series = "epoch_costs" if name == "epoch_cost" else "lrs"
    for line, run in zip(ax.lines, runs, strict=True):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, EPOCHS + 1))
        np.testing.assert_array_equal(line.get_ydata(), getattr(run.history, series))
        assert line.get_color() == optimizer_color(run.optimizer)
        assert (line.get_linestyle() == "--") == (run.schedule != "constant")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [run.label.replace("$", r"\$") for run in runs]
    fig.savefig(io.BytesIO(), format="png")  # "$β$" in a label renders literally


def test_learning_rate_uses_log_scale_across_decades(binary):
    _, runs = binary
    assert figures.learning_rate(runs).axes[0].get_yscale() == "log"  # 0.5 ... 0.05
    assert figures.learning_rate(runs[:1]).axes[0].get_yscale() == "linear"


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_decision_boundary(task, binary):
    if task == "binary":
        dataset, runs = binary
    else:
        dataset = make_dataset("multiclass")
        runs = make_runs(dataset, SPECS[2:])
    fig = figures.decision_boundary(runs, dataset)
    axes = _visible_axes(fig)
    assert len(axes) == len(runs)
    for ax, run in zip(axes, runs, strict=True):
        title = ax.get_title()
        assert run.label.replace("$", r"\$") in title
        assert figures.accuracy_text(run.test_accuracy) in title and "%" in title
        assert len(ax.collections) >= 2  # the filled contour and the scattered points
    n_classes = 2 if task == "binary" else 3
    assert len(fig.legends[0].get_texts()) == n_classes
    fig.savefig(io.BytesIO(), format="png")


def test_decision_boundary_needs_two_features_and_classes(binary):
    _, runs = binary
    for dataset in (make_dataset("binary", n_features=3), make_dataset("regression")):
        assert not figures.has_decision_boundary(dataset)
        with pytest.raises(ValueError, match="exactly 2 features"):
            figures.decision_boundary(runs, dataset)


def test_accuracy_text():
    assert figures.accuracy_text(None) == "—"
    assert figures.accuracy_text(0.975) == "97.5 %"


# ---------------------------------------------------------------------------- package data

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "src" / "gdlab" / "report" / "assets"
ASSET_NAMES = {"report.css", "report.js", "head.html", "compare.html", "tail.html",
               "explore.html"}


def test_the_page_is_built_from_its_asset_files(tmp_path, binary):
    """The CSS and JavaScript of the page are those of the package data, verbatim."""
    assert {p.name for p in ASSETS.iterdir()} == ASSET_NAMES
    dataset, runs = binary
    page = write_report(tmp_path, runs, dataset).read_text(encoding="utf-8")
    assert "<style>\n" + (ASSETS / "report.css").read_text(encoding="utf-8") + "</style>" in page
    assert "<script>\n" + (ASSETS / "report.js").read_text(encoding="utf-8") + "</script>" in page
    assert "{" not in page.split("<style>")[0]  # every placeholder of the head was filled


def test_pyproject_ships_the_report_assets():
    """An editable install finds the assets anyway; a wheel has them only if pyproject.toml's
    package data names them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"].get("package-data", {}).get("gdlab", [])
    missing = [name for name in sorted(ASSET_NAMES)
               if not any(fnmatch.fnmatch(f"report/assets/{name}", p) for p in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data] gdlab: {missing}"


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None,
                    reason="building the wheel without network needs setuptools in the venv")
def test_the_wheel_contains_the_report_assets(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("gdlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"gdlab/report/assets/{name}" for name in ASSET_NAMES} <= names


def test_seeds_of_one_run_are_drawn_as_their_median_and_band_against_epochs_and_seconds():
    history = [gdlab.History(costs=[1.0] * 3, epoch_costs=c, lrs=[0.1] * 3, times=s)
               for c, s in (([3.0, 2.0, 1.0], [1.0, 2.0, 3.0]), ([5.0, 3.0, 2.0], [2.0, 3.0, 5.0]),
                            ([4.0, 1.0, 0.5], [1.5, 2.5, 4.0]))]
    runs = [RunResult("adam", "constant", "adam", h, None) for h in history]
    for make, x in ((figures.epoch_cost, [1, 2, 3]), (figures.cost_over_time, [1.5, 2.5, 4.0])):
        ax = make(runs).axes[0]
        (line,) = ax.get_lines()
        assert line.get_label() == "adam (median of 3)"
        np.testing.assert_array_equal(line.get_xdata(), x)
        np.testing.assert_array_equal(line.get_ydata(), [4.0, 2.0, 1.0])
        (band,) = ax.collections  # min–max over the seeds
        np.testing.assert_array_equal(band.get_paths()[0].vertices[1:4, 1], [3.0, 1.0, 0.5])
    assert figures.cost_over_time(runs).axes[0].get_xlabel() == "seconds"
