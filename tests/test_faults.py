"""Faults of the environment, met as a user meets them: a file-size limit (RLIMIT_FSIZE, what a
full disk does to a write), a read-only folder, two processes on one output folder and the lock
a killed process left. Each is one line on stderr and exit status 2, nothing half-written under
a final name, nothing of another run changed, and a fit continues exactly with --resume.

(SIGKILL in the middle of a history append or a checkpoint write, and Ctrl-C, are in
tests/test_resume.py and tests/test_checkpoint.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from gdlab._files import (
    LOCK,
    FolderInUse,
    WriteError,
    atomic_path,
    atomic_write,
    lock_folder,
)
from gdlab.cli import main

FIT = ["fit", "--data", "moons", "--layers", "2,8,1", "--dtype", "float64", "-q"]
WRITE_FAILED = r"could not write (\S+): {reason}"
RESUME_NOTE = r"; the checkpoint at epoch (\d+) is intact: gdlab fit --resume {out} continues " \
              r"from there$"
#: a process that holds a folder until it is killed (prints "held" once it does)
HOLDER = ("import sys, time; from gdlab._files import lock_folder; "
          "lock = lock_folder(sys.argv[1], 'gdlab sweep'); print('held', flush=True); "
          "time.sleep(600)")


def gdlab(*argv, file_size: int | None = None, timeout: float = 600):
    """``gdlab ARGV`` in a child process, with files limited to ``file_size`` bytes: a write
    past it fails with EFBIG ("File too large"), as a full disk fails with ENOSPC."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (Python ignores it too)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    return subprocess.run([sys.executable, "-m", "gdlab.cli", *map(str, argv)],
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit if file_size is not None else None)


