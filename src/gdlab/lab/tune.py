"""``gdlab tune batch-size``: the lecture's guidance on the mini-batch size, checked and timed.

- m < 2000 examples: use batch gradient descent (batch size m) — the whole set is one step.
- otherwise try powers of two, 2⁴ … 2¹⁰ (up to m): a power of two fits the hardware's memory
  layout, and the mini-batch (with its activations) must fit in the device's memory.

Before training, each candidate takes one trial step on a copy of the network and its memory is
measured — on CUDA the peak of allocated memory over the step; on the CPU an estimate from that
step: the activations every module produced (forward and their gradients) plus parameters,
gradients and optimizer moments. Sizes over the budget are skipped with the reason; an
out-of-memory error during the trial counts as "does not fit", never as a crash.

The sizes that fit are trained from the same initialization and mini-batch order (``seed``) for
the same wall-clock budget (or until a target cost), and ranked by **cost reached per second**:
(J₀ - J_end)/seconds, with J₀ the cost of the initial network and J_end that of the trained
one, both on all m training examples. With equal budgets this ranks by the cost reached; with a
target cost, by the time it took. :func:`write_results` writes them to a folder.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._checks import check_positive
from .._files import atomic_write, write_config
from ..losses import default_loss
from ..optim import OPTIMIZERS
from ..train import Fit

#: below this many training examples the lecture says: use batch gradient descent
SMALL_M = 2000
#: default candidates 2⁴ … 2¹⁰
POWERS = tuple(2**k for k in range(4, 11))


def candidates(m: int, sizes=None) -> list[int]:
    """The sizes to try: ``sizes`` if given (each 1..m), else the powers of two 2⁴…2¹⁰ up to m
    (m itself if m < 16)."""
    if sizes is not None:
        sizes = sorted({int(s) for s in sizes})
        bad = [s for s in sizes if s < 1 or s > m]
        if not sizes or bad:
            raise ValueError(f"batch sizes must be between 1 and m = {m} (the number of "
                             f"training examples), got {bad or 'none'}")
        return sizes
    return [s for s in POWERS if s <= m] or [m]


def free_memory(device) -> int:
    """Bytes free now on ``device``: CUDA's free memory, or the machine's available RAM."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def is_out_of_memory(error: BaseException) -> bool:
    """An out-of-memory error of torch (CUDA, MPS or the CPU allocator)."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def trial_step(model, X, Y, batch_size: int, optimizer: str = "adam", lr: float = 0.01) -> int:
    """Bytes one training step with mini-batches of ``batch_size`` needs, from a real step on a
    copy of ``model`` (CUDA: peak allocated memory; CPU: activations and their gradients +
    parameters, gradients and moments). May raise an out-of-memory error."""
    model = copy.deepcopy(model)
    parameter = next(model.parameters())
    device = parameter.device
    forward, loss = default_loss(model)
    opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
    if device.type == "cuda":
        # a step on one row first: the GPU libraries' workspaces and the optimizer's compiled
        # kernel, made once per process, are then nobody's need
        warm_up = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
        loss(forward(X[:1].to(device)), Y[:1].to(device)).backward()
        warm_up.step()
        del warm_up
        model.zero_grad(set_to_none=True)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        X_t, Y_t = X[:batch_size].to(device, copy=True), Y[:batch_size].to(device, copy=True)
        loss(forward(X_t), Y_t).backward()
        opt.step()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    X_t, Y_t = X[:batch_size].to(device), Y[:batch_size].to(device)
    activations = [0]

    def count(module, inputs, output):
        if isinstance(output, torch.Tensor):
            activations[0] += output.numel() * output.element_size()

    handles = [m.register_forward_hook(count) for m in model.modules()
               if not list(m.children())]
    try:
        loss(forward(X_t), Y_t).backward()
        opt.step()
    finally:
        for handle in handles:
            handle.remove()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    moments = sum(t.numel() * t.element_size() for s in opt.state.values()
                  for t in s.values() if isinstance(t, torch.Tensor))
    batch = X_t.numel() * X_t.element_size() + Y_t.numel() * Y_t.element_size()
    return int(2 * activations[0] + 2 * params + moments + batch)


@dataclass
class SizeResult:
    """One candidate: its memory, and (if it fit and was trained) how it did."""

    batch_size: int
    memory: int | None = None  # bytes of one trial step (None: out of memory)
    skipped: str | None = None  # why it was not trained
    seconds: float = math.nan
    epochs: int = 0
    steps: int = 0
    initial_cost: float = math.nan
    final_cost: float = math.nan
    reached_target: bool = False
    curve: list = field(default_factory=list)  # (seconds, epoch cost) after each epoch

    @property
    def rate(self) -> float:
        """Cost reached per second: (J₀ - J_end)/seconds (higher is better)."""
        if self.skipped or not self.seconds or not math.isfinite(self.final_cost):
            return -math.inf
        return (self.initial_cost - self.final_cost) / self.seconds


@dataclass
class TuneResult:
    m: int
    results: list  # SizeResult, ranked: trained sizes best first, then skipped ones
    recommended: int
    reason: str
    budget: int | None = None  # memory budget in bytes

    @property
    def trained(self) -> list:
        return [r for r in self.results if r.skipped is None]

    @property
    def skipped(self) -> list:
        return [r for r in self.results if r.skipped is not None]


def _full_cost(model, X, Y) -> float:
    forward, loss = default_loss(model)
    with torch.no_grad():
        return float(loss(forward(X), Y))


def _human(n: int | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def check_settings(m: int, *, optimizer: str = "adam", lr: float = 0.01, seconds: float = 5.0,
                   target_cost: float | None = None, sizes=None,
                   memory_budget: int | None = None) -> None:
    """ValueError for any setting :func:`tune_batch_size` would refuse on ``m`` training
    examples, so that all is checked before anything is trained or written."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
    check_positive("lr", lr)
    check_positive("seconds", seconds)
    if target_cost is not None and math.isnan(target_cost):
        raise ValueError("target_cost must be a number, got nan")
    if sizes is not None:
        candidates(m, sizes)
    if memory_budget is not None and memory_budget <= 0:
        raise ValueError(f"memory budget must be > 0 bytes, got {memory_budget}")


