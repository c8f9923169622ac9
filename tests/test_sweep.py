"""gdlab sweep: search spaces, ranking, the best command line, and a shared Optuna study."""

import csv
import fcntl
import json
import math
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from gdlab.cli import main
from gdlab.lab import sweep


def test_parse_space_ranges_lists_and_powers_of_two():
    space = sweep.parse_space({"lr": "1e-3:1e-1", "beta1": "0.8,0.9", "batch_size": "16:64",
                               "optimizer": "adam,momentum"})
    assert space["lr"] == sweep.Range(1e-3, 1e-1)
    assert space["beta1"] == [0.8, 0.9] and space["batch_size"] == [16, 32, 64]
    with pytest.raises(ValueError, match="β must be in"):
        sweep.parse_dimension("beta2", "0.9:1.5")
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        sweep.parse_dimension("optimizer", "sgd")


def test_grid_points_on_the_log_scales():
    space = sweep.parse_space({"lr": "1e-3:1e-1", "beta": "0.9:0.999", "optimizer": "momentum"})
    configs = sweep.grid(space, points=3)
    assert sorted({c["lr"] for c in configs}) == pytest.approx([1e-3, 1e-2, 1e-1])
    assert sorted({c["beta"] for c in configs}) == pytest.approx([0.9, 0.99, 0.999])
    assert len(configs) == 9


def test_rank_puts_diverged_and_pruned_last():
    trials = [sweep.Trial({"lr": 1}, math.inf), sweep.Trial({"lr": 2}, 0.5),
              sweep.Trial({"lr": 3}, 0.1, state="pruned"), sweep.Trial({"lr": 4}, 0.2)]
    assert [t.config["lr"] for t in sweep.rank(trials)] == [4, 2, 1, 3]


def test_read_space_from_toml_and_yaml(tmp_path):
    (tmp_path / "s.toml").write_text('lr = {low = 1e-3, high = 1e-1}\nbeta1 = [0.8, 0.9]\n'
                                     'batch-size = "16:32"\nepochs = 5\n')
    (tmp_path / "s.yaml").write_text("lr: 1e-3:1e-1\nbeta1: [0.8, 0.9]\nbatch_size: [16, 32]\n")
    for name in ("s.toml", "s.yaml"):
        items, _ = sweep.read_space(tmp_path / name)
        space = sweep.parse_space(items)
        assert space["lr"] == sweep.Range(1e-3, 1e-1) and space["batch_size"] == [16, 32]


def test_fit_command_writes_the_hyperparameters_exactly():
    """The printed command trains what the trial trained: α and the β's read back as the very
    floats the trial used (rounded to six digits, a refit's cost came out 1e-6 off)."""
    config = sweep.make_config({"optimizer": "adam", "lr": 0.02802597061804132,
                                "beta1": 0.9899176244317052}, 64)
    argv = sweep.fit_command(config, data="moons", layers=[2, 5, 2, 1], epochs=3, seed=0,
                             dtype="float32").split()
    assert float(argv[argv.index("--lr") + 1]) == config["lr"]
    assert float(argv[argv.index("--beta1") + 1]) == config["beta1"]
    assert "--lr 0.01 " in sweep.fit_command({**config, "lr": 0.01}, data="moons",
                                             layers=[2, 1], epochs=1, seed=0, dtype="float32")


