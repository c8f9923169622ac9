"""``gdlab tune batch-size``: the lecture's guidance on the mini-batch size, checked and timed.

- m < 2000 examples: use batch gradient descent (batch size m) — the whole set is one step.
- otherwise try powers of two, 2⁴ … 2¹⁰ (up to m): a power of two fits the hardware's memory
  layout, and the mini-batch (with its activations) must fit in the device's memory.

Before training, each candidate takes one trial step on a copy of the network and its memory is
measured — on CUDA the peak of allocated memory over the step; on the CPU an estimate from that
step: the activations every module produced (forward and their gradients) plus parameters,
gradients and optimizer moments. Sizes over the budget are skipped with the reason; an
out-of-memory error during the trial counts as "does not fit", never as a crash.

The sizes that fit are trained from the same initialization, mini-batch order and draws of
torch's RNG (``seed``) for the same wall-clock budget (or until a target cost). With
validation data (any model's own split, or a share of the rows held out) they are ranked by
the **time to reach a target validation cost**: the one given, or the highest of the sizes'
best validation costs (the cost every size reached). With tensors X, Y and no validation data
(gdlab's MLP on its built-in data) they are ranked by **cost reached per second**:
(J₀ - J_end)/seconds, with J₀ the cost of the initial network and J_end that of the trained
one, both on all m training examples. :func:`write_results` writes them to a folder.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from .._checks import check_positive
from .._files import atomic_write, write_config
from ..data.batches import held_out
from ..losses import default_loss
from ..optim import OPTIMIZERS
from ..train import Fit

#: below this many training examples the lecture says: use batch gradient descent
SMALL_M = 2000
#: default candidates 2⁴ … 2¹⁰
POWERS = tuple(2**k for k in range(4, 11))
#: the share of the data held out for validation when data given alone has none of its own
DEFAULT_VAL_FRACTION = 0.2


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


def trial_step(model, X, Y, batch_size: int, optimizer: str = "adam", lr: float = 0.01, *,
               loss=None) -> int:
    """Bytes one training step with mini-batches of ``batch_size`` needs, from a real step on a
    copy of ``model`` with the cost ``loss`` (None: the default, inferred for any model) (CUDA:
    peak allocated memory; CPU: the outputs of every leaf module and their gradients +
    parameters, gradients and moments + the mini-batch). May raise an out-of-memory error."""
    model = copy.deepcopy(model)
    parameter = next(model.parameters())
    device = parameter.device
    forward, loss = default_loss(model) if loss is None else (model, loss)
    opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
    if device.type == "cuda":
        # a step on one row first: the GPU libraries' workspaces and the optimizer's compiled
        # kernel, made once per process, are then nobody's need
        warm_up = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
        loss(forward(X[:2].to(device)), Y[:2].to(device)).backward()  # (2: BatchNorm's least)
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
        for tensor in output if isinstance(output, tuple | list) else (output,):
            if isinstance(tensor, torch.Tensor):
                activations[0] += tensor.numel() * tensor.element_size()

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
    val_curve: list = field(default_factory=list)  # (seconds, validation cost) after each epoch
    time_to_target: float | None = None  # seconds to the target validation cost (None: never)

    @property
    def best_val_cost(self) -> float:
        """The lowest validation cost after any epoch (NaN without validation data)."""
        finite = [c for _, c in self.val_curve if math.isfinite(c)]
        return min(finite) if finite else math.nan

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
    target: float | None = None  # the target validation cost (None: ranked by cost per second)
    ranked_by: str = "training cost reached per second"

    @property
    def trained(self) -> list:
        return [r for r in self.results if r.skipped is None]

    @property
    def skipped(self) -> list:
        return [r for r in self.results if r.skipped is not None]


def _full_cost(model, X, Y, loss=None) -> float:
    forward, loss = default_loss(model) if loss is None else (model, loss)
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


@dataclass
class _Data:
    """What tuning trains on: fit's data arguments, the validation data (None: rank by the
    training cost), the rows a trial step takes and m."""

    train: tuple
    val: object
    X: torch.Tensor
    Y: torch.Tensor
    m: int


def _rows(dataset, n: int):
    from torch.utils.data import default_collate

    X, Y = default_collate([dataset[i] for i in range(min(n, len(dataset)))])[:2]
    return X, Y


def _prepare(model, X, Y, val, val_fraction, seed) -> _Data:
    """The data of :func:`tune_batch_size` on the model's device: X, Y tensors (validation
    only if ``val``/``val_fraction`` ask), or, Y None, data as a user's ``make_data()`` returns
    it (:func:`gdlab.data.batches.train_and_val`), its own validation data or
    ``val_fraction`` (default :data:`DEFAULT_VAL_FRACTION`) held out."""
    from ..data.batches import train_and_val
    from ..models import takes_indices

    if Y is None:
        train, own, _ = train_and_val(X)
        if own is not None and val is not None:
            raise ValueError("the data holds its own validation data: give no val= too")
        train, val = held_out(train, own if own is not None else val,
                              val_fraction or DEFAULT_VAL_FRACTION, seed)
    else:
        train = (X, Y)
        if val_fraction is not None:
            train, val = held_out(train, val, val_fraction, seed)
    parameter = next(model.parameters())
    if len(train) == 2:
        X, Y = (torch.as_tensor(t) for t in train)
    else:
        X, Y = _rows(train[0], max(POWERS))
    X = X.to(parameter.device)
    if X.is_floating_point() or not takes_indices(model):
        X = X.to(parameter.dtype)
    Y = Y.to(parameter.device)
    if Y.is_floating_point():
        Y = Y.to(parameter.dtype)
    train = (X, Y) if len(train) == 2 else train
    return _Data(train, val, X, Y, len(train[0]))


def tune_batch_size(model, X, Y=None, *, optimizer: str = "adam", lr: float = 0.01,
                    seconds: float = 5.0, target_cost: float | None = None, sizes=None,
                    memory_budget: int | None = None, seed: int = 0, measure=None,
                    force: bool = False, loss=None, val=None,
                    val_fraction: float | None = None) -> TuneResult:
    """Check, train and rank mini-batch sizes for any ``model``; see the module docstring.

    The data: tensors ``X, Y``, or ``X`` alone as a user's ``make_data()`` returns it — (X, Y),
    a Dataset, a DataLoader, or (train, val) of those. With validation data (the data's own,
    ``val=``, or ``val_fraction`` of the rows held out — by default 0.2 for data given alone),
    the sizes are ranked by the time to reach a target **validation** cost; with X, Y and no
    validation data, by the training cost reached per second. ``loss``: the cost (None:
    inferred). ``seconds``: wall-clock budget per size (a run stops at the first epoch end past
    it, or once its cost — validation cost if any — reaches ``target_cost``).
    ``memory_budget``: bytes a step may use (default: what the device has free).
    ``measure(model, X, Y, batch_size, optimizer, lr)`` gives a step's bytes (default:
    :func:`trial_step` with ``loss``; replaceable for tests). With m < 2000 and neither
    ``sizes`` nor ``force``, batch gradient descent is recommended without training anything.
    """
    data = _prepare(model, X, Y, val, val_fraction, seed)
    m = data.m
    check_settings(m, optimizer=optimizer, lr=lr, seconds=seconds, target_cost=target_cost,
                   sizes=sizes, memory_budget=memory_budget)
    if m < SMALL_M and sizes is None and not force:
        return TuneResult(m=m, results=[SizeResult(batch_size=m, skipped="not tried")],
                          recommended=m, reason=f"m = {m} < {SMALL_M} training examples: use "
                          f"batch gradient descent (mini-batch size m = {m}), as the lecture "
                          f"advises for small training sets")
    device = next(model.parameters()).device
    budget = free_memory(device) if memory_budget is None else int(memory_budget)
    measure = measure or partial(trial_step, loss=loss)
    results = _measure_sizes(model, data, candidates(m, sizes), budget, measure, optimizer, lr)
    if not any(r.skipped is None for r in results):
        raise ValueError(f"no mini-batch size fits the memory budget of {_human(budget)} "
                         f"(tried {', '.join(str(r.batch_size) for r in results)}); lower the "
                         f"sizes or raise --memory")
    initial_cost = _full_cost(model, data.X, data.Y, loss) if data.val is None else math.nan
    for result in results:
        if result.skipped is None:
            _train_size(model, data, result, optimizer=optimizer, lr=lr, seconds=seconds,
                        target_cost=target_cost, seed=seed, loss=loss)
            result.initial_cost = initial_cost
    rank_by = _rank_by_rate if data.val is None else _rank_by_validation
    return rank_by(results, m=m, budget=budget, lr=lr, target_cost=target_cost)


def _measure_sizes(model, data: _Data, sizes, budget: int, measure, optimizer, lr) -> list:
    """A :class:`SizeResult` per size with its trial step's bytes, or why it is skipped."""
    results = []
    for size in sizes:
        result = SizeResult(batch_size=size)
        try:
            result.memory = int(measure(model, data.X, data.Y, size, optimizer, lr))
        except Exception as error:  # out of memory: does not fit; anything else is a bug
            if not is_out_of_memory(error):
                raise
            result.skipped = "out of memory during the trial step"
            if data.X.device.type == "cuda":
                torch.cuda.empty_cache()
        else:
            if result.memory > budget:
                result.skipped = (f"needs {_human(result.memory)} per step, over the budget "
                                  f"of {_human(budget)}")
        results.append(result)
    return results