def tune_batch_size(model, X, Y, *, optimizer: str = "adam", lr: float = 0.01,
                    seconds: float = 5.0, target_cost: float | None = None, sizes=None,
                    memory_budget: int | None = None, seed: int = 0, measure=trial_step,
                    force: bool = False) -> TuneResult:
    """Check, train and rank mini-batch sizes for ``model`` on (X, Y); see the module docstring.

    ``seconds``: wall-clock budget per size (a run stops at the first epoch end past it, or
    once its cost reaches ``target_cost``). ``memory_budget``: bytes a step may use (default:
    what the device has free). ``measure(model, X, Y, batch_size, optimizer, lr)`` gives a
    step's bytes (the trial step; replaceable for tests). With m < 2000 and neither ``sizes``
    nor ``force``, batch gradient descent is recommended without training anything.
    """
    parameter = next(model.parameters())
    X = torch.as_tensor(X).to(device=parameter.device, dtype=parameter.dtype)
    Y = torch.as_tensor(Y).to(parameter.device)
    if Y.is_floating_point():
        Y = Y.to(parameter.dtype)
    m = X.shape[0]
    check_settings(m, optimizer=optimizer, lr=lr, seconds=seconds, target_cost=target_cost,
                   sizes=sizes, memory_budget=memory_budget)
    if m < SMALL_M and sizes is None and not force:
        return TuneResult(m=m, results=[SizeResult(batch_size=m, skipped="not tried")],
                          recommended=m, reason=f"m = {m} < {SMALL_M} training examples: use "
                          f"batch gradient descent (mini-batch size m = {m}), as the lecture "
                          f"advises for small training sets")
    tried = candidates(m, sizes)
    budget = free_memory(parameter.device) if memory_budget is None else int(memory_budget)
    results = []
    for size in tried:
        result = SizeResult(batch_size=size)
        try:
            result.memory = int(measure(model, X, Y, size, optimizer, lr))
        except Exception as error:  # out of memory: does not fit; anything else is a bug
            if not is_out_of_memory(error):
                raise
            result.skipped = "out of memory during the trial step"
            if parameter.device.type == "cuda":
                torch.cuda.empty_cache()
        else:
            if result.memory > budget:
                result.skipped = (f"needs {_human(result.memory)} per step, over the budget "
                                  f"of {_human(budget)}")
        results.append(result)

    initial_cost = _full_cost(model, X, Y)
    for result in results:
        if result.skipped is not None:
            continue
        net = copy.deepcopy(model)
        opt = OPTIMIZERS[optimizer](net.parameters(), lr=lr)

        def watch(run, result=result):
            elapsed = run.history.times[-1]
            result.curve.append((elapsed, run.history.epoch_costs[-1]))
            done = target_cost is not None and run.history.epoch_costs[-1] <= target_cost
            if done:
                result.reached_target = True
            if done or elapsed >= seconds:
                run.stop()

        run = Fit(net, X, Y, opt, epochs=10**9, batch_size=result.batch_size, seed=seed,
                  progress=False, callbacks=[watch])
        history = run.run()
        result.seconds = history.times[-1]
        result.epochs, result.steps = history.epochs, len(history.costs)
        result.initial_cost = initial_cost
        result.final_cost = _full_cost(net, X, Y)

    trained = sorted((r for r in results if r.skipped is None), key=lambda r: -r.rate)
    skipped = [r for r in results if r.skipped is not None]
    if not trained:
        raise ValueError(f"no mini-batch size fits the memory budget of {_human(budget)} "
                         f"(tried {', '.join(map(str, tried))}); lower the sizes or raise "
                         f"--memory-budget")
    best = trained[0]
    reason = (f"mini-batch {best.batch_size} lowered the cost fastest ({best.rate:.4g}/s: cost "
              f"{best.initial_cost:.4g} → {best.final_cost:.4g} in {best.seconds:.2f} s)")
    if not best.rate > 0:
        reason = (f"no size lowered the cost (α = {lr:g} may be too large, or the time too "
                  f"short); mini-batch {best.batch_size} did least badly (cost "
                  f"{best.initial_cost:.4g} → {best.final_cost:.4g} in {best.seconds:.2f} s)")
    return TuneResult(m=m, results=trained + skipped, recommended=best.batch_size,
                      reason=reason, budget=budget)


