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


# --- batch sources: the one input of the training loop --------------------------------------


class Epoch:
    """One epoch's mini-batches from a batch source: iterate it for the argument tuples of the
    loop's gradient computation, usually ``(X^{t}, Y^{t})``. ``sizes`` holds each mini-batch's
    m_t once iterated (the epoch cost is Σ_t m_t·J^{t} / Σ_t m_t); ``Y``, where the source
    has it, all targets in the epoch's order; ``batch_size`` the size of all mini-batches but
    the last (None where they vary)."""

    def __init__(self, batches, sizes=None, Y=None, batch_size=None):
        self.batches, self.sizes, self.Y, self.batch_size = batches, sizes, Y, batch_size
        self._count = sizes is None

    def __iter__(self):
        if not self._count:
            return iter(self.batches)
        self.sizes = []
        return self._counted()

    def _counted(self):
        for batch in self.batches:
            self.sizes.append(int(batch[0].shape[0]))
            yield batch


def batch_sizes(m: int, batch_size: int) -> list[int]:
    """m_t of each mini-batch when m rows are cut into mini-batches of ``batch_size``, the
    last with the rest."""
    full, rest = divmod(m, batch_size)
    return [batch_size] * full + [rest] * (rest > 0)


def _check_rows(X, Y):
    if len(X.shape) < 1 or X.shape[0] == 0:
        raise ValueError("X must hold at least one example (one row)")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows (examples), got "
                         f"{X.shape[0]} and {Y.shape[0]}")


def _converter(device, dtype, indices: bool):
    """``(X_t, Y_t) -> (X_t, Y_t)`` on ``device`` (None: where they are): X in ``dtype`` (or
    the default dtype) — integer X stays integer with ``indices``, token ids for an embedding —
    and Y in ``dtype`` if it holds floats, class indices as they are."""
    dtype = dtype or torch.get_default_dtype()

    def to(X_t, Y_t):
        X_t = X_t.to(device=device,
                     dtype=X_t.dtype if indices and not X_t.is_floating_point() else dtype)
        return X_t, Y_t.to(device=device, dtype=dtype if Y_t.is_floating_point() else Y_t.dtype)

    return to


class TensorBatches:
    """In-memory X and Y: each epoch one gather of the rows in the epoch's order, then views of
    ``batch_size`` rows (no per-example work). X and Y are converted once
    (:func:`_converter`) and checked for NaN/inf once."""

    ordered = True  # the loop chooses the order of the rows

    def __init__(self, X, Y, batch_size: int, *, device=None, dtype=None,
                 indices: bool = False):
        X, Y = torch.as_tensor(X), torch.as_tensor(Y)
        _check_rows(X, Y)
        X, Y = _converter(device, dtype, indices)(X, Y)
        if X.is_floating_point() and not torch.isfinite(X).all():
            raise ValueError("X contains NaN or infinite values")
        if Y.is_floating_point() and not torch.isfinite(Y).all():
            raise ValueError("Y contains NaN or infinite values")
        self.X, self.Y, self.m = X, Y, X.shape[0]
        self.batch_size = _checked_batch_size(batch_size, self.m)
        self.device = X.device

    def epoch(self, order, inference: bool = False) -> Epoch:
        """The mini-batches of the rows in ``order``; ``inference``: gathered as inference
        tensors (for gradients computed in closed form, which record no graph)."""
        from contextlib import nullcontext

        with torch.inference_mode() if inference else nullcontext():
            X_order, Y_order = self.X[order], self.Y[order]
        return Epoch(partition(X_order, Y_order, self.batch_size),
                     batch_sizes(self.m, self.batch_size), Y_order, self.batch_size)

    def rows(self, index):
        """The mini-batch of the rows ``index`` (a tensor of row indices)."""
        return self.X[index], self.Y[index]

    def chunks(self, size: int):
        """All rows in their stored order, ``size`` at a time (to evaluate the cost)."""
        return partition(self.X, self.Y, size)


class MemmapBatches:
    """Arrays on disk (:class:`gdlab.data.memmap.MemmapArray`): each mini-batch reads only its
    own rows (sorted within it, read ahead on a thread) and is converted
    (:func:`_converter`) as it comes."""

    ordered = True

    def __init__(self, X, Y, batch_size: int, *, device=None, dtype=None,
                 indices: bool = False):
        from .memmap import is_lazy

        X, Y = (a if is_lazy(a) else torch.as_tensor(a) for a in (X, Y))
        _check_rows(X, Y)
        self.X, self.Y, self.m = X, Y, X.shape[0]
        self.batch_size = _checked_batch_size(batch_size, self.m)
        self.device = None  # (the order is made on the CPU)
        self._convert = _converter(device, dtype, indices)

    def _converted(self, batches):
        return (self._convert(X_t, Y_t) for X_t, Y_t in batches)

    def epoch(self, order, inference: bool = False) -> Epoch:
        return Epoch(self._converted(minibatches(self.X, self.Y, self.batch_size, order=order)),
                     batch_sizes(self.m, self.batch_size), None, self.batch_size)

    def rows(self, index):
        """The rows ``index`` (a tensor of row indices; read in sorted order), converted."""
        index = index.sort().values
        return self._convert(self.X[index], self.Y[index])

    def chunks(self, size: int):
        return self._converted((self.X[start:start + size], self.Y[start:start + size])
                               for start in range(0, self.m, size))


