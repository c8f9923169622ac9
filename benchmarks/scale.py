"""One epoch over a large synthetic set on disk vs the same data in memory (not a test).

    python benchmarks/scale.py [--rows 5000000] [--features 100] [--batch 1000] [--dir DIR]

Writes DIR/X.npy (rows × features float32) and DIR/Y.npy with ``gdlab make-data``'s writer if
they are not there, then trains MLP([features, 64, 1]) with Adam for one epoch of mini-batches
of --batch, twice, each in a fresh process: from the memory-mapped files (gdlab.data.memmap) and
from the same arrays loaded into memory. Prints examples per second and peak resident memory
(ru_maxrss) above the process's resident memory once the model is built. Targets: the disk run
stays under 1 GiB above that while the file is 2 GB, at no less than half the in-memory speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def phase(mode: str, folder: Path, batch: int) -> dict:
    import numpy as np
    import torch

    import gdlab
    from gdlab.data.memmap import open_npy

    torch.manual_seed(0)
    X = open_npy(folder / "X.npy")
    model = gdlab.MLP([X.shape[1], 64, 1], output="sigmoid")
    optimizer = gdlab.Adam(model.parameters(), lr=0.001)
    base = _rss_mib()
    if mode == "memory":
        X, Y = np.load(folder / "X.npy"), np.load(folder / "Y.npy")
    else:
        Y = open_npy(folder / "Y.npy")
    start = time.perf_counter()
    history = gdlab.fit(model, X, Y, optimizer, epochs=1, batch_size=batch, seed=0,
                        progress=False)
    seconds = time.perf_counter() - start
    m = X.shape[0]
    return {"mode": mode, "rows": m, "seconds": seconds, "examples_per_s": m / seconds,
            "peak_rss_above_model_mib": _peak_mib() - base, "cost": history.epoch_costs[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--dir", default="/tmp/gdlab-scale")
    parser.add_argument("--phase", choices=("disk", "memory"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = Path(args.dir)
    if args.phase:
        print(json.dumps(phase(args.phase, folder, args.batch)))
        return
    x_path = folder / "X.npy"
    import numpy as np

    if not x_path.exists() or np.load(x_path, mmap_mode="r").shape != (args.rows,
                                                                        args.features):
        from gdlab.data.synthetic import make_classification_npy

        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        make_classification_npy(folder, args.rows, args.features, progress=False)
        print(f"make-data: {args.rows} × {args.features} in {time.perf_counter() - start:.1f} s"
              f" ({x_path.stat().st_size / 1e9:.2f} GB)")
    results = {}
    for mode in ("disk", "memory"):
        out = subprocess.run([sys.executable, __file__, "--phase", mode, "--dir", str(folder),
                              "--batch", str(args.batch)], check=True, capture_output=True,
                             text=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'mode':8s} {'rows':>9s} {'seconds':>8s} {'examples/s':>11s} {'peak RSS+ (MiB)':>16s}")
    for r in results.values():
        print(f"{r['mode']:8s} {r['rows']:9d} {r['seconds']:8.1f} {r['examples_per_s']:11.0f} "
              f"{r['peak_rss_above_model_mib']:16.0f}")
    ratio = results["memory"]["examples_per_s"] / results["disk"]["examples_per_s"]
    print(f"in-memory / disk throughput: {ratio:.2f}× (target ≤ 2×); disk peak RSS above the "
          f"model: {results['disk']['peak_rss_above_model_mib']:.0f} MiB (target < 1024)")


if __name__ == "__main__":
    main()
