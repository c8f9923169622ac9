"""Exact resume from the command line: ``gdlab fit`` killed with SIGKILL at random moments —
in the middle of a checkpoint write and between its two renames too — and stopped once with
Ctrl-C, resumed with ``gdlab fit --resume`` each time, ends with the same model.safetensors and
history.csv (every column but the wall-clock time) as a run that was never interrupted.

Most runs are forked from the test process, which has imported torch already (a fresh
interpreter takes seconds to start); the Ctrl-C run is a real ``python -m gdlab.cli``.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from gdlab.cli import main
from gdlab.train.callbacks.checkpoint import CHECKPOINT, PREVIOUS, TEST_DELAY_ENV, latest_checkpoint

EPOCHS = 80
ARGS = ["fit", "--data", "moons", "--layers", "2,6,3,1", "--optimizer", "adam", "--lr", "0.01",
        "--schedule", "plateau:patience=3,beta=0.5", "--epochs", str(EPOCHS), "--batch-size",
        "50", "--seed", "3", "--dtype", "float64", "--checkpoint-every", "1", "-q"]

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                                reason="needs fork and POSIX signals")


def _child(argv, log, delay):
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(1, "w", closefd=False)
    os.environ.pop(TEST_DELAY_ENV, None)
    if delay:
        os.environ[TEST_DELAY_ENV] = str(delay)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    status = main(argv)
    sys.stdout.flush()
    os._exit(status)


class _Forked:
    """``gdlab`` run in a forked child (starts in milliseconds)."""

    def __init__(self, argv, log, delay=None):
        self.process = multiprocessing.get_context("fork").Process(
            target=_child, args=(argv, str(log), delay))
        self.process.start()
        self.log = log

    def alive(self):
        return self.process.is_alive()

    def kill(self):
        self.process.kill()  # SIGKILL
        self.process.join()
        assert self.process.exitcode == -signal.SIGKILL, self.log.read_text()

    def finish(self, timeout=120):
        self.process.join(timeout)
        return self.process.exitcode, self.log.read_text()


def _wait_for(condition, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if not process.alive():
            raise AssertionError(f"gdlab exited too early:\n{process.log.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out")
        time.sleep(0.003)


def _stamp(run):
    try:
        return (run / CHECKPOINT).stat().st_mtime_ns
    except OSError:
        return None


def _after_next_checkpoint(run, process):
    """Wait until this process has written a checkpoint of its own (so it is training)."""
    before = _stamp(run)
    _wait_for(lambda: _stamp(run) not in (None, before), process)


def _epoch(run):
    found = latest_checkpoint(run, on_message=lambda text: None)
    return found[0]["epoch_num"] if found else 0


def _rows(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(f)]


def test_sigkill_at_random_moments_and_resume_is_exact(tmp_path, capsys):
    rng = random.Random(20240605)
    reference = tmp_path / "reference"
    assert main([*ARGS, "--out", str(reference)]) == 0
    capsys.readouterr()

    run = tmp_path / "run"
    resume = ["fit", "--resume", str(run), "-q"]
    logs = iter(tmp_path / f"log{i}.txt" for i in range(100))
    done = []  # (how it was stopped, epochs in the checkpoint afterwards)

    # a fresh run, killed at a random moment once it has started; each checkpoint write is
    # slowed down a little by a test hook, so that random kills land in writes and in training
    p = _Forked([*ARGS, "--out", str(run)], next(logs), delay=0.01)
    _wait_for(lambda: (run / "status.json").exists(), p)
    time.sleep(rng.uniform(0.0, 0.3))
    p.kill()
    done.append(("random", _epoch(run)))

    # killed in the middle of writing a checkpoint (its own temporary file is half written)
    p = _Forked(resume, next(logs), delay=0.2)
    own = run / f".{CHECKPOINT}.{p.process.pid}.tmp"
    _wait_for(own.exists, p)
    time.sleep(0.05)
    p.kill()
    assert own.exists()
    done.append(("mid-write", _epoch(run)))

    # killed between the two renames: checkpoint.pt is gone, checkpoint.prev.pt is the last good
    p = _Forked(resume, next(logs), delay=0.2)
    _after_next_checkpoint(run, p)
    _wait_for(lambda: (run / PREVIOUS).exists() and not (run / CHECKPOINT).exists(), p)
    p.kill()
    messages = []
    state, used = latest_checkpoint(run, on_message=messages.append)
    assert used.name == PREVIOUS and "is missing" in messages[0]
    done.append(("between renames", state["epoch_num"]))

    # Ctrl-C in a real gdlab process: finishes the epoch, saves, says how to go on, exits 130
    env = {**os.environ, "OMP_NUM_THREADS": "1", TEST_DELAY_ENV: "0.01"}
    real = subprocess.Popen([sys.executable, "-m", "gdlab.cli", *resume], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    real.alive = lambda: real.poll() is None
    real.log = run / "config.json"  # (nothing better to show if it exits early)
    _after_next_checkpoint(run, real)
    real.send_signal(signal.SIGINT)
    out, err = real.communicate(timeout=60)
    assert real.returncode == 130, err
    assert "Traceback" not in err
    assert f"continue with: gdlab fit --resume {run}" in err.splitlines()[-1], err
    assert "resuming" in out and "warning" in err  # it said it used checkpoint.prev.pt
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    done.append(("ctrl-c", _epoch(run)))

    # more kills at random moments
    for _ in range(6):
        p = _Forked(resume, next(logs), delay=0.01)
        _after_next_checkpoint(run, p)
        time.sleep(rng.uniform(0.0, 0.15))
        p.kill()
        done.append(("random", _epoch(run)))

    # resumed to the end
    p = _Forked(resume, next(logs))
    status, log = p.finish()
    assert status == 0, log
    assert "resuming" in log or "writing its results" in log, log

    assert _rows(run / "history.csv") == _rows(reference / "history.csv"), done
    assert len(_rows(run / "history.csv")) == EPOCHS
    a, b = load_file(run / "model.safetensors"), load_file(reference / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), done
    assert json.loads((run / "events.json").read_text()) == json.loads(
        (reference / "events.json").read_text())
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert not list(run.glob(".*.tmp"))  # the temporary files of the killed writes are gone
    assert [epochs for _, epochs in done] == sorted(epochs for _, epochs in done)
    assert done[-1][1] < EPOCHS  # the last kill was still training


def test_sigkill_during_a_history_append_and_resume_is_exact(tmp_path, capsys, monkeypatch):
    """The history goes to history.jsonl an epoch at a time; a kill half-way through a line
    leaves a part of it after the last checkpoint, which the resumed run cuts off."""
    from gdlab.train.callbacks.checkpoint import HISTORY_LOG, TEST_HISTORY_DELAY_ENV

    reference = tmp_path / "reference"
    assert main([*ARGS, "--out", str(reference)]) == 0
    capsys.readouterr()
    run, log = tmp_path / "run", tmp_path / "run" / HISTORY_LOG
    monkeypatch.setenv(TEST_HISTORY_DELAY_ENV, "0.3")
    p = _Forked([*ARGS, "--out", str(run)], tmp_path / "log0.txt")

    def half_a_line_after_three():
        data = log.read_bytes() if log.exists() else b""
        return data.count(b"\n") >= 3 and not data.endswith(b"\n")

    _wait_for(half_a_line_after_three, p)
    p.kill()
    assert not log.read_bytes().endswith(b"\n") and _epoch(run) >= 2
    monkeypatch.delenv(TEST_HISTORY_DELAY_ENV)
    status, out = _Forked(["fit", "--resume", str(run), "-q"], tmp_path / "log1.txt").finish()
    assert status == 0, out
    assert _rows(run / "history.csv") == _rows(reference / "history.csv")
    a, b = load_file(run / "model.safetensors"), load_file(reference / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert log.read_bytes().endswith(b"\n") and log.read_bytes().count(b"\n") == EPOCHS


def test_a_checkpoints_size_does_not_grow_with_the_run(tmp_path):
    from gdlab import MLP, Adam, fit
    from gdlab.train.callbacks.checkpoint import read_checkpoint

    X = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    Y = (X[:, :1] > 0).float()
    sizes = {}
    for epochs in (20, 200):
        torch.manual_seed(0)
        model = MLP([2, 4, 1])
        history = fit(model, X, Y, Adam(model.parameters(), lr=0.01), epochs=epochs,
                      batch_size=20, seed=0, progress=False, run_dir=tmp_path / str(epochs))
        sizes[epochs] = (tmp_path / str(epochs) / CHECKPOINT).stat().st_size
        state = read_checkpoint(tmp_path / str(epochs) / CHECKPOINT)
        assert state["history"]["costs"] == history.costs  # put back from history.jsonl
        assert len(history.costs) == 10 * epochs
    # the same but for a counter's bytes (torch.save aligns its records at 64 bytes), where the
    # 1800 more mini-batch costs alone would add over 16 kB
    assert abs(sizes[200] - sizes[20]) <= 64, sizes
