"""Optimizer step: gdlab's fused flat-buffer step against every torch.optim variant.

Three parameter layouts, float32: (a) many small tensors, 2000 × 2000; (b) ResNet-50's 161
parameter shapes, 25.6M; (c) a few large tensors, 64 × 250k. Each figure is the median of
several timed steps; gdlab's is also given as a fraction of the machine's memory bandwidth,
from the bytes its formula must move (Adam 28 per parameter: read W, dW, v, S, write W, v, S):
on the CPU against STREAM's kernels timed in the same rounds (median against median), and
against their best times apart from the steps (the peak).

``python benchmarks/step.py`` prints the CPU table (and an Adam row on a GPU if there is one);
``--device cuda`` measures the methods on the GPU instead, at 128M parameters (8 × 16M) and
ResNet-50's shapes, against the GPU's device-to-device copy bandwidth. The methods: Adam,
AdamW, Adam with L2 weight decay, Momentum, Momentum with Nesterov (form "sum", torch's
SGD(nesterov=True)) and RMSProp, each against torch's twin; ``--methods`` picks some.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

if __name__ == "__main__":  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import gdlab  # noqa: E402
from benchmarks.common import (  # noqa: E402
    STREAM_BYTES,
    bandwidth,
    median_time,
    run_times,
    stream_arrays,
    stream_kernels,
)
from gdlab.optim import AdamW, hyper, paths  # noqa: E402

#: each method timed: gdlab's optimizer (keyword arguments besides lr and fused) and torch's
#: twin (its class and keyword arguments besides lr); issue 27's options in rows of their own
METHODS = {
    "adam": (gdlab.Adam, {}, torch.optim.Adam, {}),
    "adamw": (AdamW, {}, torch.optim.AdamW, {}),
    "adam+weight_decay": (gdlab.Adam, {"weight_decay": 0.01}, torch.optim.Adam,
                          {"weight_decay": 0.01}),
    "momentum": (gdlab.Momentum, {}, torch.optim.SGD, {"momentum": 0.9}),
    "momentum+nesterov": (gdlab.Momentum, {"form": "sum", "nesterov": True}, torch.optim.SGD,
                          {"momentum": 0.9, "nesterov": True}),
    "rmsprop": (gdlab.RMSProp, {}, torch.optim.RMSprop, {"alpha": 0.9}),
}
#: bytes each method must read and write per float32 parameter
BYTES = {"adam": 28, "adamw": 28, "adam+weight_decay": 28, "momentum": 20,
         "momentum+nesterov": 20, "rmsprop": 20}


def resnet50_shapes() -> list[tuple[int, ...]]:
    """The parameter shapes of torchvision's ResNet-50 (161 tensors, 25,557,032 parameters)."""
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    in_channels = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for block in range(blocks):
            shapes += [(width, in_channels, 1, 1), (width,), (width,),
                       (width, width, 3, 3), (width,), (width,),
                       (4 * width, width, 1, 1), (4 * width,), (4 * width,)]
            if block == 0:
                shapes += [(4 * width, in_channels, 1, 1), (4 * width,), (4 * width,)]
            in_channels = 4 * width
    return shapes + [(1000, 2048), (1000,)]


LAYOUTS = {
    "a: 2000 × 2000": [(2000,)] * 2000,
    "b: ResNet-50": resnet50_shapes(),
    "c: 64 × 250k": [(250_000,)] * 64,
    "gpu: 8 × 16M": [(16_000_000,)] * 8,  # 128M parameters, for a GPU
}
CPU_LAYOUTS = ("a: 2000 × 2000", "b: ResNet-50", "c: 64 × 250k")
GPU_LAYOUTS = ("gpu: 8 × 16M", "b: ResNet-50")
#: on a GPU, steps per timed run: launched back to back, one synchronize at the end
CUDA_INNER = 5
#: the fraction of the GPU's copy bandwidth gdlab's fused step should reach
GPU_TARGET = 0.85
#: issue #4's speed-up over the fastest torch.optim variant, per CPU layout
TARGETS = {"a: 2000 × 2000": 8.0, "b: ResNet-50": 1.2, "c: 64 × 250k": 1.0}


def _params(shapes, device):
    device = torch.device(device)
    generator = torch.Generator(device).manual_seed(0)  # drawn where they live: fast on a GPU
    params = [torch.nn.Parameter(torch.randn(s, generator=generator, device=device))
              for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator, device=device)
    return params


