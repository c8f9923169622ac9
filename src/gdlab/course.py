"""The course assignment's functions in the assignment's own form, to check your own against.

    from gdlab import course
    v = course.initialize_velocity(parameters)
    parameters, v = course.update_parameters_with_momentum(parameters, grads, v, beta=0.9,
                                                           learning_rate=0.01)

The layout is the assignment's, not gdlab's: ``parameters`` is a dict of numpy arrays W1, b1,
…, WL, bL with W_l of shape (n_l, n_{l-1}) and b_l of shape (n_l, 1); ``grads``, ``v`` and
``s`` hold dW1, db1, …, dWL, dbL of the same shapes; X has shape (n_x, m), one column per
example, and Y shape (1, m). Like the assignment, the update functions put new arrays into the
dicts they are given and return them; they compute in float64.

Each function is a thin adapter: the update formulas are :mod:`gdlab.optim.rules` (those of
:class:`gdlab.Momentum` and :class:`gdlab.Adam`), the bias correction
:func:`gdlab.bias_correction`, the mini-batches :func:`gdlab.minibatches` and the decay
:func:`gdlab.schedules.inverse_time`. Wrong shapes or missing keys raise a one-line
``ValueError`` naming the key and the shape expected.

(:mod:`gdlab.lab.course` is something else: the assignment's whole experiment, run with
``gdlab course``.)
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from . import schedules
from ._checks import check_beta, check_nonnegative, check_positive, check_positive_int
from .data.batches import minibatches
from .ewa import bias_correction
from .optim import rules

__all__ = ["update_parameters_with_gd", "random_mini_batches", "initialize_velocity",
           "update_parameters_with_momentum", "initialize_adam", "update_parameters_with_adam",
           "update_lr", "schedule_lr_decay"]

_LAYOUT = "the column layout: W_l of shape (n_l, n_{l-1}), b_l of shape (n_l, 1)"


# ---------------------------------------------------------------------------- checks


def _shape(value) -> tuple:
    return tuple(np.shape(value))


def _layers(parameters) -> int:
    """L, the number of layers of ``parameters`` {W1, b1, …, WL, bL}, after checking that the
    shapes chain: W_l (n_l, n_{l-1}), b_l (n_l, 1)."""
    if not isinstance(parameters, dict):
        raise ValueError(f"parameters must be a dict of W1, b1, …, WL, bL ({_LAYOUT}), "
                         f"got {type(parameters).__name__}")
    L = 0
    while f"W{L + 1}" in parameters:
        L += 1
    if L == 0:
        raise ValueError(f"parameters must hold W1, b1, …, WL, bL ({_LAYOUT}); missing 'W1'")
    unexpected = sorted(set(parameters) - {f"{p}{l}" for l in range(1, L + 1) for p in "Wb"})
    if unexpected:
        raise ValueError(f"parameters must hold W1, b1, …, W{L}, b{L} only ({_LAYOUT}); "
                         f"unexpected key {unexpected[0]!r}")
    for l in range(1, L + 1):
        W = parameters[f"W{l}"]
        if np.ndim(W) != 2 or (l > 1 and np.shape(W)[1] != np.shape(parameters[f"W{l - 1}"])[0]):
            n_prev = "n_x" if l == 1 else f"{np.shape(parameters[f'W{l - 1}'])[0]}"
            raise ValueError(f"parameters['W{l}'] must have shape (n_{l}, n_{l - 1}) = "
                             f"(n_{l}, {n_prev}), got {_shape(W)}")
        if f"b{l}" not in parameters:
            raise ValueError(f"parameters must hold W1, b1, …, W{L}, b{L} ({_LAYOUT}); "
                             f"missing 'b{l}'")
        expected = (np.shape(W)[0], 1)
        if _shape(parameters[f"b{l}"]) != expected:
            raise ValueError(f"parameters['b{l}'] must have shape (n_{l}, 1) = {expected}, "
                             f"got {_shape(parameters[f'b{l}'])}")
    return L


def _check_like(name: str, d, parameters, L: int) -> None:
    """``d`` (grads, v or s) holds dW_l and db_l shaped like W_l and b_l."""
    if not isinstance(d, dict):
        raise ValueError(f"{name} must be a dict of dW1, db1, …, dW{L}, db{L} shaped like W1, "
                         f"b1, …, got {type(d).__name__}")
    for l in range(1, L + 1):
        for p in "Wb":
            key, expected = f"d{p}{l}", _shape(parameters[f"{p}{l}"])
            if key not in d:
                raise ValueError(f"{name} must hold {key} of shape {expected} (that of "
                                 f"parameters['{p}{l}']); missing {key!r}")
            if _shape(d[key]) != expected:
                raise ValueError(f"{name}['{key}'] must have shape {expected} (that of "
                                 f"parameters['{p}{l}']), got {_shape(d[key])}")


def _check_t(t) -> int:
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 1:
        raise ValueError(f"t must be an integer >= 1 (Adam's step count, from 1), got {t!r}")
    return int(t)


def _tensor(array) -> torch.Tensor:
    """A float64 tensor holding its own copy of ``array``: the rules update it in place."""
    return torch.tensor(np.asarray(array, dtype=np.float64))


def _keys(L: int):
    """(parameter key, gradient key) of every W_l and b_l, in the assignment's order."""
    return [(f"{p}{l}", f"d{p}{l}") for l in range(1, L + 1) for p in "Wb"]


# ---------------------------------------------------------------------------- updates


