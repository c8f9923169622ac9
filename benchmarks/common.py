"""Timing helpers shared by the benchmarks: medians of repeated runs, and the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time

import torch

from gdlab.optim import buffers


def run_times(fn, repeats: int = 7, warmup: int = 2, inner: int = 1) -> list[float]:
    """Seconds one call of ``fn`` takes, in each of ``repeats`` runs of ``inner`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return times


def median_time(fn, repeats: int = 7, warmup: int = 2, inner: int = 1) -> float:
    """Median over ``repeats`` runs of the seconds one call of ``fn`` takes."""
    return statistics.median(run_times(fn, repeats, warmup, inner))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


#: bytes each STREAM kernel reads and writes per element of float32 arrays
STREAM_BYTES = {"copy": 8, "scale": 8, "add": 12, "triad": 12}


def stream_kernels(a, b) -> dict:
    """STREAM's kernels over ``a`` and ``b``, in the in-place forms an optimizer step uses (no
    write-allocate traffic): copy (a = b), scale (a = 3·a), add (a = a + b), triad
    (a = a + 3·b)."""
    return {"copy": lambda: a.copy_(b), "scale": lambda: a.mul_(3.0),
            "add": lambda: a.add_(b), "triad": lambda: a.add_(b, alpha=3.0)}


def stream_arrays(n: int = 1 << 25) -> dict[str, tuple]:
    """Two float32 arrays of n elements on each kind of page: the ordinary pages torch allocates
    and the 2 MiB pages gdlab's flat buffers use (:mod:`gdlab.optim.buffers`); written, so that
    no page is the shared zero page."""
    allocate = {"4 KiB pages": torch.empty,
                "2 MiB pages": lambda n: buffers.zeros(n, torch.float32, "cpu")}
    return {pages: (make(n).uniform_(), make(n).uniform_()) for pages, make in allocate.items()}


def bandwidth(n: int = 1 << 25, repeats: int = 7) -> dict[str, float]:
    """STREAM-style memory bandwidth in GB/s over float32 arrays of n elements, all threads
    (:func:`stream_kernels`). As STREAM, from the best time: the machine's capacity — so over
    both kinds of page (:func:`stream_arrays`), whichever is the faster."""
    best = dict.fromkeys(STREAM_BYTES, 0.0)
    for a, b in stream_arrays(n).values():
        for name, kernel in stream_kernels(a, b).items():
            rate = STREAM_BYTES[name] * n / min(run_times(kernel, repeats)) / 1e9
            best[name] = max(best[name], rate)
    return best
