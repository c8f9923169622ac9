"""Timing helpers shared by the benchmarks: medians of repeated runs, and the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time

import torch


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


def bandwidth(n: int = 1 << 25, repeats: int = 7) -> dict[str, float]:
    """STREAM-style memory bandwidth in GB/s over float32 arrays of n elements, all threads,
    in the in-place forms an optimizer step uses (no write-allocate traffic): copy (a = b),
    scale (a = 3·a), add (a = a + b), triad (a = a + 3·b). As STREAM, from the best time:
    the machine's capacity, which fractions of it should be measured against."""
    a, b = torch.rand(n), torch.rand(n)
    kernels = {
        "copy": (lambda: a.copy_(b), 8),
        "scale": (lambda: a.mul_(3.0), 8),
        "add": (lambda: a.add_(b), 12),
        "triad": (lambda: a.add_(b, alpha=3.0), 12),
    }
    return {name: bytes_per * n / min(run_times(fn, repeats)) / 1e9
            for name, (fn, bytes_per) in kernels.items()}