def peers(method: str):
    """torch.optim's variants of the method: name -> constructor(params)."""
    _, _, twin, kwargs = METHODS[method]
    variants = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}}
    if twin is not torch.optim.RMSprop:  # (torch has no fused RMSprop)
        variants["fused"] = {"fused": True}
    return {name: (lambda params, kw=kw: twin(params, lr=1e-3, **kwargs, **kw))
            for name, kw in variants.items()}


def ours(method: str):
    """gdlab's optimizer of the method, fused: constructor(params)."""
    cls, kwargs, _, _ = METHODS[method]
    return lambda params: cls(params, lr=1e-3, fused=True, **kwargs)


class _Stream:
    """A STREAM kernel over two arrays of ``n`` float32, with ``step()`` as an optimizer has, so
    that it can be timed in the same rounds as the steps (the same machine, the same caches)."""

    def __init__(self, kernel: str, a, b):
        self.step = stream_kernels(a, b)[kernel]
        self.bytes = STREAM_BYTES[kernel] * a.numel()


def _streams() -> dict[str, _Stream]:
    """copy, scale, add and triad over arrays on ordinary pages and on gdlab's 2 MiB pages."""
    return {f"{kernel}, {pages}": _Stream(kernel, *pair)
            for pages, pair in stream_arrays().items() for kernel in STREAM_BYTES}


def _time_steps(optimizers: dict, device, repeats) -> dict:
    """Seconds of one step of each optimizer in each of ``repeats`` rounds; a round runs each
    optimizer once in turn, so that the machine's changing state touches all alike. On a GPU
    each run launches ``CUDA_INNER`` steps back to back and waits for them (the time of a
    training loop's steps, launch cost included)."""
    inner = CUDA_INNER if device.type == "cuda" else 1

    def run_of(optimizer):
        for _ in range(inner):
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for optimizer in optimizers.values():
        for _ in range(3):
            run_of(optimizer)
    times = {name: [] for name in optimizers}
    for _ in range(repeats):
        for name, optimizer in optimizers.items():
            start = time.perf_counter()
            run_of(optimizer)
            times[name].append((time.perf_counter() - start) / inner)
    return times


def _kernel_alone(optimizer, device, repeats) -> float | None:
    """Median seconds of gdlab's compiled rule called on its flat buffers with the
    hyperparameters already on the device: the step without its per-step host work (building
    the hyperparameter tensors, any synchronization). None where that cannot be set up."""
    try:
        flat = optimizer._flat_groups[0]
        group = optimizer.param_groups[0]
        tensors = {name: flat.moments[name] for name in flat.active}
        arguments = {**hyper.arguments(optimizer.kind, group),
                     **hyper.corrections(optimizer.kind, group, 10)}
        compiled = paths.compiled(type(optimizer).rule, {**tensors, **arguments})
        hyperparameters = paths.as_tensors(arguments, device)
        torch.cuda.synchronize(device)

        @torch.no_grad()  # as in optimizer.step (grad mode is part of the compiled code's guard)
        def steps():
            for _ in range(CUDA_INNER):
                compiled(flat.W, flat.dW, **tensors, **hyperparameters)
            torch.cuda.synchronize(device)
        return median_time(steps, repeats=repeats, warmup=1) / CUDA_INNER
    except Exception as error:  # internals changed: report, don't fail the benchmark
        print(f"(kernel-alone timing not available: {type(error).__name__}: {error})",
              file=sys.stderr)
        return None


def _syncs_per_step(optimizer) -> int:
    """How many times one step waits for the GPU (torch's sync debug mode counts them)."""
    import warnings

    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            optimizer.step()
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    torch.cuda.synchronize()
    return sum("synchroniz" in str(w.message) for w in caught)