def update_parameters_with_gd(parameters, grads, learning_rate):
    """One step of gradient descent on every layer: W^[l] := W^[l] - α·dW^[l],
    b^[l] := b^[l] - α·db^[l] (:func:`gdlab.optim.rules.gd`). Returns ``parameters``."""
    L = _layers(parameters)
    _check_like("grads", grads, parameters, L)
    lr = check_positive("learning_rate", learning_rate)
    for key, dkey in _keys(L):
        W = _tensor(parameters[key])
        rules.gd(W, _tensor(grads[dkey]), lr=lr)
        parameters[key] = W.numpy()
    return parameters


def initialize_velocity(parameters):
    """v = {dW1: 0, db1: 0, …}: the velocity of Momentum, zeros shaped like each W^[l], b^[l]."""
    L = _layers(parameters)
    return {dkey: np.zeros(_shape(parameters[key])) for key, dkey in _keys(L)}


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    """One step of Momentum on every layer (:func:`gdlab.optim.rules.momentum`, form "ewa"):

        v_dW^[l] := β·v_dW^[l] + (1-β)·dW^[l] ;  W^[l] := W^[l] - α·v_dW^[l]   (same for b^[l])

    ``beta`` is β, ``learning_rate`` α. Returns ``(parameters, v)``.
    """
    L = _layers(parameters)
    _check_like("grads", grads, parameters, L)
    _check_like("v", v, parameters, L)
    beta = check_beta("beta", beta)
    lr = check_positive("learning_rate", learning_rate)
    for key, dkey in _keys(L):
        W, v_W = _tensor(parameters[key]), _tensor(v[dkey])
        rules.momentum(W, _tensor(grads[dkey]), v_W, lr=lr, beta=beta, form="ewa")
        parameters[key], v[dkey] = W.numpy(), v_W.numpy()
    return parameters, v


def initialize_adam(parameters):
    """(v, s): Adam's first and second moments, each {dW1: 0, db1: 0, …} shaped like the
    parameters."""
    return initialize_velocity(parameters), initialize_velocity(parameters)


def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9,
                                beta2=0.999, epsilon=1e-8):
    """One step of Adam on every layer (:func:`gdlab.optim.rules.adam`):

        v := β₁·v + (1-β₁)·dW ;  s := β₂·s + (1-β₂)·dW²
        v̂ = v/(1-β₁^t) ;  ŝ = s/(1-β₂^t) ;  W := W - α·v̂/(√ŝ + ε)

    for W = W^[l] and b^[l] of every layer; ``t`` is the step count (from 1), ``learning_rate``
    α, ``epsilon`` ε. Returns ``(parameters, v, s, v_corrected, s_corrected)`` as the
    assignment does, the last two being v̂ and ŝ.
    """
    L = _layers(parameters)
    for name, d in (("grads", grads), ("v", v), ("s", s)):
        _check_like(name, d, parameters, L)
    t = _check_t(t)
    lr = check_positive("learning_rate", learning_rate)
    beta1, beta2 = check_beta("beta1", beta1), check_beta("beta2", beta2)
    eps = check_nonnegative("epsilon", epsilon)
    v_correction, S_correction = bias_correction(beta1, t), bias_correction(beta2, t)
    v_corrected, s_corrected = {}, {}
    for key, dkey in _keys(L):
        W, v_W, S_W = _tensor(parameters[key]), _tensor(v[dkey]), _tensor(s[dkey])
        rules.adam(W, _tensor(grads[dkey]), v_W, S_W, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                   v_correction=v_correction, S_correction=S_correction)
        parameters[key], v[dkey], s[dkey] = W.numpy(), v_W.numpy(), S_W.numpy()
        v_corrected[dkey] = v[dkey] / v_correction
        s_corrected[dkey] = s[dkey] / S_correction
    return parameters, v, s, v_corrected, s_corrected


# ---------------------------------------------------------------------------- mini-batches


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """The assignment's mini-batches of (X, Y): shuffle the m columns with
    ``np.random.seed(seed); permutation = list(np.random.permutation(m))`` (numpy's global
    generator is seeded, as in the assignment), then cut them in order into
    ⌊m / mini_batch_size⌋ complete mini-batches and, if m is not a multiple, one with the rest.

    X has shape (n_x, m), Y shape (1, m). Returns a list of (mini_batch_X, mini_batch_Y) of
    shapes (n_x, size) and (1, size). The cutting is :func:`gdlab.minibatches` with that
    permutation as its order.
    """
    if np.ndim(X) != 2:
        raise ValueError(f"X must have shape (n_x, m), one column per example, got {_shape(X)}")
    m = np.shape(X)[1]
    if _shape(Y) != (1, m):
        raise ValueError(f"Y must have shape (1, m) = (1, {m}), one column per example, "
                         f"got {_shape(Y)}")
    size = check_positive_int("mini_batch_size", mini_batch_size)
    np.random.seed(seed)
    permutation = list(np.random.permutation(m))
    rows = minibatches(np.asarray(X).T, np.asarray(Y).T, size, order=permutation)
    return [(X_t.T.numpy(), Y_t.T.numpy()) for X_t, Y_t in rows]


# ---------------------------------------------------------------------------- decay


def update_lr(learning_rate0, epoch_num, decay_rate):
    """α = α₀ / (1 + decay_rate·epoch_num)   (:class:`gdlab.schedules.inverse_time`)"""
    return schedules.inverse_time(learning_rate0, decay_rate)(epoch_num)


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    """α = α₀ / (1 + decay_rate·⌊epoch_num / time_interval⌋): decay once every
    ``time_interval`` epochs (:class:`gdlab.schedules.inverse_time`)"""
    return schedules.inverse_time(learning_rate0, decay_rate, time_interval)(epoch_num)
