"""Writing files so that a crash never leaves a part of one under its final name, and the one
writer of a gdlab output folder's ``config.json``.

    atomic_write(path, data)   temporary file in the same folder, flushed, renamed into place
    write_config(folder, command, config)   {"gdlab": version, "command": ..., **config}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CONFIG = "config.json"


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


def atomic_write(path, data: bytes | str, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place: readers see the
    old content or the new, never a part. ``durable`` also flushes it to the disk (fsync)."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = temporary(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def write_config(folder, command: str, config: dict) -> Path:
    """``folder/config.json``: the settings of a gdlab output, marked as gdlab's (atomic)."""
    from . import __version__

    config = {"gdlab": __version__, "command": command, **config}
    return atomic_write(Path(folder) / CONFIG, json.dumps(config, indent=2) + "\n")