def test_cli_grid_ranks_and_its_best_command_reproduces(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "--layers", "2,5,2,1", "--method", "grid", "--lr", "1e-3:1e-1",
                 "--beta1", "0.8,0.9", "--batch-size", "32,64", "--epochs", "3",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = (out / "results.csv").read_text().splitlines()[1:]
    costs = [float(line.split(",")[3]) for line in lines]
    assert len(costs) == 12 and costs == sorted(costs)
    command = text.strip().splitlines()[-1]
    assert command.startswith("gdlab fit ") and "--batch-size" in command
    for name in ("report.html", "alpha_vs_cost.png", "config.json"):
        assert (out / name).exists()
    page = (out / "report.html").read_text()
    assert 'alt="alpha vs cost"' in page and 'alt="heatmap beta1 lr"' in page
    argv = command.split()[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "best")
    assert main(argv + ["-q"]) == 0
    assert f"final cost {costs[0]:.6f}" in capsys.readouterr().out


def test_two_workers_share_one_sqlite_study(tmp_path):
    optuna = pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    common = ["-m", "gdlab.cli", "sweep", "--layers", "2,5,2,1", "--lr", "1e-3:1e-1",
              "--beta1", "0.8:0.95", "--epochs", "2", "--trials", "3", "--study", "shared",
              "--storage", url, "--no-prune"]
    workers = [subprocess.Popen([sys.executable, *common, "--out", str(tmp_path / f"w{i}")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=url)
    trials = study.get_trials()
    assert len(trials) == 6 and sorted(t.number for t in trials) == list(range(6))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    best = study.best_trial
    again = sweep.study_trials(study)[0]
    assert again.number == best.number and again.final_cost == best.value
    # a worker joining afterwards sees every trial and names the same best (unless its own
    # new trial is better still)
    joined = subprocess.run([sys.executable, *common[:common.index("--trials")], "--trials", "1",
                             *common[common.index("--trials") + 2:], "--out",
                             str(tmp_path / "w2")], capture_output=True, text=True, timeout=300)
    assert joined.returncode == 0, joined.stderr
    assert "7 finished trials" in joined.stdout
    study = optuna.load_study(study_name="shared", storage=url)
    assert f"final cost {study.best_value:.6f}" in joined.stdout
    assert study.best_value <= best.value
    # every trial trained with --seed's mini-batch order: the best command reproduces its cost
    argv = joined.stdout.strip().splitlines()[-1].split()[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "best")
    refit = subprocess.run([sys.executable, "-m", "gdlab.cli", *argv, "-q"],
                           capture_output=True, text=True, timeout=300)
    assert refit.returncode == 0, refit.stderr
    assert f"final cost {study.best_value:.6f}" in refit.stdout


def test_results_csv_quotes_schedules_with_commas():
    trials = [sweep.Trial({"optimizer": "adam", "lr": 0.01, "batch_size": 64,
                           "schedule": "staircase:factor=0.5,every=10"}, 0.25, number=3),
              sweep.Trial({"optimizer": "momentum", "lr": 0.1, "beta": 0.9, "batch_size": 32,
                           "schedule": None}, math.inf, number=0)]
    rows = list(csv.DictReader(sweep.results_csv(trials).splitlines()))
    assert [r["schedule"] for r in rows] == ["staircase:factor=0.5,every=10", ""]
    assert [r["rank"] for r in rows] == ["1", "2"] and rows[1]["final_cost"] == "inf"
    assert float(rows[0]["final_cost"]) == 0.25 and rows[1]["beta"] == "0.9"


def _on_a_terminal(argv, cwd):
    """Run gdlab ARGV with stdout and stderr on a pseudo-terminal of 24 × 100 characters;
    (status, what it showed)."""
    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "gdlab.cli", *argv], cwd=cwd,
                               stdout=child_fd, stderr=child_fd, close_fds=True)
    os.close(child_fd)
    shown = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_fd)
    return process.wait(timeout=300), shown.decode(errors="replace")


def test_a_progress_bar_over_trials_on_a_terminal_only(tmp_path, capsys):
    argv = ["sweep", "--layers", "2,4,1", "--method", "grid", "--lr", "1e-2,1e-1",
            "--batch-size", "32,64", "--epochs", "2"]
    status, shown = _on_a_terminal([*argv, "--out", "tty"], tmp_path)
    assert status == 0, shown
    assert "| 0/4 [" in shown and "trial/s]" in shown  # the bar over the 4 trials
    assert main([*argv, "--out", str(tmp_path / "piped")]) == 0  # not a terminal: no bar
    assert "trial/s" not in capsys.readouterr().err
    status, shown = _on_a_terminal([*argv, "--out", "quiet", "-q"], tmp_path)
    assert status == 0 and "trial/s" not in shown


