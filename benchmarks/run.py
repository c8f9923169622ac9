"""Every speed figure of gdlab beside its peers', measured in one run: ``python benchmarks/run.py``
prints the tables; ``--write`` also stores them in BENCHMARKS.md with the machine they ran on.
Figures are medians of several runs; compare ratios, not seconds, on a shared machine."""

from __future__ import annotations

import argparse
import datetime
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks import course_numpy, loop, step, vectorized  # noqa: E402
from benchmarks.common import machine  # noqa: E402

#: sections of BENCHMARKS.md from here on are kept as they are: the GPU (measured here only on
#: a machine with one, else by benchmarks/gpu_check.sh on a CUDA machine) and data larger than
#: memory (benchmarks/scale.py, by hand)
HAND_RUN = "## 5. "
LARGER_THAN_MEMORY = "## 6. "


NOTE = """The machine is shared: its memory speed changes over minutes (the copy/scale/add/triad
figures below have ranged over ±30 % within an hour), so the step benchmark times every variant
once per round, round after round — STREAM's kernels too, for the bandwidth share — and
reports medians; even so, whole runs of it differ (over five runs on one day: Adam on 2000
tensors 6.6–8.7×, on ResNet-50's shapes 1.19–1.35×; docs/speed.md has the table). Compare
ratios, and rerun before trusting a single figure."""


def course_seconds() -> float:
    """Wall-clock seconds of ``gdlab course`` in a fresh process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gdlab.cli", "course", "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="store the tables in BENCHMARKS.md")
    parser.add_argument("--repeats", type=int, default=7, help="runs per figure (median)")
    args = parser.parse_args()
    start = time.perf_counter()
    sections = [f"Machine: {machine()}. {datetime.date.today()}."]
    rows, extra = step.run(repeats=3 * args.repeats)  # rounds, each timing every variant
    sections.append("## 1. Optimizer step (float32)\n\n" + step.table(rows, extra))
    print(sections[-1], flush=True)
    sections.append("## 2. Training loop (MLP 64-64-1, 60,000 × 64, one epoch, Adam)\n\n"
                    + loop.table(loop.run(repeats=max(3, args.repeats // 2)))
                    + f"\n\nThe whole `gdlab course` (its 9 runs of 5000 epochs): "
                    f"{course_seconds():.0f} s (target: under 120 s).")
    print(sections[-1], flush=True)
    sections.append("## 3. Course-sized network\n\n"
                    + course_numpy.table(course_numpy.run(repeats=args.repeats)))
    print(sections[-1], flush=True)
    sections.append("## 4. Vectorized sweep (32 configurations at once)\n\n"
                    + vectorized.table(vectorized.run(repeats=args.repeats)))
    print(sections[-1], flush=True)
    kept_from = HAND_RUN
    if torch.cuda.is_available():  # this machine has a GPU: its section is measured anew
        gpu_rows, gpu_extra = step.run("cuda", repeats=args.repeats, layouts=step.GPU_LAYOUTS)
        sections.append(f"## 5. GPU ({torch.cuda.get_device_name()})\n\n"
                        + step.table(gpu_rows, gpu_extra) + "\n\n"
                        + step.gpu_summary(gpu_rows, gpu_extra))
        print(sections[-1], flush=True)
        kept_from = LARGER_THAN_MEMORY
    print(f"\n({time.perf_counter() - start:.0f} s)")
    if args.write:
        path = pathlib.Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
        old = path.read_text() if path.exists() else ""
        by_hand = old[old.index(kept_from):] if kept_from in old else ""  # kept as it was
        path.write_text("# Benchmarks\n\nWritten by `python benchmarks/run.py --write`. "
                        "Peers measured in the same run.\n\n" + NOTE + "\n\n"
                        + "\n\n".join(sections) + "\n"
                        + ("\n" + by_hand if by_hand else ""))


if __name__ == "__main__":
    main()
