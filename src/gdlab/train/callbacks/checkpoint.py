"""Checkpoints of a running fit: written atomically, checked by checksum, loaded without
unpickling anything.

A checkpoint holds what :meth:`gdlab.Fit.state_dict` holds: the model's weights, the
optimizer's state (moments v and S, step counts t), the schedule's position, epoch_num and the
mini-batch step t, the manual α and every random-number generator state (torch's, the shuffle
generator's, numpy's and Python's), so a resumed run continues bit for bit — and the history,
which the :class:`Checkpoint` callback keeps out of it: the history is appended to
``history.jsonl`` as the run goes (one line of JSON an epoch: what it added), and a checkpoint
records how many bytes of that file it covers. So a checkpoint's size and cost stay the same
however long the run; :func:`read_checkpoint` puts the history covered back into the state,
and a resumed run cuts the file back to its checkpoint's length before appending.

On disk, in the run folder::

    checkpoint.pt        the latest checkpoint
    checkpoint.prev.pt   the one before it, kept until a newer one is complete
    history.jsonl        the history, appended an epoch at a time

Each file is one header line ``gdlab-checkpoint 1 <sha256 of the payload> <length>`` followed
by the payload, written by ``torch.save`` and read by ``torch.load(..., weights_only=True)``
(tensors and plain Python values only). A write goes to a temporary file that is flushed and
fsync'ed before it is renamed into place, so a crash at any moment leaves either the old or
the new checkpoint complete; a damaged file (truncated, edited, checksum mismatch) is
detected and the previous good one is used, with a message.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
import warnings
from pathlib import Path

import torch

from ..._checks import check_positive_int
from ..._files import WriteError, fsync_dir, temporary

CHECKPOINT = "checkpoint.pt"
HISTORY_LOG = "history.jsonl"
PREVIOUS = "checkpoint.prev.pt"
MAGIC = b"gdlab-checkpoint"
VERSION = 1
#: tests only: seconds to pause in the middle of each checkpoint write and between its renames,
#: so that a test can kill the process exactly there
TEST_DELAY_ENV = "GDLAB_TEST_CHECKPOINT_DELAY"
#: tests only: seconds to pause in the middle of each line appended to history.jsonl
TEST_HISTORY_DELAY_ENV = "GDLAB_TEST_HISTORY_DELAY"

__all__ = ["Checkpoint", "CheckpointError", "save_checkpoint", "read_checkpoint",
           "latest_checkpoint", "read_history", "HistoryLog", "CHECKPOINT", "PREVIOUS",
           "HISTORY_LOG"]


class CheckpointError(ValueError):
    """A checkpoint file that is missing, damaged or not a gdlab checkpoint."""


def _test_delay(name: str = TEST_DELAY_ENV) -> float:
    try:
        return max(0.0, float(os.environ.get(name, "0") or 0))
    except ValueError:
        return 0.0


def _encode(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    header = b"%s %d %s %d\n" % (MAGIC, VERSION, hashlib.sha256(payload).hexdigest().encode(),
                                 len(payload))
    return header + payload


def save_checkpoint(state: dict, run_dir) -> Path:
    """Write ``state`` (a :meth:`Fit.state_dict`) as ``run_dir/checkpoint.pt``; the checkpoint
    it replaces becomes ``checkpoint.prev.pt`` only once the new one is complete on disk."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = _encode(state)
    path, previous = run_dir / CHECKPOINT, run_dir / PREVIOUS
    for stale in run_dir.glob(f".{CHECKPOINT}.*.tmp"):  # left by a process killed mid-write
        if stale != temporary(path):
            stale.unlink(missing_ok=True)
    delay = _test_delay()
    tmp = temporary(path)
    try:
        with open(tmp, "wb") as f:
            if delay:
                f.write(data[:len(data) // 2])
                f.flush()
                time.sleep(delay)
            f.write(data[len(data) // 2:] if delay else data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as error:  # no space, file too large, read-only: the old checkpoint stays
        tmp.unlink(missing_ok=True)
        raise WriteError.of(error, path) from None
    if path.exists():
        os.replace(path, previous)
        if delay:
            time.sleep(delay)
    os.replace(tmp, path)
    fsync_dir(run_dir)
    return path


def read_checkpoint(path) -> dict:
    """The state saved in one checkpoint file; :class:`CheckpointError` (a ValueError) if it
    is missing, not a gdlab checkpoint, truncated or fails its checksum."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint {path}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    header, newline, payload = data.partition(b"\n")
    parts = header.split(b" ")
    if not newline or len(parts) != 4 or parts[0] != MAGIC:
        raise CheckpointError(f"{path} is not a gdlab checkpoint")
    try:
        version, digest, length = int(parts[1]), parts[2].decode("ascii"), int(parts[3])
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path} has a damaged header") from None
    if version != VERSION:
        raise CheckpointError(f"{path} is a version {version} checkpoint; this gdlab reads "
                              f"version {VERSION}")
    if len(payload) != length:
        raise CheckpointError(f"{path} is truncated ({len(payload)} of {length} bytes)")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"{path} is damaged (checksum mismatch)")
    try:
        state = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - anything torch.load raises means "unusable"
        message = " ".join(str(e).split())[:200]
        raise CheckpointError(f"{path} cannot be loaded: {message}") from None
    if not isinstance(state, dict) or "epoch_num" not in state:
        raise CheckpointError(f"{path} does not hold the state of a fit")
    if "history" not in state and "history_log" in state:
        state["history"] = read_history(path.parent / HISTORY_LOG,
                                        state["history_log"]["bytes"]).state_dict()
    return state


def read_history(path, length: int):
    """The history in the first ``length`` bytes of a ``history.jsonl``; CheckpointError if
    the file is shorter or damaged there."""
    from ..history import History

    try:
        with open(path, "rb") as f:
            data = f.read(length)
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) != length:
        raise CheckpointError(f"{path} is shorter ({len(data)} bytes) than its checkpoint "
                              f"says ({length} bytes)")
    history = History()
    try:
        for line in data.splitlines():
            history.extend(json.loads(line))
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path} is damaged within its first {length} bytes") from None
    return history


class HistoryLog:
    """A run's history appended to ``path`` as it grows: each :meth:`append` writes one line of
    JSON, what the history gained since the line before (:meth:`History.since`)."""

    def __init__(self, path):
        self.path, self.file, self.written = Path(path), None, None

    def start(self, history) -> None:
        """Continue the file where it holds exactly ``history`` (cutting off what a crash left
        after it); a file that does not hold it is written anew."""
        empty = history._lengths() == _empty_lengths()
        end = 0 if empty else self._end_of(history)
        if end is None:  # not this history: written anew, as one chunk
            self.file, self.written = open(self.path, "wb"), _empty_lengths()
        else:
            self.file = open(self.path, "r+b" if self.path.exists() else "wb")
            self.file.truncate(end)
            self.file.seek(end)
            self.written = history._lengths()
        self.append(history)

    def _end_of(self, history):
        """The byte offset after which the file holds exactly ``history``, or None."""
        from ..history import History

        target, held, offset = history._lengths(), History(), 0
        try:
            with open(self.path, "rb") as f:
                for line in f:
                    if not line.endswith(b"\n"):
                        break
                    held.extend(json.loads(line))
                    offset += len(line)
                    if held._lengths() == target:
                        return offset
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return None

    def append(self, history) -> None:
        chunk = history.since(self.written)
        if any(chunk[name] for name in ("costs", "epoch_costs", "lrs", "times", "events")) \
                or any(chunk["metrics"].values()):
            line, delay = json.dumps(chunk).encode() + b"\n", _test_delay(TEST_HISTORY_DELAY_ENV)
            try:
                if delay:
                    self.file.write(line[:len(line) // 2])
                    self.file.flush()
                    time.sleep(delay)
                    line = line[len(line) // 2:]
                self.file.write(line)
                self.file.flush()
            except OSError as error:  # what the checkpoint covers stays intact
                raise WriteError.of(error, self.path) from None
        self.written = history._lengths()

    def sync(self) -> int:
        """Flush the file to the disk; its length in bytes."""
        try:
            os.fsync(self.file.fileno())
        except OSError as error:
            raise WriteError.of(error, self.path) from None
        return self.file.tell()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _empty_lengths() -> dict:
    return {"costs": 0, "epoch_costs": 0, "lrs": 0, "times": 0, "events": 0, "metrics": {}}


def latest_checkpoint(run_dir, on_message=None) -> tuple[dict, Path] | None:
    """``(state, path)`` of the newest good checkpoint in ``run_dir``, or None if it has none.

    If ``checkpoint.pt`` is missing (a crash between the two renames of a write) or damaged,
    ``checkpoint.prev.pt`` is used and ``on_message(text)`` (default: ``warnings.warn``) says
    so. If every checkpoint there is damaged, raises :class:`CheckpointError`.
    """
    run_dir = Path(run_dir)
    say = on_message if on_message is not None else (lambda text: warnings.warn(text,
                                                                                stacklevel=3))
    problems = []
    for name in (CHECKPOINT, PREVIOUS):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state = read_checkpoint(path)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        if problems or name == PREVIOUS:
            reason = problems[0] if problems else f"{run_dir / CHECKPOINT} is missing"
            say(f"{reason}; using the previous checkpoint {path} (epoch {state['epoch_num']})")
        return state, path
    if problems:
        raise CheckpointError("; ".join(problems) + " — no good checkpoint left; delete the "
                              "damaged files to start over")
    return None


class Checkpoint:
    """Callback: save the fit's state into ``run_dir`` every ``every`` epochs — but not within
    ``min_seconds`` of the last checkpoint (a fast run's every 10 epochs would be dozens a
    second) —, at the end of the run, and when it is interrupted.

    With ``handle_sigint`` (the default), Ctrl-C (SIGINT) stops the run cleanly: the current
    epoch is finished, a checkpoint is written and ``KeyboardInterrupt`` is raised; a second
    Ctrl-C stops at once, after restoring the state at the start of the epoch and saving it.
    Resume with ``fit(..., run_dir=run_dir, resume=True)`` or
    ``Fit.load_state_dict(latest_checkpoint(run_dir)[0])``.
    """

    def __init__(self, run_dir, every: int = 1, *, handle_sigint: bool = True,
                 min_seconds: float = 0.0):
        self.run_dir = Path(run_dir)
        self.every = check_positive_int("checkpoint every", every)
        self.min_seconds = float(min_seconds)
        self._last_save = -math.inf
        self.handle_sigint = bool(handle_sigint)
        self.saved_epoch = None
        self.log = HistoryLog(self.run_dir / HISTORY_LOG)

    def save(self, run) -> Path:
        """The run's state, its history up to now in ``history.jsonl`` (flushed to the disk
        first) and the length of that file in the checkpoint."""
        from ..state import run_state

        self.log.append(run.history)
        state = {**run_state(run), "history_log": {"bytes": self.log.sync()}}
        path = save_checkpoint(state, self.run_dir)
        self.saved_epoch, self._last_save = run.epoch_num, time.monotonic()
        return path

    def on_fit_start(self, run) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        run.keep_snapshots = True  # so that an interrupt mid-epoch can go back to its start
        if self.handle_sigint:
            run.catch_sigint = True
        self.saved_epoch = None
        if run.epoch_num == 0:  # a fresh run: checkpoints of an earlier run must not be resumed
            for name in (CHECKPOINT, PREVIOUS):
                (self.run_dir / name).unlink(missing_ok=True)
        self.log.start(run.history)

    def on_epoch_end(self, run) -> None:
        self.log.append(run.history)
        if run.epoch_num % self.every == 0 and \
                time.monotonic() - self._last_save >= self.min_seconds:
            self.save(run)

    def on_interrupt(self, run) -> None:
        if self.saved_epoch != run.epoch_num:
            self.save(run)
        self.log.close()

    def on_fit_end(self, run) -> None:
        if self.saved_epoch != run.epoch_num:
            self.save(run)
        self.log.append(run.history)
        self.log.close()


def resume_from(run, resume) -> None:
    """Continue ``run`` from ``resume``: True (the newest good checkpoint in its run_dir, if
    any), a checkpoint file or run folder, or a state dict."""
    if isinstance(resume, dict):
        run.load_state_dict(resume)
        return
    if resume is True:
        if run.run_dir is None:
            raise ValueError("resume=True needs run_dir, the folder of the checkpoints")
        found = latest_checkpoint(run.run_dir)
        if found is not None:
            run.load_state_dict(found[0])
        return
    path = Path(resume)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise ValueError(f"no checkpoint in {path} to resume from")
        run.load_state_dict(found[0])
    else:
        run.load_state_dict(read_checkpoint(path))