YOUR_MODEL = '''
import torch
from torch import nn


def make_model():
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def make_plain_model():
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 3))


def make_data():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(160, 2, generator=gen)
    Y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    return (X[:120], Y[:120]), (X[120:], Y[120:])
'''


@pytest.fixture
def mine(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(YOUR_MODEL)
    return str(path)


def _sweep_your_model(mine, tmp_path, model, *extra):
    out = tmp_path / model
    status = main(["sweep", "--model", f"{mine}:{model}", "--data", f"{mine}:make_data",
                   "--method", "grid", "--lr", "1e-3:1e-1", "--points", "3", "--epochs", "2",
                   "--out", str(out), "-q", *extra])
    return status, out, list(csv.DictReader((out / "results.csv").open()))


def test_cli_sweep_your_model_vectorized_ranks_by_validation(mine, tmp_path, capsys):
    status, out, rows = _sweep_your_model(mine, tmp_path, "make_plain_model")
    assert status == 0
    captured = capsys.readouterr()
    assert "cannot train" not in captured.err  # vectorized: no fallback
    assert "ranked by validation cost (last epoch)" in captured.out
    val = [float(r["val_cost"]) for r in rows]
    assert len(rows) == 3 and val == sorted(val)
    assert all(0 <= float(r["val_accuracy"]) <= 1 for r in rows)
    command = captured.out.strip().splitlines()[-1]
    assert command.startswith(f"gdlab fit --model {mine}:make_plain_model --data ")
    assert "--layers" not in command and (out / "report.html").exists()
    assert f"best: val cost {val[0]:.6f}" in captured.out
    config = json.loads((out / "config.json").read_text())
    assert config["ranked_by"] == "val_cost" and config["best_val_cost"] == val[0]


def test_cli_sweep_batch_norm_falls_back_to_one_by_one(mine, tmp_path, capsys):
    status, out, rows = _sweep_your_model(mine, tmp_path, "make_model")
    assert status == 0
    err = capsys.readouterr().err
    assert err.strip() == ("gdlab sweep: warning: cannot train the configurations vectorized: "
                           "BatchNorm1d in training mode updates its running statistics in "
                           "place, which torch.func.vmap cannot batch; training them one by one")
    val = [float(r["val_cost"]) for r in rows]
    assert len(rows) == 3 and val == sorted(val) and all(math.isfinite(v) for v in val)


def test_cli_sweep_your_model_with_optuna_minimizes_the_validation_cost(mine, tmp_path, capsys):
    optuna = pytest.importorskip("optuna")
    status, out, rows = _sweep_your_model(mine, tmp_path, "make_plain_model", "--method", "tpe",
                                          "--trials", "2")
    assert status == 0 and len(rows) == 2
    study = optuna.load_study(study_name="gdlab-sweep", storage=f"sqlite:///{out / 'study.db'}")
    assert sorted(t.value for t in study.trials) == [float(r["val_cost"]) for r in rows]
    assert all(r["final_cost"] and float(r["final_cost"]) != float(r["val_cost"]) for r in rows)


def test_cli_sweep_your_model_bad_input_is_one_line_and_writes_nothing(mine, tmp_path, capsys):
    out = tmp_path / "never"
    for argv, message in (
            (["--model", f"{mine}:make_model", "--data", "nosuch.py:make_data"],
             "--data 'nosuch.py:make_data': no such file nosuch.py"),
            (["--model", f"{mine}:make_model", "--data", f"{mine}:make_data", "--layers", "2,3"],
             "--layers sizes gdlab's own MLP"),
            (["--loss", "mse"], "--loss applies to --model")):
        assert main(["sweep", *argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and not out.exists()
