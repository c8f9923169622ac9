"""How the loop turns a mini-batch into the gradients of its cost J^{t}, written into each
parameter's ``.grad`` before ``optimizer.step()``:

    Autograd      J^{t} = loss(forward(X^{t}), Y^{t}), then J^{t}.backward()
    ClosedForm    a gdlab MLP on its default cost: the lecture's backward propagation
                  (:mod:`gdlab.backprop`); every J^{t} of the epoch computed at its end
    DataParallel  each process's shard of the mini-batch through autograd, its cost weighted
                  by its share of the rows, then one all-reduce (SUM) of the gradients and
                  costs: every process takes the step one process would take

Each is called as ``gradients(*batch)`` for each batch an :class:`~gdlab.data.batches.Epoch`
yields and returns what ``costs(outputs, epoch)`` turns into the epoch's J^{t} (a tensor).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch

BACKPROPS = ("auto", "closed_form", "autograd")


class Autograd:
    """J^{t} = loss(forward(X^{t}), Y^{t}) and its gradients by autograd."""

    inference = False  # mini-batches need autograd's tensors

    def __init__(self, forward, loss, optimizer):
        self.forward, self.loss, self.optimizer = forward, loss, optimizer

    def context(self):
        return nullcontext()

    def __call__(self, X_t, Y_t):
        self.optimizer.zero_grad()
        cost = _cost(self.loss, self.forward(X_t), Y_t)
        cost.backward()
        return cost.detach()

    def costs(self, outputs, epoch):
        return torch.stack(outputs)


class ClosedForm:
    """A gdlab MLP on its default cost, in closed form (:class:`gdlab.backprop.MLPBackprop`):
    each call returns Z^[L]; the epoch's J^{t} all come from them at its end."""

    inference = True  # mini-batches as inference tensors: no autograd bookkeeping

    def __init__(self, backprop, model):
        self.backprop = backprop
        self._gradients = backprop.gradients_of(model)

    def context(self):
        return torch.no_grad()

    def __call__(self, X_t, Y_t):
        return self._gradients(X_t, Y_t)

    def costs(self, outputs, epoch):
        return self.backprop.batch_costs(torch.cat(outputs), epoch.Y, epoch.batch_size)


class DataParallel:
    """This process's shard ``(X_local, Y_local)`` of a mini-batch of m_t rows: its cost
    J_local·(rows/m_t) back-propagated, then the gradients and Σ costs summed over the
    processes (:class:`gdlab.train.distributed.Replicas`); returns J^{t} of the whole
    mini-batch."""

    inference = False

    def __init__(self, forward, loss, optimizer, replicas):
        self.forward, self.loss, self.optimizer = forward, loss, optimizer
        self.replicas = replicas

    def context(self):
        return nullcontext()

    def __call__(self, X_local, Y_local, n):
        self.optimizer.zero_grad()
        if X_local is not None:
            rows = X_local.shape[0]
            cost = _cost(self.loss, self.forward(X_local), Y_local)
            (cost * (rows / n)).backward()
            cost_sum = cost.detach() * rows
        else:
            cost_sum = self.replicas.zero_cost()
        return self.replicas.all_reduce(cost_sum) / n

    def costs(self, outputs, epoch):
        return torch.stack(outputs)


def _cost(loss, output, Y):
    """J = loss(output, Y); a cost that cannot take these shapes is a one-line ValueError."""
    try:
        return loss(output, Y)
    except RuntimeError as e:
        from ..losses import loss_name

        shapes = (f"outputs of shape {tuple(output.shape)} and targets of shape "
                  f"{tuple(Y.shape)}") if hasattr(output, "shape") else "these outputs"
        raise ValueError(f"the cost {loss_name(loss)} does not fit {shapes}: "
                         f"{' '.join(str(e).split())[:200]}; pass a loss= that does") from None


def choose(backprop, model, forward, loss, optimizer, *, replicas=None, in_memory=True):
    """The gradient computation of a run: data-parallel under ``replicas``; else the closed
    form where ``backprop`` allows it ("auto": wherever it computes what autograd would;
    "closed_form": required) and autograd otherwise."""
    from .. import backprop as closed_form

    if backprop not in BACKPROPS:
        raise ValueError(f"backprop must be one of {', '.join(BACKPROPS)}, got {backprop!r}")
    usable = (replicas is None and in_memory and backprop != "autograd"
              and closed_form.supports(model, forward, loss))
    if backprop == "closed_form" and not usable:
        raise ValueError("backprop='closed_form' needs a gdlab MLP trained on its default "
                         "cost, in memory, in one process, with no hooks; use 'auto' or "
                         "'autograd'")
    if replicas is not None:
        return DataParallel(forward, loss, optimizer, replicas)
    if usable:
        return ClosedForm(closed_form.MLPBackprop(model), model)
    return Autograd(forward, loss, optimizer)


#: below this many multiply-adds per step (batch size × parameters), one thread is faster
SMALL_STEP = 2**20


def auto_threads(model, batch_size, device) -> int | None:
    """1 for small steps on the CPU, where waking other threads costs more than the work (and
    several times more when the cores are busy); None (torch's setting) otherwise."""
    if device.type != "cpu" or batch_size is None:
        return None
    n_parameters = sum(p.numel() for p in model.parameters())
    return 1 if batch_size * n_parameters < SMALL_STEP else None


@contextmanager
def torch_threads(n: int | None):
    """torch's intra-op thread count set to n for the duration (process-wide)."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
