"""Costs J of a mini-batch, averaged over its examples, and the default for a model's output.

    binary cross-entropy:  J = -(1/m) Σ [y·log a + (1-y)·log(1-a)],  a = σ(z)   (on z for stability)
    cross-entropy:         J = -(1/m) Σ log softmax(z)_y
    squared error:         J = (1/m) Σ (ŷ - y)²   (averaged over every output too)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

#: torch's codes for the reductions its loss operations take
_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def binary_cross_entropy(z, Y, reduction="mean"):
    """Cross-entropy of sigmoid outputs, computed from the logits z: their mean, or each
    output's (``reduction="none"``)."""
    if Y.shape != z.shape or Y.dtype != z.dtype:
        Y = Y.reshape(z.shape).to(z.dtype)
    # the op F.binary_cross_entropy_with_logits calls (its checks cost more than a small z)
    return torch.binary_cross_entropy_with_logits(z, Y, None, None, _REDUCTIONS[reduction])


def binary_cross_entropy_of_probabilities(a, Y):
    return F.binary_cross_entropy(a, Y.reshape(a.shape).to(a.dtype))


def cross_entropy(z, Y, reduction="mean"):
    """Cross-entropy of softmax outputs from the logits z (classes in dimension 1); Y holds
    class indices, one per row of z (and per position of z's further dimensions)."""
    return F.cross_entropy(z, Y.reshape(z.shape[:1] + z.shape[2:]).long(), reduction=reduction)


def negative_log_likelihood_of_probabilities(a, Y):
    return F.nll_loss(torch.log(a), Y.reshape(-1).long())


def squared_error(y_hat, Y, reduction="mean"):
    return F.mse_loss(y_hat, Y.reshape(y_hat.shape).to(y_hat.dtype), reduction=reduction)


@dataclass(frozen=True)
class OutputCost:
    """The cost a gdlab MLP's output implies, and what its closed-form backward propagation
    (:mod:`gdlab.backprop`) needs of it: J from the logits Z^[L] by ``loss``, and

        dZ^[L] = s·(g(Z^[L]) − target),  s = scale/(m·n_y), or scale/m if not ``per_output``

    with g = ``activation`` (None: the identity) and the target Y, or one_hot(Y) where Y holds
    ``class_indices``."""

    loss: Callable
    activation: Callable | None
    scale: int
    per_output: bool
    class_indices: bool


#: the one table of output → cost, read by :func:`default_loss` and :mod:`gdlab.backprop`
OUTPUT_COSTS = {
    "sigmoid": OutputCost(binary_cross_entropy, torch.sigmoid, 1, True, False),
    "softmax": OutputCost(cross_entropy, partial(torch.softmax, dim=-1), 1, False, True),
    "linear": OutputCost(squared_error, None, 2, True, False),
}


def default_loss(model):
    """(forward, loss) implied by the model: a gdlab MLP is run to its logits and gets its
    output's cost (:data:`OUTPUT_COSTS`); any other model gets the cost its first mini-batch's
    output and targets imply (:class:`InferredLoss`)."""
    from .models import MLP

    if isinstance(model, MLP):
        cost = OUTPUT_COSTS[model.output]
        return (model if cost.activation is None else model.logits), cost.loss
    return model, InferredLoss(model)


def cross_entropy_over_last(z, Y):
    """Cross-entropy with the classes in z's last dimension (e.g. a sequence's outputs
    (N, L, C)); Y holds class indices of shape z.shape[:-1]."""
    return F.cross_entropy(z.reshape(-1, z.shape[-1]), Y.reshape(-1).long())


def negative_log_likelihood_over_last(a, Y):
    return F.nll_loss(torch.log(a.reshape(-1, a.shape[-1])), Y.reshape(-1).long())


def _binary(Y) -> bool:
    return Y.numel() > 0 and bool(((Y == 0) | (Y == 1)).all())


def infer_loss(model, output, Y):
    """(name, loss) of the cost that a model's output and targets imply:

        integer class labels, one output per class  → cross-entropy
        0/1 labels, one output                      → binary cross-entropy
        float targets of the output's shape         → mean squared error

    cross-entropy from the logits, or from the probabilities where the model ends in
    ``nn.Softmax``/``nn.Sigmoid``; anything else is a ValueError asking for ``loss=``."""
    last = list(model.modules())[-1]
    n, classes_last = output.shape[0], output.shape[:-1] == Y.shape
    if not Y.is_floating_point() and output.dim() >= 2 and output.shape[-1] > 1:
        if isinstance(last, nn.Softmax):
            return "cross_entropy", (negative_log_likelihood_over_last if classes_last
                                     else negative_log_likelihood_of_probabilities)
        if classes_last:
            return "cross_entropy", cross_entropy_over_last
        if output.shape[:1] + output.shape[2:] == Y.shape:
            return "cross_entropy", cross_entropy
    if output.numel() == n and Y.numel() == n and _binary(Y):
        if isinstance(last, nn.Sigmoid):
            return "binary_cross_entropy", binary_cross_entropy_of_probabilities
        return "binary_cross_entropy", binary_cross_entropy
    if Y.is_floating_point() and Y.numel() == output.numel() and Y.shape[0] == n:
        return "squared_error", squared_error
    raise ValueError(f"cannot tell the cost from the model's output of shape "
                     f"{tuple(output.shape)} and targets of shape {tuple(Y.shape)} "
                     f"({str(Y.dtype).replace('torch.', '')}): pass loss=, e.g. "
                     f"torch.nn.CrossEntropyLoss() for class indices with one output per "
                     f"class, torch.nn.MSELoss() for float targets of the output's shape")