class ShardedBatches:
    """Data-parallel training: each process's shard of every mini-batch of ``source`` (one
    whose rows gdlab orders), as ``(X_local, Y_local, m_t)`` — the rows
    ``replicas.shard(m_t)`` of the global mini-batch, or ``(None, None, m_t)`` where this
    process has none."""

    ordered = True

    def __init__(self, source, replicas):
        self.source, self.replicas = source, replicas
        self.m, self.batch_size, self.device = source.m, source.batch_size, source.device

    def _shards(self, order):
        for start in range(0, self.m, self.batch_size):
            rows = order[start:start + self.batch_size]
            n = rows.shape[0]
            lo, hi = self.replicas.shard(n)
            yield (None, None, n) if hi <= lo else (*self.source.rows(rows[lo:hi]), n)

    def epoch(self, order, inference: bool = False) -> Epoch:
        return Epoch(self._shards(order), batch_sizes(self.m, self.batch_size), None,
                     self.batch_size)

    def chunks(self, size: int):
        return self.source.chunks(size)


class IterableBatches:
    """Any iterable of ``(x, y)`` mini-batches that can be iterated once per epoch — a
    ``torch.utils.data.DataLoader`` included. Its own order is kept (a DataLoader with
    ``shuffle=True`` draws it from torch's RNG, which checkpoints save); each mini-batch is
    converted (:func:`_converter`)."""

    ordered = False  # the iterable decides the order of its rows

    def __init__(self, batches, *, device=None, dtype=None, indices: bool = False):
        if isinstance(batches, torch.Tensor | np.ndarray) or not hasattr(batches, "__iter__"):
            raise TypeError(f"the data must be tensors X, Y or an iterable of (x, y) "
                            f"mini-batches such as a DataLoader, got {type(batches).__name__}")
        self.batches, self.device = batches, device
        self._convert = _converter(device, dtype, indices)
        self.batch_size = getattr(batches, "batch_size", None)
        dataset = getattr(batches, "dataset", None)
        try:
            self.m = len(dataset) if dataset is not None else None
        except TypeError:
            self.m = None

    def _pairs(self):
        return (_pair(batch, self._convert) for batch in self.batches)

    def epoch(self, order=None, inference: bool = False) -> Epoch:
        return Epoch(self._pairs())

    def chunks(self, size: int):
        return self._pairs()


class DatasetBatches:
    """A map-style ``torch.utils.data.Dataset`` of ``(x, y)`` examples: gdlab orders its
    indices (seeded, as for tensors) and collates each mini-batch of ``batch_size`` examples
    with torch's ``default_collate``, then converts it (:func:`_converter`)."""

    ordered = True

    def __init__(self, dataset, batch_size: int, *, device=None, dtype=None,
                 indices: bool = False):
        self.dataset, self.m = dataset, len(dataset)
        if self.m == 0:
            raise ValueError("the dataset must hold at least one example")
        self.batch_size = _checked_batch_size(batch_size, self.m)
        self.device = None  # (the order is made on the CPU)
        self._convert = _converter(device, dtype, indices)

    def rows(self, index):
        from torch.utils.data import default_collate

        batch = default_collate([self.dataset[i] for i in index.tolist()])
        return _pair(batch, self._convert)

    def epoch(self, order, inference: bool = False) -> Epoch:
        starts = range(0, self.m, self.batch_size)
        return Epoch((self.rows(order[s:s + self.batch_size]) for s in starts),
                     batch_sizes(self.m, self.batch_size), None, self.batch_size)

    def chunks(self, size: int):
        return (self.rows(torch.arange(s, min(s + size, self.m))) for s in range(0, self.m, size))


def _pair(batch, convert):
    """A mini-batch ``(x, y)`` of tensors, converted by ``convert`` (:func:`_converter`), or a
    ValueError saying what came instead."""
    if isinstance(batch, list | tuple) and len(batch) == 2:
        x, y = batch
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            return convert(x, y)
    raise ValueError(f"each mini-batch must be a pair (x, y) of tensors; the data yielded "
                     f"{_describe(batch)}")


def _describe(batch) -> str:
    if isinstance(batch, dict):
        return f"a dict with keys {', '.join(map(repr, batch))}"
    if isinstance(batch, list | tuple):
        return f"a {type(batch).__name__} of {len(batch)}: " + ", ".join(
            type(b).__name__ for b in batch)
    return f"a {type(batch).__name__}"


def _checked_batch_size(batch_size, m: int) -> int:
    batch_size = check_positive_int("batch_size", batch_size)
    if batch_size > m:
        raise ValueError(f"batch_size must be at most m = {m} (the number of examples), got "
                         f"{batch_size}")
    return batch_size