def _train_size(model, data: _Data, result: SizeResult, *, optimizer, lr, seconds,
                target_cost, seed, loss) -> None:
    """Train a copy of ``model`` with mini-batches of ``result.batch_size`` for ``seconds`` (or
    until ``target_cost``), filling in ``result``."""
    net = copy.deepcopy(model)
    opt = OPTIMIZERS[optimizer](net.parameters(), lr=lr)

    def watch(run):
        elapsed, history = run.history.times[-1], run.history
        result.curve.append((elapsed, history.epoch_costs[-1]))
        watched = history.epoch_costs[-1]
        if data.val is not None:
            watched = history.metrics["val_cost"][-1]
            result.val_curve.append((elapsed, watched))
        done = target_cost is not None and watched <= target_cost
        if done:
            result.reached_target = True
        if done or elapsed >= seconds:
            run.stop()

    torch.manual_seed(seed)  # the same dropout masks (any draw of torch's RNG) for each size
    history = Fit(net, *data.train, opt, epochs=10**9, batch_size=result.batch_size, seed=seed,
                  progress=False, callbacks=[watch], loss=loss, val=data.val).run()
    result.seconds = history.times[-1]
    result.epochs, result.steps = history.epochs, len(history.costs)
    result.final_cost = _full_cost(net, data.X, data.Y, loss) if data.val is None else \
        history.epoch_costs[-1]


