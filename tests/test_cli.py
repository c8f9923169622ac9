"""The gdlab command: short runs of each sub-command, their files, and one-line errors."""

import csv
import json

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
