"""The lab from the command line on a model and data of the user's: SPECs, their errors, and
what the commands write."""

from __future__ import annotations

import json
import textwrap

import pytest

from gdlab.cli import main

SPEC_FILE = textwrap.dedent('''
    import torch
    from torch import nn


    def make_model():
        return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


    def make_plain_model():
        return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))


    def make_data():
        gen = torch.Generator().manual_seed(0)
        X = torch.randn(160, 2, generator=gen)
        Y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
        return (X[:120], Y[:120]), (X[120:], Y[120:])


    def not_a_model():
        return 42


    def broken():
        raise RuntimeError("no data today")


    VALUE = 3
''')


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(SPEC_FILE)
    return str(path)


def test_compare_your_model_writes_the_report_and_ranks_by_validation(spec, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["compare", "--model", f"{spec}:make_model", "--data", f"{spec}:make_data",
                 "--epochs", "3", "--seeds", "2", "--optimizers", "gd,adam", "--out", str(out),
                 "-q"]) == 0
    printed = capsys.readouterr().out
    assert "ranked by val cost, median over 2 seeds" in printed
    assert "adam + inverse_time" in printed and f"report: {out / 'report.html'}" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == f"{spec}:make_model" and config["loss"] == "cross_entropy"
    assert config["decay"] == "inverse_time:decay_rate=1,time_interval=1"  # half of 3 epochs
    assert (out / "report.html").exists() and (out / "history.csv").exists()


def test_lr_find_your_model(spec, tmp_path, capsys):
    out = tmp_path / "lr"
    assert main(["lr-find", "--model", f"{spec}:make_model", "--data", f"{spec}:make_data",
                 "--steps", "30", "--seeds", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "lr_find (adam): " in printed and (out / "lr_find.png").exists()
    assert json.loads((out / "config.json").read_text())["seeds"] == 2


@pytest.mark.parametrize("model, data, message", [
    ("nosuch.py:make_model", None, "no such file nosuch.py"),
    ("{spec}:make_mdoel", None, r"has no function 'make_mdoel' \(it has: broken, make_data, "
                                r"make_model, make_plain_model, not_a_model\)"),
    ("{spec}:VALUE", None, "VALUE in .* is a int, not a function"),
    ("{spec}:not_a_model", "{spec}:make_data", "model must be an nn.Module or a function "
                                               "returning one, got int"),
    ("{spec}:make_model", "{spec}:broken", "--data '.*:broken' failed: RuntimeError: no data "
                                           "today"),
    ("no_such_package.mod:f", None, "no module 'no_such_package'"),
])
def test_bad_specs_are_one_line_and_write_nothing(spec, tmp_path, capsys, model, data, message):
    import re

    out = tmp_path / "out"
    argv = ["compare", "--model", model.format(spec=spec), "--out", str(out), "-q",
            "--epochs", "1"]
    if data is not None:
        argv += ["--data", data.format(spec=spec)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists()


def test_a_loss_that_fits_no_output_asks_for_loss(spec, tmp_path, capsys):
    assert main(["compare", "--model", f"{spec}:make_model", "--data", f"{spec}:make_data",
                 "--loss", "bce", "--epochs", "1", "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the cost binary_cross_entropy does not fit outputs of " \
        "shape (64, 3) and targets of shape (64,)" in err
    assert main(["compare", "--model", f"{spec}:make_model", "--loss", "hinge",
                 "--out", str(tmp_path / "o"), "-q"]) == 2
    assert "--loss must be one of cross_entropy, bce, mse" in capsys.readouterr().err


def _rows(path):
    import csv

    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(f)]


def test_fit_your_model_resumes_exactly_rebuilt_from_its_spec(spec, tmp_path, capsys):
    from safetensors.torch import load_file

    common = ["--model", f"{spec}:make_model", "--data", f"{spec}:make_data", "--batch-size",
              "32", "--seed", "2", "-q", "--checkpoint-every", "1"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["fit", *common, "--epochs", "5", "--out", str(straight)]) == 0
    assert main(["fit", *common, "--epochs", "3", "--out", str(split)]) == 0
    assert main(["fit", "--resume", str(split), "--epochs", "5", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "resuming" in printed and "validation accuracy" in printed
    rows = _rows(straight / "history.csv")
    assert rows == _rows(split / "history.csv") and len(rows) == 5
    assert rows[0]["val_cost"] and rows[0]["val_accuracy"]
    a, b = load_file(straight / "model.safetensors"), load_file(split / "model.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)  # BatchNorm's buffers too
    config = json.loads((split / "config.json").read_text())
    assert config["model"] == f"{spec}:make_model" and config["layers"] is None


def test_fit_your_model_data_parallel_equals_one_process(spec, tmp_path, capsys):
    # (no BatchNorm: each process would normalize its shard by its own statistics, as DDP does)
    common = ["fit", "--model", f"{spec}:make_plain_model", "--data", f"{spec}:make_data",
              "--epochs", "3", "--dtype", "float64", "--batch-size", "40", "-q"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    assert main([*common, "--out", str(tmp_path / "two"), "--nproc", "2"]) == 0
    one, two = _rows(tmp_path / "one" / "history.csv"), _rows(tmp_path / "two" / "history.csv")
    assert len(one) == len(two) == 3
    for a, b in zip(one, two, strict=True):  # the same sums, added in another order
        for key in ("cost", "val_cost", "val_accuracy"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-12)