def _rank_by_rate(results, *, m, budget, lr, target_cost) -> TuneResult:
    """Without validation data: the trained sizes by training cost reached per second."""
    trained = sorted((r for r in results if r.skipped is None), key=lambda r: -r.rate)
    best = trained[0]
    reason = (f"mini-batch {best.batch_size} lowered the cost fastest ({best.rate:.4g}/s: cost "
              f"{best.initial_cost:.4g} → {best.final_cost:.4g} in {best.seconds:.2f} s)")
    if not best.rate > 0:
        reason = (f"no size lowered the cost (α = {lr:g} may be too large, or the time too "
                  f"short); mini-batch {best.batch_size} did least badly (cost "
                  f"{best.initial_cost:.4g} → {best.final_cost:.4g} in {best.seconds:.2f} s)")
    return TuneResult(m=m, results=trained + [r for r in results if r.skipped is not None],
                      recommended=best.batch_size, reason=reason, budget=budget)


def _rank_by_validation(results, *, m, budget, lr, target_cost) -> TuneResult:
    """With validation data: the trained sizes by the time to reach the target validation cost
    — ``target_cost``, or by default the highest of the sizes' best validation costs (the cost
    every size reached) — then by their best validation cost."""
    trained = [r for r in results if r.skipped is None]
    bests = [r.best_val_cost for r in trained if math.isfinite(r.best_val_cost)]
    target = target_cost if target_cost is not None else (max(bests) if bests else math.nan)
    for r in trained:
        r.time_to_target = next((t for t, c in r.val_curve if c <= target), None)
    trained.sort(key=lambda r: (r.time_to_target is None, r.time_to_target or 0.0,
                                r.best_val_cost if math.isfinite(r.best_val_cost) else math.inf))
    best = trained[0]
    if best.time_to_target is None:
        reason = (f"no size reached the validation cost {target:.4g} (α = {lr:g} may be too "
                  f"large, or the time too short); mini-batch {best.batch_size} came closest "
                  f"(best validation cost {best.best_val_cost:.4g})")
    else:
        reason = (f"mini-batch {best.batch_size} reached the validation cost {target:.4g} "
                  f"fastest ({best.time_to_target:.2f} s; best validation cost "
                  f"{best.best_val_cost:.4g} in {best.seconds:.2f} s)")
    return TuneResult(m=m, results=trained + [r for r in results if r.skipped is not None],
                      recommended=best.batch_size, reason=reason, budget=budget,
                      target=target, ranked_by="time to the target validation cost")


