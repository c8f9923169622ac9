"""Optimizer step: gdlab's fused flat-buffer step against every torch.optim variant.

Three parameter layouts, float32: (a) many small tensors, 2000 × 2000; (b) ResNet-50's 161
parameter shapes, 25.6M; (c) a few large tensors, 64 × 250k. Each figure is the median of
several timed steps; gdlab's is also given as a fraction of the machine's memory bandwidth,
from the bytes its formula must move (Adam 28 per parameter: read W, dW, v, S, write W, v, S).
"""

from __future__ import annotations

import time

import torch

import gdlab
from benchmarks.common import bandwidth, median_time, run_times

#: bytes each method must read and write per float32 parameter
BYTES = {"adam": 28, "momentum": 20, "rmsprop": 20}


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


def _params(shapes, device):
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator).to(device)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator).to(device)
    return params


def peers(method: str):
    """torch.optim's variants of the method: name -> constructor(params)."""
    if method == "adam":
        make = lambda params, **kw: torch.optim.Adam(params, lr=1e-3, **kw)  # noqa: E731
        variants = {"for-loop": {"foreach": False}, "foreach": {"foreach": True},
                    "fused": {"fused": True}}
    elif method == "momentum":
        make = lambda params, **kw: torch.optim.SGD(params, lr=1e-3, momentum=0.9, **kw)  # noqa
        variants = {"for-loop": {"foreach": False}, "foreach": {"foreach": True},
                    "fused": {"fused": True}}
    else:
        make = lambda params, **kw: torch.optim.RMSprop(params, lr=1e-3, alpha=0.9, **kw)  # noqa
        variants = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}}
    return {name: (lambda params, kw=kw: make(params, **kw)) for name, kw in variants.items()}


def ours(method: str):
    return {"adam": gdlab.Adam, "momentum": gdlab.Momentum, "rmsprop": gdlab.RMSProp}[method]


def _time_step(optimizer, device, repeats):
    def step():
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return median_time(step, repeats=repeats, warmup=3)


def run(device="cpu", repeats: int = 7, methods=("adam", "momentum", "rmsprop"),
        layouts=CPU_LAYOUTS) -> tuple[list[dict], dict]:
    """Rows {method, layout, peer: {variant: s}, gdlab: s, ratio, bandwidth_fraction}; and the
    bandwidth figures and the first-call (compile) cost of each fused rule."""
    device = torch.device(device)
    bw = bandwidth() if device.type == "cpu" else cuda_bandwidth()
    best_bw = max(bw.values())
    compile_cost = {}
    rows = []
    for method in methods:
        for layout in layouts:
            shapes = LAYOUTS[layout]
            n = sum(torch.Size(s).numel() for s in shapes)
            peer_times = {}
            for name, make in peers(method).items():
                try:
                    peer_times[name] = _time_step(make(_params(shapes, device)), device, repeats)
                except (RuntimeError, TypeError):  # variant not available on this device
                    continue
            optimizer = ours(method)(_params(shapes, device), lr=1e-3, fused=True)
            start = time.perf_counter()
            optimizer.step()
            first = time.perf_counter() - start
            compile_cost.setdefault(method, first)
            seconds = _time_step(optimizer, device, repeats)
            fastest = min(peer_times.values())
            rows.append({"method": method, "layout": layout, "parameters": n,
                         "peer": peer_times, "gdlab": seconds, "ratio": fastest / seconds,
                         "bandwidth_fraction": BYTES[method] * n / seconds / 1e9 / best_bw})
    return rows, {"bandwidth": bw, "compile_cost": compile_cost}


def cuda_bandwidth(n: int = 1 << 28) -> dict[str, float]:
    """Device-to-device copy bandwidth in GB/s (read + write)."""
    a = torch.empty(n, device="cuda")
    b = torch.rand(n, device="cuda")

    def copy():
        a.copy_(b)
        torch.cuda.synchronize()
    return {"copy": 8 * n / min(run_times(copy)) / 1e9}


def table(rows, extra) -> str:
    lines = ["| method | layout | torch for-loop | torch foreach | torch fused | gdlab fused | "
             "gdlab vs fastest torch | gdlab bandwidth |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        peer = row["peer"]
        cells = [f"{1e3 * peer[name]:.2f} ms" if name in peer else "—"
                 for name in ("for-loop", "foreach", "fused")]
        lines.append(f"| {row['method']} | {row['layout']} | {' | '.join(cells)} | "
                     f"{1e3 * row['gdlab']:.2f} ms | {row['ratio']:.2f}× | "
                     f"{100 * row['bandwidth_fraction']:.0f} % |")
    bw = ", ".join(f"{k} {v:.1f}" for k, v in extra["bandwidth"].items())
    compiled = ", ".join(f"{k} {v:.1f} s" for k, v in extra["compile_cost"].items())
    lines += ["", f"Memory bandwidth (GB/s): {bw}; the fraction uses the best of these.",
              f"First call of each fused rule (compiling): {compiled}."]
    return "\n".join(lines)


if __name__ == "__main__":
    rows, extra = run()
    print(table(rows, extra))
    if torch.cuda.is_available():
        print(table(*run("cuda", methods=("adam",), layouts=("gpu: 8 × 16M",))))
