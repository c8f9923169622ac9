"""Data-parallel training on ``torch.distributed``: one process per rank, the same model on each.

Each mini-batch X^{t} of the global batch size is split into near-equal contiguous shards, one
per rank (rank r of W gets rows [r·q + min(r, s), ...) with q, s = divmod(m_t, W)). Rank r
back-propagates its summed cost divided by the *global* mini-batch size m_t,

    dW_r = ∇ (1/m_t) Σ_{i in shard r} L_i ,

and one ``all_reduce(SUM)`` per step (the gradients and the summed cost in one flat buffer)
gives every rank dW = Σ_r dW_r, the gradient of the global mean cost J^{t} — exact also when
the shards are uneven (21 rows over 2 ranks: 11 + 10) or a rank gets no row at all. Every
rank then applies the same update, so the run matches one process with the same global batch.

``fit`` finds the process group by itself: under ``torchrun`` (``WORLD_SIZE`` > 1 in the
environment) it initializes it (gloo on the CPU, nccl with CUDA); :func:`launch` starts N
local workers with a group already set up (what ``gdlab fit --nproc N`` uses).
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from datetime import timedelta

import torch
import torch.distributed as dist

#: seconds a collective may wait for the other ranks before the run fails (not hangs)
DEFAULT_TIMEOUT = 300.0


def env_world_size() -> int:
    """WORLD_SIZE from the environment (set by ``torchrun`` and :func:`launch`), else 1."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(timeout: float | None = None, init_method: str | None = None) -> bool:
    """Initialize the default process group from the environment if it names more than one
    process and none is set up yet (gloo on the CPU, nccl with CUDA). True if a group of more
    than one process is ready. With CUDA, CPU tensors still go through gloo. ``init_method``
    (e.g. ``file://...``) replaces the rendezvous at MASTER_ADDR:MASTER_PORT."""
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if env_world_size() <= 1:
        return False
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    options = {} if init_method is None else {"init_method": init_method,
                                              "rank": int(os.environ["RANK"]),
                                              "world_size": env_world_size()}
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout or DEFAULT_TIMEOUT),
                            **options)
    return True


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the one that writes files and reports."""
    return world()[0] == 0


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows [lo, hi) of a mini-batch of n rows that rank ``rank`` of ``size`` trains on."""
    q, s = divmod(n, size)
    lo = rank * q + min(rank, s)
    return lo, lo + q + (rank < s)


class Replicas:
    """What ``Fit`` needs to train one replica of the model per rank: the shard of each
    mini-batch, the gradient/cost all-reduce and small broadcasts."""

    def __init__(self, model):
        self.rank, self.size = world()
        self.params = [p for p in model.parameters() if p.requires_grad]
        parameter = next(iter(self.params), None)
        self.dtype = parameter.dtype if parameter is not None else torch.float32
        self.device = parameter.device if parameter is not None else torch.device("cpu")
        self.one_buffer = len({(p.dtype, p.device) for p in self.params}) <= 1

    def shard(self, n: int) -> tuple[int, int]:
        return shard_bounds(n, self.rank, self.size)

    def broadcast_model(self, model) -> None:
        """Every rank starts from rank 0's parameters and buffers (as DDP does)."""
        with torch.no_grad():
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, 0)

    def broadcast_object(self, value):
        """Rank 0's ``value`` on every rank."""
        box = [value]
        dist.broadcast_object_list(box, 0)
        return box[0]

    def common_seed(self) -> int:
        """A seed drawn on rank 0 and shared: the same shuffles on every rank."""
        return int(self.broadcast_object(random.randrange(2**62) if self.rank == 0 else None))

    def zero_cost(self) -> torch.Tensor:
        return torch.zeros((), dtype=self.dtype, device=self.device)

    @torch.no_grad()
    def all_reduce(self, cost_sum: torch.Tensor) -> torch.Tensor:
        """Sum every rank's gradients into each ``.grad`` (a parameter without one gets the
        others' sum) and return the sum of the ranks' ``cost_sum``: one all_reduce if all
        parameters share a dtype and device."""
        params = self.params
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        cost = cost_sum.detach().reshape(1).to(self.dtype)
        if not self.one_buffer:
            for grad in grads:
                dist.all_reduce(grad)
            dist.all_reduce(cost)
            for p, grad in zip(params, grads, strict=True):
                p.grad = grad
            return cost[0]
        flat = torch.cat([g.reshape(-1) for g in grads] + [cost.to(self.device)])
        dist.all_reduce(flat)
        start = 0
        for p, grad in zip(params, grads, strict=True):
            end = start + grad.numel()
            if p.grad is None:
                p.grad = grad
            p.grad.copy_(flat[start:end].view_as(grad))
            start = end
        return flat[-1]


