"""The update rules, written once, on tensors, in the lecture's symbols.

Each rule updates the parameter ``W`` and its state tensors in place from the gradient ``dW``.
The optimizers apply a rule to one parameter at a time (the reference path), to whole flat
buffers holding many parameters at once (the flat path), or compiled into one fused pass over
those buffers (the fused path, :mod:`gdlab.optim.fused`): the formula is the same code.
The hyperparameters are numbers or 0-d tensors (the fused path passes tensors, so a new α, β
or step count needs no recompiling); ``form`` is a string. The bias corrections 1-β^t come in
computed (by :func:`gdlab.ewa.bias_correction`), once per step rather than once per element.
"""

from __future__ import annotations

from ..ewa import ewa_step


def gd(W, dW, *, lr):
    """W := W - α·dW"""
    W.sub_(lr * dW)


def momentum(W, dW, v, *, lr, beta, form="ewa"):
    """form "ewa": v := β·v + (1-β)·dW ;  form "sum": v := β·v + dW ;  then W := W - α·v"""
    if form == "ewa":
        ewa_step(v, dW, beta)
    else:
        v.mul_(beta).add_(dW)
    W.sub_(lr * v)


def rmsprop(W, dW, S, *, lr, beta2, eps, S_correction=None):
    """S := β₂·S + (1-β₂)·dW² ;  W := W - α·dW/(√S + ε)
    (with ``S_correction`` = 1-β₂^t, Ŝ = S/(1-β₂^t) takes the place of S: bias correction)"""
    ewa_step(S, dW * dW, beta2)
    S_hat = S if S_correction is None else S / S_correction
    W.addcdiv_(lr * dW, S_hat.sqrt().add_(eps), value=-1)  # (W - α·dW/(√Ŝ + ε), one operation)


def adam(W, dW, v, S, *, lr, beta1, beta2, eps, v_correction, S_correction):
    """v := β₁·v + (1-β₁)·dW ;  S := β₂·S + (1-β₂)·dW²
    v̂ = v/(1-β₁^t) ;  Ŝ = S/(1-β₂^t) ;  W := W - α·v̂/(√Ŝ + ε)
    (``v_correction`` = 1-β₁^t and ``S_correction`` = 1-β₂^t, from ``bias_correction``)"""
    ewa_step(v, dW, beta1)
    ewa_step(S, dW * dW, beta2)
    v_hat = v / v_correction
    S_hat = S / S_correction
    # W - α·v̂/(√Ŝ + ε) as one operation, α·v̂ and √Ŝ + ε made in place of v̂ and Ŝ
    W.addcdiv_(v_hat.mul_(lr), S_hat.sqrt_().add_(eps), value=-1)
