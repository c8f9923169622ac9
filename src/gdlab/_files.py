"""Writing files so that a crash never leaves a part of one under its final name, the one
writer of a gdlab output folder's ``config.json``, and the lock that keeps one process per
output folder.

    atomic_write(path, data)   temporary file in the same folder, flushed, renamed into place
    atomic_path(path)          the same for writers that need a path (memmaps, CSV streams)
    write_config(folder, command, config)   {"gdlab": version, "command": ..., **config}
    lock_folder(folder, command)   this process's exclusive hold on an output folder

A write that fails (no space, file too large, read-only folder, permission) raises
:class:`WriteError`, whose text is the one line ``gdlab`` prints: what could not be written and
why — and, where a caller adds it, what is still safe (``with_note``).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

CONFIG = "config.json"
LOCK = ".gdlab.lock"


class WriteError(OSError):
    """A file gdlab could not write: ``str()`` is "could not write PATH: REASON", then the
    caller's ``note`` (e.g. that the last checkpoint is intact and how to resume)."""

    def __init__(self, path, reason: str, note: str = ""):
        self.path, self.reason, self.note = Path(path), str(reason), str(note)
        super().__init__(f"could not write {self.path}: {self.reason}"
                         + (f"; {self.note}" if self.note else ""))

    @classmethod
    def of(cls, error: OSError, path=None) -> WriteError:
        """``error`` (any OSError raised while writing) as a WriteError about ``path`` (by
        default the file the error names)."""
        if isinstance(error, WriteError):
            return error
        path = path if path is not None else error.filename
        return cls(path if path is not None else "a file",
                   error.strerror or " ".join(str(error).split()) or type(error).__name__)

    def with_note(self, note: str) -> WriteError:
        """The same error with ``note`` said after the reason."""
        return WriteError(self.path, self.reason, note)

    def __reduce__(self):  # (pickled between processes with its own arguments)
        return WriteError, (self.path, self.reason, self.note)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to the disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temporary(path: Path) -> Path:
    """The temporary name ``path`` is written under before the rename (one per process)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_path(path, *, durable: bool = True):
    """Yield the temporary path to write ``path``'s content to; when the block ends without an
    error, that file is renamed to ``path`` (readers see the old content or the new, never a
    part), after being flushed to the disk with ``durable``. On an error the temporary file is
    removed and ``path`` left as it was; an OSError is raised as :class:`WriteError`."""
    path = Path(path)
    tmp = temporary(path)
    try:
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise WriteError.of(error, path) from None
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write(path, data: bytes | str, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place (see
    :func:`atomic_path`); ``durable`` also flushes it to the disk (fsync)."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path, durable=durable) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def write_config(folder, command: str, config: dict) -> Path:
    """``folder/config.json``: the settings of a gdlab output, marked as gdlab's (atomic)."""
    from . import __version__

    config = {"gdlab": __version__, "command": command, **config}
    return atomic_write(Path(folder) / CONFIG, json.dumps(config, indent=2) + "\n")


# ---------------------------------------------------------------------------- the folder lock


class FolderInUse(ValueError):
    """The output folder is held by another process: "RUN is in use by process PID since
    TIME"."""


class FolderLock:
    """An exclusive hold on an output folder for one process: an ``flock`` on ``.gdlab.lock``
    in it, which also records the holder (process id, host, command, start time) for the
    message another process gets. The system drops the hold when the process ends however it
    ends, so the lock of a killed process is simply taken over. Use :func:`lock_folder`."""

    def __init__(self, folder, command: str):
        self.folder, self.command = Path(folder), command
        self.path = self.folder / LOCK
        self._fd = None
        self.created = False  # lock_folder made the folder

    def acquire(self) -> FolderLock:
        """Take the folder (which must exist); :class:`FolderInUse` if another process holds
        it, :class:`WriteError` if the lock file cannot be written."""
        import fcntl

        while self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise WriteError.of(error, self.path) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FolderInUse(self._holder()) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:  # its holder removed it as we opened it: try again
                same = False
            if not same:
                os.close(fd)
                continue
            self._fd = fd
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "since": datetime.datetime.now().isoformat(timespec="seconds")}
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, (json.dumps(holder) + "\n").encode(), 0)
        except OSError as error:
            self.release()
            raise WriteError.of(error, self.path) from None
        return self

    def _holder(self) -> str:
        try:
            holder = json.loads(self.path.read_text())
            who = f"process {int(holder['pid'])}"
            if holder.get("host") not in (None, socket.gethostname()):
                who += f" on {holder['host']}"
            since = str(holder["since"]).replace("T", " ")
            what = f" ({holder['command']})" if holder.get("command") else ""
            text = f"{who}{what} since {since}"
        except (OSError, ValueError, TypeError, KeyError):  # its holder is writing it now
            text = "another process"
        return (f"{self.folder} is in use by {text}: wait until it ends, or use another "
                f"folder")

    def release(self) -> None:
        """Give the folder back (the lock file is removed while still held, so a process that
        opened it meanwhile tries again on a new one)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass  # e.g. the folder became read-only: the hold ends with the close all the same
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> Path:
        if self._fd is None:
            self.acquire()
        return self.folder

    def __exit__(self, kind, error, trace) -> None:
        self.release()
        if kind is not None and self.created:  # a command that failed leaves no empty folder
            try:
                self.folder.rmdir()
            except OSError:
                pass  # (it holds something: keep it)


def lock_folder(folder, command: str) -> FolderLock:
    """Hold ``folder`` (created if needed) for this process until the returned lock is
    released (``with lock_folder(out, "gdlab sweep") as out: ...``, or ``.release()``); a second
    process gets :class:`FolderInUse` ("OUT is in use by process PID (COMMAND) since TIME")
    and changes nothing. ``gdlab status`` and ``gdlab lr`` take no lock."""
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError.of(error, folder) from None
    lock = FolderLock(folder, command)
    lock.created = created
    return lock.acquire()
