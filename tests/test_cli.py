"""The gdlab command: short runs of each sub-command, their files, and one-line errors."""

import csv
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from gdlab.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_compare_writes_report_and_table(tmp_path, capsys):
    out_dir = tmp_path / "report"
    status, out, err = run(capsys, "compare", "--epochs", "3", "--out", str(out_dir), "-q")
    assert status == 0, err
    for name in ("report.html", "config.json", "history.csv", "minibatch_costs.csv",
                 "cost_per_iteration.png", "epoch_cost.png", "learning_rate.png",
                 "decision_boundary.png"):
        assert (out_dir / name).stat().st_size > 0, name
    labels = ["gd", "gd + inverse_time", "momentum", "momentum + inverse_time", "rmsprop",
              "rmsprop + inverse_time", "adam", "adam + inverse_time"]
    table_rows = [line.split("  ")[0].strip() for line in out.splitlines()[3:-1]]
    assert table_rows == labels
    with open(out_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 * 3
    assert json.loads((out_dir / "config.json").read_text())["command"] == "compare"


def test_compare_same_start_for_every_run(tmp_path, capsys):
    """Same initialization and mini-batch order: GD and Momentum's first mini-batch cost agree."""
    out_dir = tmp_path / "r"
    assert run(capsys, "compare", "--epochs", "1", "--optimizers", "gd,adam", "--schedule",
               "none", "--out", str(out_dir), "-q")[0] == 0
    with open(out_dir / "minibatch_costs.csv") as f:
        first = {row["run"]: float(row["cost"]) for row in csv.DictReader(f) if row["t"] == "1"}
    assert set(first) == {"gd", "adam"}
    assert first["gd"] == first["adam"]


def test_fit_run_folder_is_reproducible(tmp_path, capsys):
    args = ["fit", "--data", "moons", "--layers", "2,5,2,1", "--optimizer", "adam", "--lr",
            "0.01", "--epochs", "5", "--batch-size", "64", "--schedule",
            "inverse_time:decay_rate=1", "--seed", "0", "--dtype", "float64", "-q"]
    status, out, err = run(capsys, *args, "--out", str(tmp_path / "a"))
    assert status == 0, err
    assert run(capsys, *args, "--out", str(tmp_path / "b"))[0] == 0
    for name in ("config.json", "history.csv", "model.safetensors", "report.html"):
        assert (tmp_path / "a" / name).exists()
    with open(tmp_path / "a" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "cost", "lr", "accuracy", "time"]
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.01 / (1 + e) for e in range(1, 6)])
    assert (tmp_path / "a" / "history.csv").read_text().split("\n")[1].split(",")[:4] == \
        (tmp_path / "b" / "history.csv").read_text().split("\n")[1].split(",")[:4]
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(
        tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["linears.0.weight"].dtype == torch.float64
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["layers"] == [2, 5, 2, 1] and config["optimizer"] == "adam"


def test_fit_on_user_csv(tmp_path, capsys):
    path = tmp_path / "data.csv"
    rows = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{'yes' if i % 2 else 'no'}"
                            for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    status, out, err = run(capsys, "fit", "--data", str(path), "--target", "label", "--epochs",
                           "2", "--out", str(tmp_path / "run"), "-q")
    assert status == 0, err
    assert "binary" in out


@pytest.mark.parametrize("argv, message", [
    (["compare", "--optimizers", "sgd"], r"unknown optimizer 'sgd'; allowed: gd, momentum"),
    (["compare", "--data", "nope"], r"unknown data 'nope'"),
    (["compare", "--lr", "-1"], r"lr must be a finite number > 0, got -1.0"),
    (["compare", "--epochs", "0"], r"epochs must be an integer >= 1, got 0"),
    (["compare", "--schedule", "inverse_time:decay_rate"], r"malformed schedule option"),
    (["compare", "--schedule", "bogus"], r"unknown schedule 'bogus'"),
    (["fit", "--layers", "3,4,1"], r"don't match the data 'moons': it needs 2 inputs"),
    (["fit", "--layers", "2,x,1"], r"--layers must be comma-separated integers"),
    (["fit", "--optimizer", "adamw"], r"unknown optimizer 'adamw'"),
    (["fit", "--epochs", "ten"], r"argument --epochs: invalid int value: 'ten'"),
    (["fit", "--batch-size", "0"], r"batch_size must be an integer >= 1, got 0"),
    (["course", "--decay", "cosine"], r"unknown decay 'cosine'"),
    (["nonsense"], r"invalid choice: 'nonsense'"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, argv, message):
    if argv[0] == "fit":
        argv = argv + ["--out", str(tmp_path / "run")]
    elif argv[0] == "compare":
        argv = argv + ["--out", str(tmp_path / "report")]
    status, out, err = run(capsys, *argv, "-q") if argv[0] != "nonsense" else run(capsys, *argv)
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    import re

    assert re.search(message, err), err


def test_refuses_foreign_out_folder_unless_forced(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    status, out, err = run(capsys, "compare", "--epochs", "1", "--out", str(foreign), "-q")
    assert status == 2 and "is not a gdlab output folder" in err and "--force" in err
    assert (foreign / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert run(capsys, "compare", "--epochs", "1", "--optimizers", "gd", "--out", str(foreign),
               "--force", "-q")[0] == 0
    assert (foreign / "notes.txt").read_text() == "precious"


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("compare", "fit", "course"):
        assert command in out


def test_course_command_prints_the_assignment_format_and_adam_beats_gd(capsys):
    import re

    status, out, err = run(capsys, "course", "--epochs", "1000", "--optimizer", "gd,adam",
                           "--decay", "none", "-q")
    assert status == 0, err
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 2
    accuracy = {}
    for block in blocks:
        header, cost, acc = block.splitlines()
        name = re.fullmatch(r"== (gd|adam), decay=None ==", header).group(1)
        assert re.fullmatch(r"Cost after epoch 0: 0\.\d{6}", cost)
        accuracy[name] = float(re.fullmatch(r"Accuracy: (0\.\d+|1\.0)", acc).group(1))
    assert accuracy["adam"] > accuracy["gd"]


def test_course_json(capsys):
    status, out, err = run(capsys, "course", "--epochs", "3", "--optimizer", "rmsprop",
                           "--decay", "update_lr", "--json")
    assert status == 0, err
    result = json.loads(out)
    (only,) = result["runs"]
    assert only["optimizer"] == "rmsprop" and only["decay"] == "update_lr"
    assert set(only["costs"]) == {"0"} and 0 < only["accuracy"] <= 1


# ---------------------------------------------------------------------------- a light start


def _imported(*argv) -> set[str]:
    """The modules a fresh ``python -m gdlab.cli ARGV`` imports (from -X importtime)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "gdlab.cli", *argv],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:")}


HEAVY = ("torch", "matplotlib", "numpy", "gdlab.lab", "gdlab.report")


@pytest.mark.parametrize("argv", [["--help"], ["fit", "--help"], ["sweep", "--help"]],
                         ids=" ".join)
def test_help_needs_no_torch(argv):
    modules = _imported(*argv)
    assert "gdlab.cli" in modules  # the measurement sees gdlab's own imports
    assert not [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]


def test_status_needs_no_torch(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(capsys, "fit", "--epochs", "2", "--layers", "2,3,1", "--out", str(run_dir),
               "-q")[0] == 0
    modules = _imported("status", str(run_dir))
    assert "gdlab.train.callbacks.control" in modules
    assert not [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]


def test_light_name_lists_equal_the_librarys():
    """The parser shows names without importing the library: its copies must not drift."""
    from gdlab.cli import common, figures
    from gdlab.lab import figures as lab_figures
    from gdlab.lab import landscape
    from gdlab.optim import OPTIMIZERS
    from gdlab.train.runfolder import HYPERPARAMETERS

    assert common.OPTIMIZERS == tuple(OPTIMIZERS) == tuple(HYPERPARAMETERS)
    assert figures.FIGURES == tuple(lab_figures.FIGURES)
    assert [spec.number for spec in lab_figures.FIGURES.values()] == \
        list(range(1, len(figures.FIGURES) + 1))
    assert figures.LANDSCAPES == tuple(landscape.LANDSCAPES)


def test_the_public_names_load_lazily():
    code = ("import sys, gdlab; assert 'torch' not in sys.modules, 'import gdlab loaded torch'; "
            "[getattr(gdlab, name) for name in gdlab.__all__]; "
            "assert set(gdlab.__all__) <= set(dir(gdlab)); import gdlab.ewa; "
            "assert callable(gdlab.ewa) and gdlab.memmap.__name__ == 'gdlab.data.memmap' "
            "and gdlab.distributed.__name__ == 'gdlab.train.distributed'; "
            "from gdlab import fit, MLP, memmap, distributed, resume, schedules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    import gdlab

    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        gdlab.nonsense  # noqa: B018


# ---------------------------------------------------------------------------- gdlab.resume


def test_python_resume_is_gdlab_fit_resume(tmp_path, capsys):
    """gdlab.resume continues a run folder exactly as gdlab fit --resume does."""
    import shutil

    import gdlab

    args = ["fit", "--layers", "2,4,1", "--epochs", "3", "--checkpoint-every", "1",
            "--schedule", "inverse_time:decay_rate=1", "--dtype", "float64", "-q"]
    assert run(capsys, *args, "--out", str(tmp_path / "cli"))[0] == 0
    shutil.copytree(tmp_path / "cli", tmp_path / "api")
    status, out, err = run(capsys, "fit", "--resume", str(tmp_path / "cli"), "--epochs", "6",
                           "--lr", "0.002", "-q")
    assert status == 0, err
    assert "resuming" in out and "α = 0.002" in out
    finished = gdlab.resume(tmp_path / "api", epochs=6, lr=0.002, progress=False)
    assert finished.epoch_num == 6 and len(finished.history.epoch_costs) == 6
    assert (tmp_path / "api" / "events.json").read_text() == \
        (tmp_path / "cli" / "events.json").read_text()
    api, cli = (load_file(tmp_path / folder / "model.safetensors") for folder in ("api", "cli"))
    assert api.keys() == cli.keys() and all(torch.equal(api[k], cli[k]) for k in api)

    def columns(folder):
        with open(folder / "history.csv") as f:
            return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(f)]

    assert columns(tmp_path / "api") == columns(tmp_path / "cli")
    config = json.loads((tmp_path / "api" / "config.json").read_text())
    assert config["epochs"] == 6 and config["command"] == "fit"
    with pytest.raises(ValueError, match="--epochs must be at least 6, got 4"):
        gdlab.resume(tmp_path / "api", epochs=4, progress=False)