def table(result: TuneResult) -> str:
    """The ranked sizes as a text table (with validation data: each size's best validation
    cost and its time to the target, under a line naming the target)."""
    with_val = result.target is not None
    rows = [("rank", "batch", "memory/step", "epochs", "steps", "seconds", "final cost",
             *(("best val cost", "to target (s)") if with_val else ("cost/s",)), "note")]
    for rank, r in enumerate(result.trained, 1):
        figures = (f"{r.best_val_cost:.6f}", "—" if r.time_to_target is None else
                   f"{r.time_to_target:.2f}") if with_val else (f"{r.rate:.4g}",)
        rows.append((str(rank), str(r.batch_size), _human(r.memory), str(r.epochs),
                     str(r.steps), f"{r.seconds:.2f}", f"{r.final_cost:.6f}", *figures,
                     "target reached" if r.reached_target else ""))
    for r in result.skipped:
        rows.append(("—", str(r.batch_size), _human(r.memory), *[""] * (len(rows[0]) - 4),
                     f"skipped: {r.skipped}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == len(row) - 1 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if with_val:
        lines.insert(0, f"ranked by the time to reach the validation cost {result.target:.4g}")
    return "\n".join(lines)


def figure(result: TuneResult):
    """Cost against wall-clock time for every trained size (one line each)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    from ..report.style import RC

    with rc_context(RC):
        fig = Figure(figsize=(7, 4.2))
        ax = fig.add_subplot()
        with_val = result.target is not None
        for r in sorted(result.trained, key=lambda r: r.batch_size):
            curve = r.val_curve if with_val else [(0.0, r.initial_cost)] + r.curve
            style = {"linewidth": 2.4} if r.batch_size == result.recommended else {}
            ax.plot([t for t, _ in curve], [c for _, c in curve], label=f"batch {r.batch_size}",
                    **style)
        if with_val and math.isfinite(result.target):
            ax.axhline(result.target, color="0.5", linestyle=":", linewidth=1)
        ax.set_xlabel("wall-clock time (s)")
        ax.set_ylabel("validation cost J" if with_val else "cost J (epoch average)")
        if all(c > 0 for r in result.trained for _, c in (r.val_curve if with_val else r.curve)):
            ax.set_yscale("log")
        ax.set_title(f"Mini-batch size: cost against time (m = {result.m})")
        ax.legend(title=f"recommended: {result.recommended}")
        fig.tight_layout()
    return fig


def write_results(out, result: TuneResult, config: dict) -> dict:
    """Write the tuning ``result`` into the folder ``out``: ``config.json`` (``config``, the
    settings), ``results.json`` (m, the recommendation and its reason, the memory budget, what
    the ranking compared and the target validation cost, and every size: memory, time,
    epochs, costs, cost per second, its cost curve and validation-cost curve, its time to the
    target, or why it was skipped) and, when sizes were trained, ``cost_vs_time.png`` (the
    validation cost against time where there is one) — each atomically. Returns
    {"results": path, "figure": path or None}."""
    from .figures import save_figure

    out = Path(out)
    write_config(out, "tune batch-size", config)
    figure_path = None
    if result.trained:
        figure_path = save_figure(figure(result), out / "cost_vs_time.png", dpi=120)
    rows = [{"batch_size": r.batch_size, "memory": r.memory, "skipped": r.skipped,
             "seconds": r.seconds, "epochs": r.epochs, "final_cost": r.final_cost,
             "cost_per_second": r.rate if r.skipped is None else None, "curve": r.curve,
             "val_curve": r.val_curve, "time_to_target": r.time_to_target}
            for r in result.results]
    results = atomic_write(out / "results.json", json.dumps(
        {"m": result.m, "recommended": result.recommended, "reason": result.reason,
         "memory_budget": result.budget, "ranked_by": result.ranked_by,
         "target_val_cost": result.target, "sizes": rows}, indent=2, default=str) + "\n")
    return {"results": results, "figure": figure_path}
