"""Issue #7 on a GPU: ``gdlab tune batch-size``'s CUDA memory check, on built-in data.

1. The trial step's peak allocated memory for each size, measured twice in this fresh process
   (the first pass is what the command sees; the second runs after one-time allocations such
   as cuBLAS's workspace, which must not count against the first size tried).
2. ``gdlab tune batch-size --device cuda`` with a budget between the smallest and largest need
   (some sizes skipped), and with the default budget — if the command has a ``--device``
   option; otherwise the same path through :func:`gdlab.lab.tune.tune_batch_size` with the
   model on the GPU (as the command would run it).

``python benchmarks/gpu_tune.py [--json results.json]``; needs a CUDA device (``--device cpu``
runs the same steps on the CPU, to check this script).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import pathlib
import sys
import tempfile
import time
import types

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gdlab.cli import main as gdlab_main  # noqa: E402
from gdlab.cli.tune import _setup  # noqa: E402
from gdlab.lab import tune  # noqa: E402

MiB = 2**20


def _measure(model, X, Y, sizes) -> dict[int, int]:
    return {size: tune.trial_step(model, X, Y, size) for size in sizes}


def _cli(argv: list[str]) -> tuple[int, str]:
    """Run ``gdlab`` with ``argv``; (exit status, stderr). Its stdout goes through."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            status = gdlab_main(argv)
        except SystemExit as exit_:  # argparse: e.g. an option the command does not have
            status = exit_.code if isinstance(exit_.code, int) else 2
    sys.stderr.write(err.getvalue())
    return status, err.getvalue()


def _library(model, X, Y, sizes, seconds, budget) -> dict:
    start = time.perf_counter()
    result = tune.tune_batch_size(model, X, Y, sizes=sizes, seconds=seconds,
                                  memory_budget=budget)
    print(tune.table(result))
    for r in result.skipped:
        print(f"skipped batch {r.batch_size}: {r.skipped}")
    print(f"budget {result.budget} bytes ({result.budget / MiB:.1f} MiB); recommended "
          f"{result.recommended} — {result.reason} ({time.perf_counter() - start:.1f} s)")
    return {"budget": result.budget, "recommended": result.recommended,
            "sizes": [{"batch_size": r.batch_size, "memory": r.memory, "skipped": r.skipped,
                       "final_cost": r.final_cost, "seconds": r.seconds}
                      for r in result.results]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--layers", default="64,4096,4096,10")
    parser.add_argument("--sizes", default="16,64,256,1024")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--device", default="cuda", help="default: cuda")
    args = parser.parse_args()
    cuda = torch.device(args.device).type == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("no CUDA device is available here")
    sizes = [int(s) for s in args.sizes.split(",")]
    setup = types.SimpleNamespace(data=args.data, target=None, layers=args.layers, seed=0,
                                  dtype="float32")
    _, _, model, X, Y = _setup(setup, torch.device(args.device))  # what the command builds
    report = {"device": torch.cuda.get_device_name() if cuda else args.device,
              "data": args.data, "layers": args.layers}

    print(f"\n## 1. Trial step on {report['device']}: "
          f"{'peak allocated CUDA memory' if cuda else 'estimated memory'} per size")
    first = _measure(model, X, Y, sizes)
    second = _measure(model, X, Y, sizes)
    print("| batch | first pass (fresh process) | second pass | first − second |")
    print("|---|---|---|---|")
    for size in sizes:
        print(f"| {size} | {first[size] / MiB:.2f} MiB | {second[size] / MiB:.2f} MiB | "
              f"{(first[size] - second[size]) / MiB:+.2f} MiB |")
    grows = all(a <= b for a, b in zip(list(first.values()), list(first.values())[1:]))
    print(f"first pass non-decreasing in the batch size: {grows}; all positive: "
          f"{all(v > 0 for v in first.values())}")
    report["trial_first"], report["trial_second"] = first, second
    low, high = min(second.values()), max(second.values())
    budget = (low + high) // 2  # between the smallest and largest need: some sizes skipped
    print(f"budget for the skipping run: {budget} bytes ({budget / MiB:.2f} MiB)")

    print(f"\n## 2. gdlab tune batch-size --device {args.device} (the command)")
    out = tempfile.mkdtemp(prefix="gdlab-tune-")
    common = ["tune", "batch-size", "--device", args.device, "--data", args.data, "--layers",
              args.layers, "--sizes", args.sizes, "--seconds", str(args.seconds), "--force"]
    small, _ = _cli(common + ["--memory-budget", str(budget), "--out", out + "/small"])
    default, _ = _cli(common + ["--out", out + "/default"])
    report["cli"] = {"status_small_budget": small, "status_default_budget": default}

    print(f"\n## 3. tune_batch_size on {args.device}, budget between the needs "
          "(some sizes skipped)")
    report["small_budget"] = _library(model, X, Y, sizes, args.seconds, budget)
    print(f"\n## 4. tune_batch_size on {args.device}, default budget (what the device has "
          "free)")
    if cuda:
        free, total = torch.cuda.mem_get_info()
        print(f"torch.cuda.mem_get_info(): free {free / 2**30:.2f} GiB of "
              f"{total / 2**30:.2f} GiB")
        report["mem_get_info"] = [free, total]
    report["default_budget"] = _library(model, X, Y, sizes, args.seconds, None)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
