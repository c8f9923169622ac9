"""Arrays on disk: ``.npy`` files read through memory mapping, for data larger than memory.

:func:`open_npy` opens one ``.npy`` file, or a folder of ``.npy`` shards (stacked along the
rows in the order of their names), as a :class:`MemmapArray`. ``fit`` and ``minibatches``
accept it in place of a tensor: each mini-batch gathers only its own rows (sorted within the
mini-batch, so that the disk is read in increasing offsets) into a fresh tensor, and the
operating system's page cache decides what stays in memory. Files are opened with
``np.load(mmap_mode="r")``: read-only, and never with ``allow_pickle``.

When the disk is slow at random reads, :func:`chunked_order` gives a chunk-wise shuffle: the
rows are cut into chunks of consecutive rows, the chunks are shuffled, and the rows within each
chunk; pass it to ``fit`` as ``batch_order``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch

#: files up to this size (e.g. the labels) are indexed through their mapping, which is faster
#: than one read per row and adds at most their size to resident memory
MAP_AT_MOST = 256 * 2**20


class MemmapArray:
    """Rows of one or more memory-mapped ``.npy`` arrays (same trailing shape and dtype).

    ``A[i]`` with an int, a slice or an array of row indices returns a torch tensor holding a
    copy of those rows; ``A.shape``, ``A.dtype``, ``len(A)`` describe the whole array.

    Resident memory stays bounded: rows of a C-ordered file are read with ``pread`` (runs of
    consecutive rows in one call; files over ``MAP_AT_MOST`` bytes) into the result, not
    touched through the mapping — pages
    touched through a mapping count in the process's resident memory, and the kernel maps
    whole cached folios (up to megabytes) per touch, so one mini-batch of random rows would map
    most of a cached file. The file pages stay in the operating system's page cache."""

    def __init__(self, arrays, paths=()):
        arrays = list(arrays)
        if not arrays:
            raise ValueError("a MemmapArray needs at least one array")
        tail, dtype = arrays[0].shape[1:], arrays[0].dtype
        for path, a in zip(paths or [None] * len(arrays), arrays, strict=True):
            if a.ndim < 1 or a.shape[1:] != tail or a.dtype != dtype:
                where = f" ({path})" if path else ""
                raise ValueError(f"the .npy shards must share their trailing shape and dtype: "
                                 f"{tail} {dtype} and {a.shape[1:]} {a.dtype}{where}")
        self.arrays, self.paths = arrays, [str(p) for p in paths]
        self.offsets = np.cumsum([0] + [a.shape[0] for a in arrays])
        self.shape = (int(self.offsets[-1]), *tail)
        self.dtype = dtype
        self._row_bytes = int(np.prod(tail, dtype=np.int64)) * dtype.itemsize
        self._files = [a.filename if isinstance(a, np.memmap) and a.filename and
                       a.flags.c_contiguous and hasattr(os, "preadv") and a.nbytes > MAP_AT_MOST
                       else None for a in arrays]
        self._fds = {}  # opened on first read, per process
        self._lock = threading.Lock()

    def _read(self, k: int, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` (within array k) into a new array: pread for files, else indexing."""
        a = self.arrays[k]
        if self._files[k] is None or self._row_bytes == 0:
            return np.asarray(a[index])
        fd = self._fds.get((k, os.getpid()))
        if fd is None:
            with self._lock:
                fd = self._fds.get((k, os.getpid()))
                if fd is None:
                    fd = self._fds[(k, os.getpid())] = os.open(self._files[k], os.O_RDONLY)
        out = np.empty((index.size, *self.shape[1:]), dtype=self.dtype)
        buffer, row = memoryview(out.reshape(-1).view(np.uint8)), self._row_bytes
        breaks = np.flatnonzero(np.diff(index) != 1) + 1
        starts = np.concatenate(([0], breaks)).tolist()
        ends = np.concatenate((breaks, [index.size])).tolist()
        first, base = index[starts].tolist(), a.offset
        for s, e, r in zip(starts, ends, first, strict=True):
            want = (e - s) * row
            if os.preadv(fd, [buffer[s * row:e * row]], base + r * row) != want:
                raise OSError(f"{self._files[k]} is shorter than its header says")
        return out

    def __reduce__(self):
        # pickled (e.g. for another process) as its file names, never as the data
        if self.paths:
            return (_reopen, (tuple(self.paths),))
        return (MemmapArray, (self.arrays,))

    def __del__(self):
        for fd in getattr(self, "_fds", {}).values():
            try:
                os.close(fd)
            except OSError:
                pass

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"MemmapArray(shape={self.shape}, dtype={self.dtype}, files={len(self.arrays)})"

    def rows(self, index) -> np.ndarray:
        """The rows ``index`` (int, slice or integer array) as an in-memory numpy array."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        if isinstance(index, slice):
            index = np.arange(*index.indices(self.shape[0]))
        index = np.asarray(index)
        scalar = index.ndim == 0
        index = np.atleast_1d(index).astype(np.int64, copy=False)
        if index.size and (index.min() < -self.shape[0] or index.max() >= self.shape[0]):
            raise IndexError(f"row index out of range for {self.shape[0]} rows")
        index = np.where(index < 0, index + self.shape[0], index)
        if len(self.arrays) == 1:
            out = self._read(0, index)
        else:
            out = np.empty((index.size, *self.shape[1:]), dtype=self.dtype)
            which = np.searchsorted(self.offsets, index, side="right") - 1
            for k in np.unique(which).tolist():
                mask = which == k
                out[mask] = self._read(k, index[mask] - self.offsets[k])
        return out[0] if scalar else out

    def __getitem__(self, index) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.rows(index)))


def _reopen(paths) -> MemmapArray:
    return MemmapArray([_load(Path(p)) for p in paths], paths)


def _load(file: Path):
    try:
        return np.load(file, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"{file} is not a numeric .npy array: {e}") from None


def open_npy(path) -> MemmapArray:
    """A ``.npy`` file, or a folder of ``.npy`` shards (rows stacked in name order), memory
    mapped read-only."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise FileNotFoundError(f"no .npy files in {path}")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"no such .npy file or folder: {path}")
    return MemmapArray([_load(file) for file in files], files)


def is_lazy(a) -> bool:
    """True for arrays whose rows are read on demand (a MemmapArray)."""
    return isinstance(a, MemmapArray)


def chunked_order(m: int, chunk_rows: int, generator: torch.Generator | None = None):
    """A chunk-wise shuffle of range(m): chunks of ``chunk_rows`` consecutive rows in random
    order, the rows within each chunk shuffled. Mini-batches cut from it read few, nearly
    contiguous regions of the file (for disks slow at random reads); the price is less mixing
    than a full permutation when ``chunk_rows`` is much larger than the mini-batch."""
    from .._checks import check_positive_int

    chunk_rows = check_positive_int("chunk_rows", chunk_rows)
    n_chunks = -(-m // chunk_rows)
    pieces = []
    for c in torch.randperm(n_chunks, generator=generator).tolist():
        start = c * chunk_rows
        size = min(chunk_rows, m - start)
        pieces.append(start + torch.randperm(size, generator=generator))
    return torch.cat(pieces)
