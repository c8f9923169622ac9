"""Costs J of a mini-batch, averaged over its examples, and the default for a model's output.

    binary cross-entropy:  J = -(1/m) Σ [y·log a + (1-y)·log(1-a)],  a = σ(z)   (on z for stability)
    cross-entropy:         J = -(1/m) Σ log softmax(z)_y
    squared error:         J = (1/m) Σ (ŷ - y)²   (averaged over every output too)
"""

from __future__ import annotations

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


def default_loss(model):
    """(forward, loss) implied by the model's output: a gdlab MLP is run to its logits;
    a model ending in ``nn.Sigmoid``/``nn.Softmax`` gets cross-entropy on its probabilities;
    anything else gets squared error."""
    from .models import MLP

    if isinstance(model, MLP):
        if model.output == "sigmoid":
            return model.logits, binary_cross_entropy
        if model.output == "softmax":
            return model.logits, cross_entropy
        return model, squared_error
    last = list(model.modules())[-1]
    if isinstance(last, nn.Sigmoid):
        return model, binary_cross_entropy_of_probabilities
    if isinstance(last, nn.Softmax):
        return model, negative_log_likelihood_of_probabilities
    return model, squared_error
