"""The flat buffer: a param group's parameters, their gradients and their state tensors as views
into contiguous buffers ``W``, ``dW`` and one per state tensor, so that a rule runs once over
all of them. It knows no formula: it keeps the views and the step counts, and tells when they
still hold.

Each parameter keeps its shape and strides in its view (a channels_last weight stays
channels_last); a complex parameter lies in the buffer as its real view (…, 2), so the rule
sees real numbers, as torch's optimizers give it ``torch.view_as_real``. The views are made
when the optimizer is built, so that an alias taken after that (``w = lin.weight.detach()``,
``model.state_dict()``) follows the parameter. Each parameter's ``.data`` gets a storage of its
own over its piece of ``W`` (through DLPack): code that treats a storage as one tensor
(safetensors' ``save_model``) sees one parameter per storage. Parameters whose memory overlaps
another parameter's (tied through ``.data``) stay out of the buffers and are stepped one by
one on their shared memory, as torch steps them.
"""

from __future__ import annotations

import operator

import torch
from torch.utils import dlpack

from . import buffers

_grad = operator.attrgetter("grad")
#: step counts t made at once as tensors for torch's kernels (see FlatGroup.step_tensor)
STEPS_AHEAD = 256


def _extent(p) -> int:
    """Bytes from p's first element to just past its last."""
    if p.numel() == 0:
        return 0
    return (1 + sum((n - 1) * s for n, s in zip(p.shape, p.stride(), strict=True))) * \
        p.element_size()


def overlapping(params) -> set:
    """The parameters among ``params`` whose memory overlaps another one's."""
    spans = sorted((str(p.device), p.data_ptr(), p.data_ptr() + _extent(p), i)
                   for i, p in enumerate(params) if p.numel() and p.device.type != "meta")
    tied, reach = set(), None  # reach: (device, the furthest end so far, whose)
    for device, start, stop, i in spans:
        if reach is not None and reach[0] == device and start < reach[1]:
            tied.update((i, reach[2]))
        if reach is None or reach[0] != device or stop > reach[1]:
            reach = (device, stop, i)
    return {params[i] for i in tied}


def _layout(p) -> tuple[tuple, tuple, bool]:
    """(shape, strides, complex?) of p's real view in a buffer: p's own strides where it is
    dense (torch's preserve_format), a complex parameter as (…, 2) real numbers."""
    strides = torch.empty_like(p, device="meta").stride()
    if p.is_complex():
        return (*p.shape, 2), (*(2 * s for s in strides), 1), True
    return tuple(p.shape), strides, False


def _own_storage(view: torch.Tensor) -> torch.Tensor:
    """The same memory as ``view``, as a tensor whose storage is its own (kept alive with the
    buffer's): a storage-level reader then sees this parameter alone."""
    return dlpack.from_dlpack(dlpack.to_dlpack(view))