def _first_call(optimizer, device) -> float:
    """Seconds of the first step (compiling the fused rule, on a GPU to its Triton kernel)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def run(device="cpu", repeats: int = 7, methods=tuple(METHODS),
        layouts=CPU_LAYOUTS) -> tuple[list[dict], dict]:
    """Rows {method, layout, peer: {variant: s}, gdlab: s, ratio, bandwidth_fraction}; and the
    bandwidth figures and the first-call (compile) cost of each fused rule."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"no CUDA device here (torch {torch.__version__}, built with CUDA "
                           f"{torch.version.cuda}): the GPU benchmark needs one")
    measure_bandwidth = bandwidth if device.type == "cpu" else cuda_bandwidth
    # the machine's capacity: the best of measurements before, between and after the layouts
    # (on a shared machine the memory's speed changes over minutes; one before and one after
    # have come out below what the steps themselves reached)
    bandwidths = [measure_bandwidth()]
    # on the CPU the STREAM kernels also run in every round, beside the steps they are
    # compared with: the same statistic (the median) under the same conditions
    streams = _streams() if device.type == "cpu" else {}
    compile_cost = {}
    first_calls = {}
    rows = []
    for method in methods:
        for layout in layouts:
            shapes = LAYOUTS[layout]
            n = sum(torch.Size(s).numel() for s in shapes)
            bandwidths.append(measure_bandwidth())
            contenders = {}
            for name, make in peers(method).items():
                try:
                    contenders[name] = make(_params(shapes, device))
                    contenders[name].step()
                except (RuntimeError, TypeError):  # variant not available on this device
                    contenders.pop(name, None)
            optimizer = ours(method)(_params(shapes, device))
            first = _first_call(optimizer, device)
            compile_cost.setdefault(method, first)
            first_calls[method, layout] = first
            contenders["gdlab"] = optimizer
            rounds = _time_steps({**contenders, **streams}, device, repeats)
            same_rounds = max((stream.bytes / statistics.median(rounds.pop(name))
                               for name, stream in streams.items()), default=None)
            ours_by_round = rounds.pop("gdlab")
            del contenders
            peer_times = {name: statistics.median(t) for name, t in rounds.items()}
            seconds = statistics.median(ours_by_round)
            # the speed-up of each round (against that round's fastest torch), then the median:
            # a slow spell of the machine then cancels out instead of landing on one side
            ratio = statistics.median(min(times) / ours for *times, ours in zip(
                *rounds.values(), ours_by_round, strict=True))
            extra_cuda = {}
            if device.type == "cuda":
                extra_cuda["syncs_per_step"] = _syncs_per_step(optimizer)
                alone = _kernel_alone(optimizer, device, repeats)
                if alone is not None:
                    extra_cuda["kernel_alone"] = alone
            rows.append({"method": method, "layout": layout, "parameters": n,
                         "bytes": BYTES[method] * n, "peer": peer_times, "gdlab": seconds,
                         "ratio": ratio, "same_rounds_bandwidth": same_rounds,
                         "eager_fallback": (type(optimizer).rule, device.type)
                         in paths._broken, **extra_cuda})
            del optimizer
            if device.type == "cuda":
                torch.cuda.empty_cache()
    bandwidths.append(measure_bandwidth())
    bw = {name: max(sample[name] for sample in bandwidths) for name in bandwidths[0]}
    best_bw = max(bw.values()) * 1e9
    for row in rows:
        row["peak_fraction"] = row["bytes"] / row["gdlab"] / best_bw
        row["bandwidth_fraction"] = row["bytes"] / row["gdlab"] / (
            row["same_rounds_bandwidth"] or best_bw)
        row["peer_fraction"] = {name: row["bytes"] / t / best_bw for name, t in row["peer"].items()}
        if "kernel_alone" in row:
            row["kernel_alone_fraction"] = row["bytes"] / row["kernel_alone"] / best_bw
    return rows, {"bandwidth": bw, "compile_cost": compile_cost, "first_calls": first_calls,
                  "device": device.type}


def cuda_bandwidth(n: int = 1 << 28, inner: int = 10) -> dict[str, float]:
    """Device-to-device copy bandwidth in GB/s (read + write), from the best of several runs of
    ``inner`` copies of n float32 launched back to back (one synchronize per run)."""
    a = torch.empty(n, device="cuda")
    b = torch.rand(n, device="cuda")

    def copy():
        for _ in range(inner):
            a.copy_(b)
        torch.cuda.synchronize()
    torch.cuda.synchronize()
    return {"copy": 8 * n / (min(run_times(copy)) / inner) / 1e9}


