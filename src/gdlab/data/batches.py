"""Mini-batches of in-memory tensors: shuffle, then partition, with no per-example Python work."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .._checks import check_positive_int


def _as_tensor(a, name):
    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(a).__name__}")


def shuffled_order(m: int, generator: torch.Generator | None = None, device=None):
    """A random permutation of the m row indices (torch's RNG, or ``generator``)."""
    order = torch.randperm(m, generator=generator)  # (made on the CPU, as the generator is)
    return order if device is None or str(device) == "cpu" else order.to(device)


def checked_order(order, m: int, device=None, name: str = "order") -> torch.Tensor:
    """``order`` as a tensor on ``device``; ValueError unless it has one index per row."""
    order = torch.as_tensor(order, device=device)
    if order.shape != (m,):
        raise ValueError(f"{name} must be a permutation of range({m}), got shape "
                         f"{tuple(order.shape)}")
    return order


def minibatches(X, Y, batch_size: int = 64, shuffle: bool = True, seed: int | None = None,
                order=None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (X^{t}, Y^{t}) for one epoch: shuffle the rows, then cut them in order into
    mini-batches of ``batch_size``; the last one holds the remainder.

    batch_size = m gives batch gradient descent, 1 gives stochastic gradient descent. Rows are
    gathered once per epoch with one indexing operation on the tensors' own device. The same
    ``seed`` gives the same order; ``order`` (a permutation of range(m)) fixes it explicitly.
    X and Y may be :class:`gdlab.data.memmap.MemmapArray` (``.npy`` on disk): then each mini-batch
    reads only its own rows, sorted within the mini-batch (docs/scaling.md).
    """
    from .memmap import is_lazy

    lazy = is_lazy(X) or is_lazy(Y)
    X, Y = (a if is_lazy(a) else _as_tensor(a, name) for a, name in ((X, "X"), (Y, "Y")))
    m = X.shape[0]
    if Y.shape[0] != m:
        raise ValueError(f"X and Y must have the same number of rows (examples), "
                         f"got {m} and {Y.shape[0]}")
    batch_size = check_positive_int("batch_size", batch_size)
    if order is not None:
        order = checked_order(order, m, None if lazy else X.device)
    elif shuffle:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        order = shuffled_order(m, generator, None if lazy else X.device)
    if lazy:
        return _gathered_batches(X, Y, batch_size, order if order is not None else
                                 torch.arange(m))
    if order is not None:
        X, Y = X[order], Y[order]
    return partition(X, Y, batch_size)


#: mini-batches whose views ``partition`` makes at a time
PARTITION_AHEAD = 256


def partition(X, Y, batch_size):
    """(X^{t}, Y^{t}): consecutive slices of ``batch_size`` rows, the last with the rest
    (views, made ``PARTITION_AHEAD`` mini-batches at a time: two calls for them all, not two
    per mini-batch, and not one view per example up front with batch size 1)."""
    ahead = batch_size * PARTITION_AHEAD
    pieces = zip(X.split(ahead), Y.split(ahead), strict=True) if X.shape[0] > ahead else [(X, Y)]
    for X_rows, Y_rows in pieces:
        yield from zip(X_rows.split(batch_size), Y_rows.split(batch_size), strict=True)


#: mini-batches read ahead from disk (gdlab.data.memmap) while the current one trains
PREFETCH = 2


def _gathered_batches(X, Y, batch_size, order):
    """Mini-batches of arrays read on demand (:class:`gdlab.data.memmap.MemmapArray`): each one
    gathers only its rows, sorted within the mini-batch."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def read(start):
        rows = order[start:start + batch_size].sort().values
        return X[rows], Y[rows]

    starts = iter(range(0, order.shape[0], batch_size))
    # a reader thread fetches the next mini-batches while this one trains (reads release the GIL)
    with ThreadPoolExecutor(1, thread_name_prefix="gdlab-read") as pool:
        queue = deque(pool.submit(read, start) for _, start in zip(range(PREFETCH), starts))
        while queue:
            batch = queue.popleft().result()
            start = next(starts, None)
            if start is not None:
                queue.append(pool.submit(read, start))
            yield batch