class FlatGroup:
    """One param group's parameters, gradients and state tensors as contiguous buffers ``W``,
    ``dW`` and ``moments[name]``; the parameters (``inside``), their ``.grad`` and their state
    tensors are views into them, ``loose`` the group's parameters left out. As in torch, a
    parameter gets state at its first gradient.

    Once a step finds every parameter with a gradient and one step count, the group holds that
    count in ``t``: the usual step then costs a few sweeps over the parameters in C (is each
    still in ``W``, each gradient its view in ``dW``) and no per-parameter Python. The count is
    written into each parameter's state when the state is read (:meth:`release`)."""

    def __init__(self, params, names, outside=frozenset()):
        self.params = tuple(params)
        self.inside = tuple(p for p in self.params if p not in outside)
        self.loose = tuple(p for p in self.params if p in outside)
        self.layouts = [_layout(p) for p in self.inside]
        self.bounds, start = [], 0
        for shape, _, _ in self.layouts:
            self.bounds.append((start, start + torch.Size(shape).numel()))
            start = self.bounds[-1][1]
        self.whole = (0, start)
        self.complex = self.inside[0].is_complex()  # (then the buffers hold its real view)
        dtype, device = self.inside[0].dtype.to_real(), self.inside[0].device
        self.W = buffers.zeros(start, dtype, device)
        W_views = self._views(self.W)
        torch._foreach_copy_(W_views, [p.detach() for p in self.inside])
        for p, W in zip(self.inside, W_views, strict=True):
            p.data = _own_storage(W)
        self.dW = buffers.zeros(start, dtype, device)
        self.grad_views = self._views(self.dW)
        self.moments, self.moment_views, self.active = {}, {}, ()
        self.activate(names)
        self.data_ptrs = list(map(torch.Tensor.data_ptr, self.inside))
        self.strided = [p for p in self.inside if p.dim() > 1]
        self.strides = list(map(torch.Tensor.stride, self.strided))
        self.geometry = [(p.shape, p.stride()) for p in self.inside]
        self.t = None  # the step count of every parameter, while the group holds it
        self.states = None  # every parameter's state dict, while the group holds t
        self._t_tensors = (0, ())  # (first t, its step-count tensors): see step_tensor
        self.paths: dict = {}  # how a whole step runs, per fused setting (gdlab.optim.paths)

    def _views(self, buffer) -> list[torch.Tensor]:
        """Each inside parameter's piece of ``buffer``, in the parameter's shape, strides and
        dtype."""
        views = []
        for (a, _), (shape, strides, complex_) in zip(self.bounds, self.layouts, strict=True):
            view = buffer.as_strided(shape, strides, buffer.storage_offset() + a)
            views.append(torch.view_as_complex(view) if complex_ else view)
        return views

    def activate(self, names) -> None:
        """Make ``names`` the state tensors the rule runs on, with a buffer for each new one."""
        for name in names:
            if name not in self.moments:
                self.moments[name] = buffers.zeros(self.W.numel(), self.W.dtype, self.W.device)
                self.moment_views[name] = self._views(self.moments[name])
        self.active = tuple(names)

    def intact(self, params) -> bool:
        """Whether ``params`` are this group's parameters, still in ``W`` (``model.to``, for
        one, moves them out) with their strides (``p.data = p.data.t()`` keeps the address)."""
        return (len(params) == len(self.params) and all(map(operator.is_, params, self.params))
                and list(map(torch.Tensor.data_ptr, self.inside)) == self.data_ptrs
                and list(map(torch.Tensor.stride, self.strided)) == self.strides)

    def same_geometry(self) -> bool:
        """Whether every inside parameter has the shape and strides of its view (checked where
        the step is not the usual one; a one-dimensional parameter whose shape changed in place
        shows it there, its gradient no longer fitting the view)."""
        return [(p.shape, p.stride()) for p in self.inside] == self.geometry

    def grads_in_place(self) -> bool:
        """Whether every inside parameter's ``.grad`` is its view into ``dW``."""
        return all(map(operator.is_, map(_grad, self.inside), self.grad_views))

    def usual(self, names) -> bool:
        """Whether this step is the usual one: t held, the same state tensors, every gradient
        in its view."""
        return self.t is not None and names == self.active and self.grads_in_place()

    def step_tensor(self, t) -> torch.Tensor:
        """t as a 0-d float32 tensor on the buffers' device, as torch's kernels take it. The
        counts t … t + STEPS_AHEAD - 1 are made at once (one tensor a step would cost as much
        as a small network's step), as views of one tensor that nothing writes to."""
        first, counts = self._t_tensors
        if not 0 <= t - first < len(counts):
            first, counts = t, torch.arange(t, t + STEPS_AHEAD, dtype=torch.float32,
                                            device=self.W.device).unbind(0)
            self._t_tensors = first, counts
        return counts[t - first]

    def release(self) -> None:
        """Write the step count the group holds into every parameter's state, and stop holding
        it: the next step reads the state again (whoever reads it may also change it)."""
        if self.t is not None:
            for p_state in self.states:
                p_state["t"] = self.t
            self.t = self.states = None

    def segments(self, state, usual: bool) -> list[tuple[int, int, int]]:
        """Gather fresh gradients into ``dW``, advance t, and return (a, b, t): the maximal runs
        of consecutive inside parameters that have a gradient and share the step count t
        (``usual``: the whole buffers, t held)."""
        if usual:
            self.t += 1
            return [(*self.whole, self.t)]
        self.release()
        stale_views, stale_grads, runs, states = [], [], [], []
        for i, (p, (a, b)) in enumerate(zip(self.inside, self.bounds, strict=True)):
            dW, grad_view = p.grad, self.grad_views[i]
            if dW is None:
                runs.append(None)
                continue
            if dW is not grad_view:
                stale_views.append(grad_view)
                stale_grads.append(dW)
                p.grad = grad_view
            p_state = state[p]
            p_state.setdefault("t", 0)  # (its first gradient: t and the moments start at 0)
            for name in self.active:
                view, tensor = self.moment_views[name][i], p_state.get(name)
                if tensor is None:
                    p_state[name] = view.zero_()
                elif tensor is not view:  # loaded, or from before a rebuild
                    p_state[name] = view.copy_(tensor)
            p_state["t"] += 1
            states.append(p_state)
            t = p_state["t"]
            if runs and runs[-1] is not None and runs[-1][2] == t:
                runs[-1] = (runs[-1][0], b, t)
            else:
                runs.append((a, b, t))
        if stale_views:
            torch._foreach_copy_(stale_views, stale_grads)
        runs = [run for run in runs if run is not None]
        if len(runs) == 1 and runs[0][:2] == self.whole:  # all stepped, to one t
            self.t, self.states = runs[0][2], states
        return runs

    def zero_grad(self) -> None:
        """Zero every inside gradient in one operation; parameters without one keep ``None``."""
        self.dW.zero_()
        if not self.grads_in_place():
            for p, grad_view in zip(self.inside, self.grad_views, strict=True):
                if p.grad is not None:
                    p.grad = grad_view