def is_sharded(optimizer) -> bool:
    """True for a ``torch.distributed.optim.ZeroRedundancyOptimizer`` (without importing it,
    which is slow, when nothing has)."""
    module = sys.modules.get("torch.distributed.optim.zero_redundancy_optimizer")
    return module is not None and isinstance(optimizer, module.ZeroRedundancyOptimizer)


def shard_optimizer_state(optimizer, params=None):
    """The same optimizer (class and hyperparameters) as a ``ZeroRedundancyOptimizer``: each
    rank keeps the moments (v, S) of its share of the parameters only and broadcasts its
    updated parameters after each step. Needs an initialized process group."""
    from torch.distributed.optim import ZeroRedundancyOptimizer

    if is_sharded(optimizer):
        return optimizer
    if len(optimizer.param_groups) != 1:
        raise ValueError("shard_optimizer_state takes an optimizer with one param group, got "
                         f"{len(optimizer.param_groups)}")
    group = optimizer.param_groups[0]
    params = list(group["params"]) if params is None else list(params)
    defaults = {k: v for k, v in group.items() if k != "params"}
    for name in ("flat", "fused"):
        if hasattr(optimizer, name):
            defaults[name] = getattr(optimizer, name)
    return ZeroRedundancyOptimizer(params, optimizer_class=type(optimizer), **defaults)


def _worker(rank, fn, nproc, store, timeout, threads, args):
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(nproc),
                       "LOCAL_WORLD_SIZE": str(nproc)})
    if threads is not None:
        torch.set_num_threads(threads)
    init_from_env(timeout, init_method=f"file://{store}")
    fn(*args)
    dist.barrier()  # leave together: a rank tearing down while a peer still talks aborts it
    dist.destroy_process_group()


class LaunchFailed(RuntimeError):
    """A worker of :func:`launch` failed or died; the others were stopped."""


def launch(fn, nproc: int, *args, timeout: float = DEFAULT_TIMEOUT, threads: int | None = None):
    """Run ``fn(*args)`` in ``nproc`` local processes that form a process group (gloo on the
    CPU, nccl with CUDA; rendezvous through a temporary file). ``fn`` must be picklable (a
    module-level function). If a worker raises or dies, the others are stopped and
    :class:`LaunchFailed` says which; collectives give up after ``timeout`` seconds.
    ``threads``: torch's CPU threads per worker (default: the cores shared out, at least 1)."""
    import torch.multiprocessing as mp

    from .._checks import check_positive_int

    nproc = check_positive_int("nproc", nproc)
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // nproc)
    folder = tempfile.mkdtemp(prefix="gdlab-rendezvous-")
    store = os.path.join(folder, "store")  # a file rendezvous: no port to race for
    try:
        mp.spawn(_worker, args=(fn, nproc, store, timeout, threads, args), nprocs=nproc,
                 join=True)
    except mp.ProcessExitedException as e:
        raise LaunchFailed(f"worker {e.error_index} of {nproc} died (exit code {e.exit_code});"
                           f" the other workers were stopped") from None
    except mp.ProcessRaisedException as e:
        last = [line for line in str(e).strip().splitlines() if line.strip()]
        detail = last[-1].strip() if last else "an error"
        raise LaunchFailed(f"worker {e.error_index} of {nproc} failed: {detail}; the other "
                           f"workers were stopped") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
