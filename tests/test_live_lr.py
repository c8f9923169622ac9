"""Manual decay, live: ``request_lr`` / ``gdlab lr`` change α of a running fit from its next
mini-batch, acknowledged and recorded; ``status.json`` / ``gdlab status`` show the run."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from gdlab import GD, MLP, Fit, LiveControl, request_lr
from gdlab.cli import main
from gdlab.train.callbacks.checkpoint import latest_checkpoint
from gdlab.train.callbacks.control import CONTROL, STATUS, format_status, read_status

M = 150


def _data():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(M, 3, generator=gen)
    return X, (X[:, 0] > 0).float()


def _model():
    torch.manual_seed(0)
    return MLP([3, 6, 1])


def _wait(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_request_applies_at_the_next_mini_batch_and_is_recorded(tmp_path):
    X, Y = _data()
    model = _model()
    optimizer = GD(model.parameters(), lr=0.2)
    said = []
    control = LiveControl(tmp_path, poll=0.005, status_every=0.01, echo=said.append)
    run = Fit(model, X, Y, optimizer, epochs=4, batch_size=32, seed=0, progress=False,
              callbacks=[control])
    used, answers = [], []

    def record(opt, args, kwargs):
        used.append(opt.param_groups[0]["lr"])

    def request_at_step_7(opt, args, kwargs):
        if run.t == 7:  # from another thread, as from another process: ask and wait for it
            asker = threading.Thread(target=lambda: answers.append(
                request_lr(tmp_path, 0.001, wait=10)))
            asker.start()
            _wait(lambda: run.learning_rate.pending is not None)  # the watcher has read the request

    optimizer.register_step_pre_hook(record)
    optimizer.register_step_post_hook(request_at_step_7)
    history = run.run()
    assert used == [0.2] * 7 + [0.001] * 13  # from the very next mini-batch, t = 8
    assert history.events == [{"epoch": 2, "t": 8, "event": "set_lr", "old_lr": 0.2,
                               "lr": 0.001}]
    assert history.lrs == [0.2, 0.2, 0.001, 0.001]
    _wait(lambda: answers)
    assert answers[0]["lr"] == 0.001 and (answers[0]["epoch"], answers[0]["t"]) == (2, 8)
    assert said == [f"gdlab: α = 0.001 from epoch 2, mini-batch t = 8 (was 0.2; requested "
                    f"through {tmp_path / CONTROL})"]
    status = read_status(tmp_path)
    assert status["state"] == "finished" and status["lr"] == 0.001 and not status["alive"]
    assert status["lr_request"]["epoch"] == 2 and status["epoch"] == 4


def test_status_while_running_has_eta_and_an_old_request_is_not_replayed(tmp_path):
    X, Y = _data()
    request_lr(tmp_path, 0.5)  # left over from before the run started: ignored
    seen = []

    def look(run):
        if run.epoch_num == 3:  # the watcher rewrites status.json every 0.01 s
            _wait(lambda: read_status(tmp_path)["epoch"] == 3)
            seen.append(read_status(tmp_path))

    model = _model()
    run = Fit(model, X, Y, GD(model.parameters(), lr=0.2), epochs=5, batch_size=32,
              progress=False, callbacks=[look, LiveControl(tmp_path, poll=0.005,
                                                           status_every=0.01, echo=None)])
    history = run.run()
    assert history.events == [] and history.lrs == [0.2] * 5
    (status,) = seen
    assert status["state"] == "running" and status["alive"] and status["pid"] == os.getpid()
    assert status["epochs"] == 5 and status["epoch"] == 3
    assert status["eta_s"] is not None and status["smoothed_cost"] > 0
    text = format_status(status, tmp_path)
    assert "running (process" in text and "ETA:" in text and "α:              0.2" in text


def test_bad_control_file_is_ignored_with_a_message(tmp_path):
    X, Y = _data()
    said = []

    def scribble(run):
        if run.epoch_num == 1:
            (tmp_path / CONTROL).write_text('{"lr": -3}')
            _wait(lambda: said)

    model = _model()
    history = Fit(model, X, Y, GD(model.parameters(), lr=0.2), epochs=2, progress=False,
                  callbacks=[scribble, LiveControl(tmp_path, poll=0.005, echo=said.append)]).run()
    assert history.lrs == [0.2, 0.2]
    assert said[0].startswith("gdlab: ignored") and "lr must be a finite number > 0" in said[0]


@pytest.mark.parametrize("lr, message", [
    (0, r"lr must be a finite number > 0, got 0"),
    (-1e-3, r"lr must be a finite number > 0"),
    (float("nan"), r"lr must be a finite number > 0, got nan"),
    ("0.1", r"lr must be a finite number > 0, got '0.1'"),
])
def test_request_lr_checks_its_arguments(tmp_path, lr, message):
    with pytest.raises(ValueError, match=message):
        request_lr(tmp_path, lr)
    assert not (tmp_path / CONTROL).exists()


def test_request_lr_needs_a_folder(tmp_path):
    with pytest.raises(ValueError, match=r"is not a folder"):
        request_lr(tmp_path / "nope", 0.1)


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_killed_run_shows_as_not_running(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"gdlab": "0.1.0", "command": "fit"}')
    import socket

    (tmp_path / STATUS).write_text(json.dumps({
        "state": "running", "pid": _dead_pid(), "host": socket.gethostname(), "epoch": 7,
        "epochs": 50, "t": 84, "lr": 0.01, "smoothed_cost": 0.25, "elapsed_s": 3.5,
        "eta_s": 20.0, "updated": time.time(), "lr_request": None}))
    assert read_status(tmp_path)["alive"] is False
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "not running (process" in out and f"gdlab fit --resume {tmp_path}" in out
    assert "epoch:          7 of 50" in out and "ETA" not in out
    assert main(["lr", str(tmp_path), "0.001"]) == 2
    err = capsys.readouterr().err
    assert "is not running (state: gone (killed or crashed))" in err
    assert not (tmp_path / CONTROL).exists()


# --- the command line, with a gdlab fit running in another process ---------------------------


def _child(argv, log):
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(1, "w", closefd=False)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    status = main(argv)
    sys.stdout.flush()
    os._exit(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_gdlab_lr_and_status_on_a_running_fit(tmp_path, capsys):
    run = tmp_path / "run"
    log = tmp_path / "log.txt"
    argv = ["fit", "--data", "moons", "--layers", "2,4,1", "--optimizer", "gd", "--lr", "0.1",
            "--epochs", "100000", "--out", str(run), "-q"]
    child = multiprocessing.get_context("fork").Process(target=_child, args=(argv, str(log)))
    child.start()
    try:
        _wait(lambda: (run / STATUS).exists() and read_status(run)["epoch"] >= 1, timeout=60)
        assert main(["lr", str(run), "0.001", "--wait", "30"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{run}: α = 0.001 from epoch ") and "mini-batch t = " in out
        epoch = int(out.split("from epoch ")[1].split(",")[0])
        _wait(lambda: read_status(run)["lr"] == 0.001)
        assert main(["status", str(run)]) == 0
        shown = capsys.readouterr().out
        assert "state:          running (process" in shown and "α:              0.001" in shown
        assert "ETA:" in shown and "last α request: 0.001, applied from epoch" in shown
        assert main(["status", str(run), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["alive"] is True
        assert main(["fit", "--resume", str(run)]) == 2  # not while it runs
        assert f"is in use by process {child.pid} (gdlab fit) since " in capsys.readouterr().err
        assert main(["fit", "--epochs", "1", "--out", str(run)]) == 2  # nor overwritten
        assert f"is in use by process {child.pid} (gdlab fit) since " in capsys.readouterr().err
        os.kill(child.pid, signal.SIGINT)
        child.join(60)
        assert child.exitcode == 130
    finally:
        if child.is_alive():
            child.kill()
    text = log.read_text()
    assert f"gdlab: α = 0.001 from epoch {epoch}, mini-batch t =" in text  # acknowledged
    state, _ = latest_checkpoint(run)
    history = state["history"]
    (event,) = history["events"]
    assert (event["event"], event["epoch"], event["lr"], event["old_lr"]) == (
        "set_lr", epoch, 0.001, 0.1)
    assert history["lrs"][epoch:] == [0.001] * (len(history["lrs"]) - epoch)
    assert set(history["lrs"][:epoch - 1]) == {0.1}
    assert read_status(run)["state"] == "interrupted"
    assert main(["lr", str(run), "0.01"]) == 2
    assert "is not running (state: interrupted)" in capsys.readouterr().err