def one_line(result, command: str) -> str:
    """The one error line of a command that must have failed with exit status 2."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"gdlab {command}: error: "), lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temporaries(folder: Path) -> list:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def same_run(a: Path, b: Path) -> None:
    """Two fit run folders hold the same run: equal weights, equal history.csv but for the
    wall-clock time."""
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)

    def rows(folder):
        lines = (folder / "history.csv").read_text().splitlines()
        return [line.rsplit(",", 1)[0] for line in lines]

    assert rows(a) == rows(b)


@contextmanager
def read_only(folder: Path):
    """``folder`` made read-only for this test's processes: by its mode, or for root (whom a
    mode does not stop) by the immutable attribute; skips where neither can be had."""
    if os.geteuid() != 0:
        folder.chmod(0o555)

        def undo():
            folder.chmod(0o755)
    else:
        if shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("running as root, and this file system takes no chattr +i: no way to "
                        "make a folder read-only for root")

        def undo():
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    try:
        try:
            (folder / "probe").touch()
        except OSError:
            pass
        else:
            (folder / "probe").unlink()
            pytest.skip(f"{folder} stayed writable")
        yield folder
    finally:
        undo()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished gdlab fit run folder (3 epochs)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main([*FIT, "--epochs", "3", "--out", str(run)]) == 0
    return run


# ---------------------------------------------------------------------------- atomic writes


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "results.csv"
    atomic_write(path, "old\n")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed half-way")
    assert path.read_text() == "old\n" and temporaries(tmp_path) == []
    with pytest.raises(WriteError) as info, atomic_path(path) as tmp:
        tmp.write_text("half")
        raise OSError(27, "File too large")
    assert str(info.value) == f"could not write {path}: File too large"
    assert path.read_text() == "old\n" and temporaries(tmp_path) == []
    with pytest.raises(WriteError, match=r"could not write .*nowhere/x\.json: No such file"):
        atomic_write(tmp_path / "nowhere" / "x.json", "{}")
    note = WriteError.of(OSError(28, "No space left on device", str(path))).with_note("all safe")
    assert str(note) == f"could not write {path}: No space left on device; all safe"
    assert isinstance(note, OSError)
    assert str(pickle.loads(pickle.dumps(note))) == str(note)  # (a worker's error, sent on)


def test_file_size_limit_while_writing_the_report_then_resume_writes_it(tmp_path):
    """Under `ulimit -f 64` a 50-epoch fit trains (its checkpoints and history are smaller)
    and fails on the report's first large file: one line naming it, nothing of it left, and
    --resume writes the results."""
    out = tmp_path / "ul"
    line = one_line(gdlab(*FIT, "--epochs", "50", "--out", out, file_size=64 * 1024), "fit")
    match = re.search(WRITE_FAILED.format(reason="File too large")
                      + RESUME_NOTE.format(out=re.escape(str(out))), line)
    assert match, line
    failed, epoch = Path(match.group(1)), int(match.group(2))
    assert failed.parent == out and not failed.exists() and epoch == 50
    assert temporaries(out) == []
    assert not (out / "report.html").exists()
    done = gdlab("fit", "--resume", out, "-q")
    assert done.returncode == 0, done.stderr
    assert "has trained all 50 epochs: writing its results" in done.stdout
    assert (out / "report.html").stat().st_size > 64 * 1024 and (out / "history.csv").exists()


def test_file_size_limit_during_training_then_exact_resume(tmp_path):
    """The limit hit while the history is appended, mid-run: the run stops with one line
    naming history.jsonl and the last good checkpoint; --resume continues bit for bit."""
    whole = tmp_path / "whole"
    assert main([*FIT, "--epochs", "300", "--out", str(whole)]) == 0
    checkpoint = (whole / "checkpoint.pt").stat().st_size
    history = (whole / "history.jsonl").stat().st_size
    assert history > 2 * checkpoint  # so the limit falls between them
    limit = (checkpoint + history) // 2
    out = tmp_path / "cut"
    line = one_line(gdlab(*FIT, "--epochs", "300", "--out", out, file_size=limit), "fit")
    match = re.search(WRITE_FAILED.format(reason="File too large")
                      + RESUME_NOTE.format(out=re.escape(str(out))), line)
    assert match, line
    assert Path(match.group(1)) == out / "history.jsonl"
    epoch = int(match.group(2))
    assert 10 <= epoch < 300 and epoch % 10 == 0
    assert temporaries(out) == [] and not (out / "model.safetensors").exists()
    done = gdlab("fit", "--resume", out, "-q")
    assert done.returncode == 0, done.stderr
    assert f"resuming {out} at epoch {epoch} of 300" in done.stdout
    same_run(out, whole)


def test_file_size_limit_in_make_data(tmp_path):
    out = tmp_path / "data"
    result = gdlab("make-data", "--rows", "20000", "--features", "10", "--out", out, "-q",
                   file_size=100 * 1024)
    assert one_line(result, "make-data") == \
        f"gdlab make-data: error: could not write {out / 'X.npy'}: File too large"
    assert result.stdout.startswith(f"writing 20000 × 10 float32 features and their int64 "
                                    f"labels, 960 kB, to {out}")
    assert not out.exists()  # the folder it made, left empty, is gone again


def test_make_data_says_its_size_before_it_writes(capsys):
    from gdlab.cli.data import _size
    from gdlab.data.synthetic import npy_bytes

    with pytest.raises(SystemExit):
        main(["make-data", "--help"])
    default = _size(npy_bytes(1_000_000, 100))
    assert default == "408 MB"
    assert f"with the default --features that is {default} on disk" in " ".join(
        capsys.readouterr().out.split())


def test_file_size_limit_in_figures_keeps_the_earlier_output(tmp_path):
    out = tmp_path / "figs"
    assert main(["figures", "3", "--out", str(out)]) == 0
    before = snapshot(out)
    line = one_line(gdlab("figures", "3", "--out", out, file_size=20 * 1024), "figures")
    assert re.fullmatch(r"gdlab figures: error: " + WRITE_FAILED.format(
        reason="File too large"), line), line
    assert snapshot(out) == before and temporaries(out) == []


# ---------------------------------------------------------------------------- read-only folders


def test_read_only_figures_folder(tmp_path):
    out = tmp_path / "figs"
    assert main(["figures", "3", "--out", str(out)]) == 0
    before = snapshot(out)
    with read_only(out):
        line = one_line(gdlab("figures", "3", "--out", out), "figures")
    assert re.fullmatch(r"gdlab figures: error: could not write \S+: (Permission denied|"
                        r"Operation not permitted|Read-only file system)", line), line
    assert snapshot(out) == before and temporaries(out) == []


def test_read_only_run_folder_is_not_resumed_and_not_changed(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    with read_only(run):
        line = one_line(gdlab("fit", "--resume", run, "--epochs", "5", "-q"), "fit")
    assert re.search(r"could not write \S+: (Permission denied|Operation not permitted|"
                     r"Read-only file system)", line), line
    assert snapshot(run) == before


# ------------------------------------------------------------------------ one process per folder


@contextmanager
def held(folder: Path):
    """Another process holding ``folder`` (as a running gdlab sweep would); yields it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_second_process_is_refused_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "figs"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"gdlab": "0", "command": "figures"}))
    with held(out) as holder:
        before = snapshot(out)
        assert main(["figures", "3", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert re.fullmatch(rf"gdlab figures: error: {re.escape(str(out))} is in use by process "
                            rf"{holder.pid} \(gdlab sweep\) since \d{{4}}-\d\d-\d\d "
                            r"\d\d:\d\d:\d\d: wait until it ends, or use another folder\n", err)
        assert snapshot(out) == before
        with pytest.raises(FolderInUse):
            lock_folder(out, "gdlab figures")
    # killed, the holder left its lock file behind: the next command takes it over
    assert json.loads((out / LOCK).read_text())["pid"] == holder.pid
    assert main(["figures", "3", "--out", str(out)]) == 0
    assert not (out / LOCK).exists() and (out / "3_ewa_temperatures.png").exists()


def test_status_works_on_a_held_folder(tmp_path, finished_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    with held(run):
        assert main(["status", str(run)]) == 0
        assert "state:          finished" in capsys.readouterr().out


def test_two_fits_on_one_folder(tmp_path):
    """While a fit runs, a second `gdlab fit --out` on its folder and a `--resume` of it are
    refused at once and change nothing; `gdlab status` and `gdlab lr` work on it; Ctrl-C then
    stops it with its checkpoint and gives the folder back."""
    out = tmp_path / "same"
    env = {**os.environ, "GDLAB_TEST_CHECKPOINT_DELAY": "0.1"}  # so that it runs a while
    first = subprocess.Popen([sys.executable, "-m", "gdlab.cli", *FIT, "--epochs", "2000",
                              "--checkpoint-every", "1", "--out", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        config = (out / "config.json").read_bytes()
        for argv in ([*FIT, "--epochs", "40", "--out", out], ["fit", "--resume", out, "-q"]):
            line = one_line(gdlab(*argv), "fit")
            assert re.search(rf"{re.escape(str(out))} is in use by process {first.pid} "
                             r"\(gdlab fit\) since ", line), line
        assert (out / "config.json").read_bytes() == config
        status = gdlab("status", out)
        assert status.returncode == 0 and f"running (process {first.pid})" in status.stdout
        lr = gdlab("lr", out, "0.005")
        assert lr.returncode == 0 and "α = 0.005 from epoch" in lr.stdout, lr.stderr
    finally:
        first.send_signal(signal.SIGINT)
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 130, stderr
    assert not (out / LOCK).exists()


# ---------------------------------------------------------------------------- the lock itself


def test_the_lock_is_exclusive_and_records_its_holder(tmp_path):
    with lock_folder(tmp_path / "new", "gdlab make-data") as folder:
        holder = json.loads((folder / LOCK).read_text())
        assert holder["pid"] == os.getpid() and holder["command"] == "gdlab make-data"
        with pytest.raises(FolderInUse, match=rf"is in use by process {os.getpid()} "
                                              r"\(gdlab make-data\) since "):
            lock_folder(folder, "gdlab sweep")
    assert not (folder / LOCK).exists()
    with lock_folder(folder, "gdlab sweep"):  # free again
        pass