def table(result: TuneResult) -> str:
    """The ranked sizes as a text table."""
    rows = [("rank", "batch", "memory/step", "epochs", "steps", "seconds", "final cost",
             "cost/s", "note")]
    for rank, r in enumerate(result.trained, 1):
        rows.append((str(rank), str(r.batch_size), _human(r.memory), str(r.epochs),
                     str(r.steps), f"{r.seconds:.2f}", f"{r.final_cost:.6f}", f"{r.rate:.4g}",
                     "target reached" if r.reached_target else ""))
    for r in result.skipped:
        rows.append(("—", str(r.batch_size), _human(r.memory), "", "", "", "", "",
                     f"skipped: {r.skipped}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == len(row) - 1 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def figure(result: TuneResult):
    """Cost against wall-clock time for every trained size (one line each)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    from ..report.style import RC

    with rc_context(RC):
        fig = Figure(figsize=(7, 4.2))
        ax = fig.add_subplot()
        for r in sorted(result.trained, key=lambda r: r.batch_size):
            times = [0.0] + [t for t, _ in r.curve]
            costs = [r.initial_cost] + [c for _, c in r.curve]
            style = {"linewidth": 2.4} if r.batch_size == result.recommended else {}
            ax.plot(times, costs, label=f"batch {r.batch_size}", **style)
        ax.set_xlabel("wall-clock time (s)")
        ax.set_ylabel("cost J (epoch average)")
        if all(c > 0 for r in result.trained for _, c in r.curve):
            ax.set_yscale("log")
        ax.set_title(f"Mini-batch size: cost against time (m = {result.m})")
        ax.legend(title=f"recommended: {result.recommended}")
        fig.tight_layout()
    return fig


def write_results(out, result: TuneResult, config: dict) -> dict:
    """Write the tuning ``result`` into the folder ``out``: ``config.json`` (``config``, the
    settings), ``results.json`` (m, the recommendation and its reason, the memory budget and
    every size: memory, time, epochs, costs, cost per second, its cost curve or why it was
    skipped) and, when sizes were trained, ``cost_vs_time.png`` — each atomically. Returns
    {"results": path, "figure": path or None}."""
    from .figures import save_figure

    out = Path(out)
    write_config(out, "tune batch-size", config)
    figure_path = None
    if result.trained:
        figure_path = save_figure(figure(result), out / "cost_vs_time.png", dpi=120)
    rows = [{"batch_size": r.batch_size, "memory": r.memory, "skipped": r.skipped,
             "seconds": r.seconds, "epochs": r.epochs, "final_cost": r.final_cost,
             "cost_per_second": r.rate if r.skipped is None else None, "curve": r.curve}
            for r in result.results]
    results = atomic_write(out / "results.json", json.dumps(
        {"m": result.m, "recommended": result.recommended, "reason": result.reason,
         "memory_budget": result.budget, "sizes": rows}, indent=2, default=str) + "\n")
    return {"results": results, "figure": figure_path}
