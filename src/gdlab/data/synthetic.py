"""Synthetic classification sets of any size, written to disk in chunks (never whole in
memory), for training from disk (:mod:`gdlab.data.memmap`) and the scale-out benchmark.

    make_classification_npy(out, rows, features)   out/X.npy and out/Y.npy
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._checks import check_positive_int
from .._files import atomic_path

__all__ = ["make_classification_npy", "npy_bytes", "check_settings"]


def check_settings(rows: int, features: int, classes: int = 2, chunk_rows: int = 100_000,
                   seed: int = 0) -> None:
    """ValueError unless rows, features and chunk_rows are integers >= 1, classes >= 2 and
    seed >= 0 (checked before anything is written)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    check_positive_int("rows", rows)
    check_positive_int("features", features)
    check_positive_int("chunk_rows", chunk_rows)
    check_positive_int("classes", classes)
    if classes < 2:
        raise ValueError(f"classes must be at least 2, got {classes}")


def npy_bytes(rows: int, features: int) -> int:
    """The bytes :func:`make_classification_npy` writes: X in float32, Y in int64 (the
    files' headers, 128 bytes each, aside)."""
    return rows * features * 4 + rows * 8


def _reserve(path: Path) -> None:
    """Claim the disk space of the (sparse) file at ``path`` now: a full disk then fails here,
    with an OSError, rather than with a SIGBUS when a page of its memmap is written back."""
    if not hasattr(os, "posix_fallocate"):  # macOS: the space is claimed as pages are written
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def make_classification_npy(out, rows: int, features: int, *, classes: int = 2, seed: int = 0,
                            chunk_rows: int = 100_000, noise: float = 0.5,
                            progress: bool = True) -> tuple[Path, Path]:
    """Write ``out/X.npy`` (rows × features, float32, standard normal) and ``out/Y.npy``
    (int64 class indices from a random linear teacher plus Gaussian noise on its logits),
    ``chunk_rows`` rows at a time, each file atomically: under its name there is the whole
    file or none (a full disk or a kill leaves no part of one). Returns the two paths."""
    from tqdm.auto import tqdm

    check_settings(rows, features, classes, chunk_rows, seed)
    out = Path(out)
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((features, 1 if classes == 2 else classes)) / np.sqrt(features)
    x_path, y_path = out / "X.npy", out / "Y.npy"
    with atomic_path(x_path) as x_tmp:  # (nested, so that an error names its own file)
        X = np.lib.format.open_memmap(x_tmp, mode="w+", dtype=np.float32,
                                      shape=(rows, features))
        _reserve(x_tmp)
        with atomic_path(y_path) as y_tmp:
            Y = np.lib.format.open_memmap(y_tmp, mode="w+", dtype=np.int64, shape=(rows,))
            _reserve(y_tmp)
            with tqdm(total=rows, unit="row", unit_scale=True,
                      disable=not progress or None, leave=False) as bar:
                for start in range(0, rows, chunk_rows):
                    end = min(start + chunk_rows, rows)
                    X_chunk = rng.standard_normal((end - start, features), dtype=np.float32)
                    logits = X_chunk @ teacher.astype(np.float32)
                    logits += noise * rng.standard_normal(logits.shape, dtype=np.float32)
                    X[start:end] = X_chunk
                    Y[start:end] = (logits[:, 0] > 0) if classes == 2 else logits.argmax(axis=1)
                    X.flush()  # written pages can leave memory
                    bar.update(end - start)
            Y.flush()
            del Y  # closed before it is renamed into place
        X.flush()
        del X
    return x_path, y_path