def split(X, Y, fraction: float, seed: int | None = None):
    """(X_train, Y_train, X_val, Y_val): a random ``fraction`` of the rows (seeded) held out
    for validation, at least one row on each side."""
    X, Y = torch.as_tensor(X), torch.as_tensor(Y)
    _check_rows(X, Y)
    m = X.shape[0]
    if not (isinstance(fraction, float | int) and 0 < fraction < 1):
        raise ValueError(f"val_fraction must be a number in (0, 1), got {fraction!r}")
    n_val = min(max(1, round(fraction * m)), m - 1)
    if m < 2:
        raise ValueError(f"val_fraction needs at least 2 examples, got {m}")
    generator = torch.Generator().manual_seed(seed if seed is not None else 0)
    order = torch.randperm(m, generator=generator).to(X.device)
    train, val = order[:m - n_val].sort().values, order[m - n_val:].sort().values
    return X[train], Y[train], X[val], Y[val]


def held_out(train: tuple, val, fraction: float, seed: int = 0):
    """(train, val): ``val`` as given, or ``fraction`` of the training data held out (seeded)
    when there is none — rows of tensors (X, Y) by :func:`split`, items of
    a Dataset by ``torch.utils.data.random_split``."""
    from torch.utils.data import random_split

    if val is not None:
        return train, val
    if len(train) == 2:
        X, Y, X_val, Y_val = split(*train, fraction, seed)
        return (X, Y), (X_val, Y_val)
    dataset = train[0]
    if not hasattr(dataset, "__len__") or not 0 < fraction < 1 or len(dataset) < 2:
        raise ValueError(f"holding out a share of the data for validation needs a Dataset of "
                         f"at least 2 items with a length and a fraction in (0, 1); got "
                         f"{type(dataset).__name__} and {fraction!r}: give validation data")
    n_val = min(max(1, round(fraction * len(dataset))), len(dataset) - 1)
    kept, held = random_split(dataset, [len(dataset) - n_val, n_val],
                              generator=torch.Generator().manual_seed(seed))
    return (kept,), held


def batch_source(X, Y=None, batch_size: int = 64, *, device=None, dtype=None,
                 indices: bool = False):
    """The batch source for data given as ``fit`` takes it: X and Y (tensors, numpy arrays or
    memory-mapped arrays) cut into mini-batches of ``batch_size``; a batch source as it is; a
    map-style Dataset of (x, y) examples batched by gdlab (a ``TensorDataset`` of two tensors
    as those tensors); or an iterable of (x, y) mini-batches such as a DataLoader (Y then
    None)."""
    from torch.utils.data import Dataset, IterableDataset, TensorDataset

    from .memmap import is_lazy

    if hasattr(X, "epoch") and hasattr(X, "chunks"):
        return X
    if Y is None and isinstance(X, TensorDataset) and len(X.tensors) == 2:
        X, Y = X.tensors
    elif Y is None and isinstance(X, Dataset) and not isinstance(X, IterableDataset) \
            and hasattr(X, "__len__"):
        return DatasetBatches(X, batch_size, device=device, dtype=dtype, indices=indices)
    if Y is None:
        return IterableBatches(X, device=device, dtype=dtype, indices=indices)
    kind = MemmapBatches if is_lazy(X) or is_lazy(Y) else TensorBatches
    return kind(X, Y, batch_size, device=device, dtype=dtype, indices=indices)


def train_and_val(data):
    """(train, val, batch_size) from data given as a user's make_data() returns it: (X, Y);
    ((X, Y), val); a Dataset or a DataLoader; or (train, val) of those. ``train`` is the
    tuple of ``fit``'s data arguments; a DataLoader is replaced by its dataset, batched by gdlab
    in a seeded order with the loader's ``batch_size`` (returned; None otherwise), where gdlab
    can: not for an iterable dataset, a sampler or collate_fn of the loader's own."""
    train, val = data, None
    if isinstance(data, tuple | list) and len(data) == 2 and not isinstance(
            data[0], torch.Tensor | np.ndarray):
        train, val = data
    if isinstance(train, tuple | list):
        return tuple(train), val, None
    train, batch_size = _seeded(train)
    return train, val, batch_size


def _seeded(data):
    """((data,), batch_size): a DataLoader's dataset and batch size where gdlab can order it."""
    import warnings

    from torch.utils.data import (
        DataLoader,
        IterableDataset,
        RandomSampler,
        SequentialSampler,
        default_collate,
    )

    if not isinstance(data, DataLoader):
        return (data,), None
    if isinstance(data.dataset, IterableDataset) or data.batch_size is None or not isinstance(
            data.sampler, RandomSampler | SequentialSampler) or data.collate_fn is not \
            default_collate:
        warnings.warn("the DataLoader has its own sampler, collate_fn or an iterable dataset: "
                      "gdlab cannot fix its mini-batch order, so each run takes the loader's "
                      "own", stacklevel=4)
        return (data,), None
    return (data.dataset,), data.batch_size