def table(rows, extra) -> str:
    """The step table; on the CPU layouts also issue #4's target ratio and the share of the
    measured bandwidth that ratio would need (over 100 %: out of reach for any code)."""
    lines = ["| method | layout | torch for-loop | torch foreach | torch fused | gdlab fused | "
             "gdlab vs fastest torch | gdlab bandwidth | target | bandwidth the target needs |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        peer = row["peer"]
        cells = [f"{1e3 * peer[name]:.2f} ms" if name in peer else "—"
                 for name in ("for-loop", "foreach", "fused")]
        note = " (eager: compiling failed)" if row.get("eager_fallback") else ""
        target = TARGETS.get(row["layout"]) if extra["device"] == "cpu" else None
        needs = (f"{target:g}× | {100 * row['bandwidth_fraction'] * target / row['ratio']:.0f} %"
                 if target else "— | —")
        share = f"{100 * row['bandwidth_fraction']:.0f} %"
        if row.get("same_rounds_bandwidth"):
            share += f" ({100 * row['peak_fraction']:.0f} % of the peak)"
        lines.append(f"| {row['method']} | {row['layout']} | {' | '.join(cells)} | "
                     f"{1e3 * row['gdlab']:.2f} ms{note} | {row['ratio']:.2f}× | "
                     f"{share} | {needs} |")
    bw = ", ".join(f"{k} {v:.1f}" for k, v in extra["bandwidth"].items())
    compiled = ", ".join(f"{k} {v:.1f} s" for k, v in extra["compile_cost"].items())
    if extra["device"] == "cpu":
        lines += ["", "gdlab bandwidth: the bytes gdlab's step must move over its median time, "
                  "as a share of the best of STREAM's copy, scale, add and triad (over 128 MiB "
                  "arrays on 4 KiB and on 2 MiB pages) timed in the same rounds as the steps, "
                  "their medians too; in brackets, as a share of the peak below."]
    lines += ["", f"Peak memory bandwidth (GB/s, STREAM's best times in runs before, between "
                  f"and after the layouts): {bw}.",
              f"First call of each fused rule (compiling): {compiled}."]
    return "\n".join(lines)


def gpu_summary(rows, extra, target: float = GPU_TARGET) -> str:
    """Each method's share of the GPU's copy bandwidth (torch's variants and gdlab's), against
    ``target``, and the first call of gdlab's fused step per layout."""
    names = ("for-loop", "foreach", "fused")
    lines = ["| method | layout | parameters | bytes/param | torch for-loop | torch foreach | "
             f"torch fused | gdlab fused | gdlab ≥ {100 * target:.0f} % | gdlab kernel alone | "
             "syncs/step | first call |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        peer = row["peer_fraction"]
        cells = [f"{100 * peer[name]:.0f} %" if name in peer else "—" for name in names]
        ok = "yes" if row["bandwidth_fraction"] >= target else "**no**"
        if row.get("eager_fallback"):
            ok += " (eager fallback)"
        first = extra["first_calls"][row["method"], row["layout"]]
        alone = row.get("kernel_alone_fraction")
        alone = "—" if alone is None else (f"{100 * alone:.0f} % "
                                           f"({1e3 * row['kernel_alone']:.3f} ms)")
        lines.append(f"| {row['method']} | {row['layout']} | {row['parameters'] / 1e6:.1f}M | "
                     f"{BYTES[row['method']]} | {' | '.join(cells)} | "
                     f"{100 * row['bandwidth_fraction']:.0f} % ({1e3 * row['gdlab']:.3f} ms) | "
                     f"{ok} | {alone} | {row.get('syncs_per_step', '—')} | {first:.2f} s |")
    lines += ["", "Shares of the measured device-to-device copy bandwidth, from the bytes each "
              "method's formula must move per float32 parameter. Kernel alone: gdlab's compiled "
              "rule called directly with its hyperparameters already on the GPU (the step "
              "without its host work). Syncs/step: waits for the GPU in one gdlab step "
              "(torch.cuda sync debug mode). First call: gdlab's first fused step (compiling to "
              "Triton; a new shape recompiles).",
              f"Timing: median of the runs, each {CUDA_INNER} steps launched back to back and "
              "one torch.cuda.synchronize()."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), help="cpu: the CPU table only; "
                        "cuda: the methods on the GPU (default: the CPU table, "
                        "then an Adam row on the GPU if there is one)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure "
                        "(median; default: 7)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, of {', '.join(METHODS)} (default: all)")
    args = parser.parse_args(argv)
    methods = tuple(args.methods.split(","))
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; allowed: {', '.join(METHODS)}")
    if args.repeats < 5:
        parser.error(f"--repeats must be at least 5 (figures are medians), got {args.repeats}")
    if args.device == "cuda":
        if not torch.cuda.is_available():
            parser.error(f"--device cuda: no CUDA device is available here (torch "
                         f"{torch.__version__}, built with CUDA {torch.version.cuda or 'none'})")
        rows, extra = run("cuda", repeats=args.repeats, methods=methods, layouts=GPU_LAYOUTS)
        print(f"## Optimizer step on {torch.cuda.get_device_name()} (float32)\n\n"
              + table(rows, extra) + "\n\n" + gpu_summary(rows, extra))
        return 0
    rows, extra = run(repeats=args.repeats, methods=methods)
    print(table(rows, extra))
    if args.device is None and torch.cuda.is_available():
        print(table(*run("cuda", repeats=args.repeats, methods=("adam",),
                         layouts=("gpu: 8 × 16M",))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