class InferredLoss:
    """The cost that the first mini-batch's output and targets imply (:func:`infer_loss`),
    chosen at the first call and kept; ``name`` says which (None until then)."""

    def __init__(self, model):
        self.model, self.name, self.loss = model, None, None

    def choose(self, output, Y) -> None:
        self.name, self.loss = infer_loss(self.model, output, Y)

    def __call__(self, output, Y):
        if self.loss is None:
            self.choose(output, Y)
        return self.loss(output, Y)


def loss_name(loss) -> str:
    """How the history and the run's config name a cost: an inferred one by its kind, a
    torch loss module by its class, a function by its name."""
    if isinstance(loss, InferredLoss):
        return loss.name or "inferred"
    if isinstance(loss, nn.Module):
        return type(loss).__name__
    return getattr(loss, "__name__", type(loss).__name__)


def check_targets(model, Y) -> None:
    """Labels that the default cost of a gdlab MLP can take, or a ValueError saying why not."""
    from .models import MLP

    if not isinstance(model, MLP):
        return
    m, n_y, output = Y.shape[0], model.layer_dims[-1], model.output
    values = Y.double() if Y.numel() else Y
    if output == "softmax":
        if Y.numel() != m:
            raise ValueError(f"a softmax output takes one class index per example (Y of shape "
                             f"({m},)), got Y of shape {tuple(Y.shape)}")
        low, high = float(values.min()), float(values.max())
        if not bool((values == values.round()).all()) or low < 0 or high >= n_y:
            raise ValueError(f"labels must be class indices 0..{n_y - 1} for a softmax output "
                             f"of {n_y} classes (cross-entropy), got values from {low:g} to "
                             f"{high:g}")
        return
    if Y.numel() != m * n_y:
        raise ValueError(f"a {output} output of {n_y} unit{'s' if n_y > 1 else ''} takes Y of "
                         f"shape ({m}, {n_y}){f' or ({m},)' if n_y == 1 else ''}, got Y of "
                         f"shape {tuple(Y.shape)}")
    if output == "sigmoid":
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 1:
            raise ValueError(f"labels must be in [0, 1] for a sigmoid output (binary "
                             f"cross-entropy), got values from {low:g} to {high:g}")


def _positive_logit(z):
    return (z > 0).long()


def _over_half(a):
    return (a > 0.5).long()


def _argmax_dim1(z):
    return z.argmax(1)


def _argmax_last(z):
    return z.argmax(-1)


#: how to read class labels off the output a classification cost takes (for accuracy)
LABELS_OF = {
    binary_cross_entropy: _positive_logit, nn.BCEWithLogitsLoss: _positive_logit,
    binary_cross_entropy_of_probabilities: _over_half, nn.BCELoss: _over_half,
    cross_entropy: _argmax_dim1, nn.CrossEntropyLoss: _argmax_dim1,
    negative_log_likelihood_of_probabilities: _argmax_dim1, nn.NLLLoss: _argmax_dim1,
    cross_entropy_over_last: _argmax_last, negative_log_likelihood_over_last: _argmax_last,
}


def label_reader(loss):
    """``output → predicted class labels`` for a classification cost; None for any other
    (squared error, or a cost gdlab does not know)."""
    if isinstance(loss, InferredLoss):
        loss = loss.loss
    if isinstance(loss, nn.Module):
        loss = type(loss)
    return LABELS_OF.get(loss)


#: the costs by the names the command line gives them (--loss)
NAMED_LOSSES = {"cross_entropy": cross_entropy, "bce": binary_cross_entropy,
                "mse": squared_error}


def named_loss(text):
    """The cost ``--loss`` names: one of NAMED_LOSSES, a SPEC (path/to/file.py:function) of a
    function loss(output, Y), or None (inferred)."""
    from ._spec import is_spec, load_spec

    if text is None or text in NAMED_LOSSES:
        return NAMED_LOSSES.get(text)
    if is_spec(text):
        return load_spec(text, "--loss")
    raise ValueError(f"--loss must be one of {', '.join(NAMED_LOSSES)} or "
                     f"path/to/file.py:function, got {text!r}")
