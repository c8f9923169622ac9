"""The update rules, written once, on tensors, in the lecture's symbols.

Each rule updates the parameter ``W`` and its state tensors in place from the gradient ``dW``.
The optimizers apply a rule to one parameter at a time (the reference path) or to whole flat
buffers holding many parameters at once (the fast path): the formula is the same code.
"""

from __future__ import annotations

from ..ewa import bias_correction, ewa_step


def gd(W, dW, *, lr):
    """W := W - α·dW"""
    W.add_(dW, alpha=-lr)


def momentum(W, dW, v, *, lr, beta, form="ewa"):
    """form "ewa": v := β·v + (1-β)·dW ;  form "sum": v := β·v + dW ;  then W := W - α·v"""
    if form == "ewa":
        ewa_step(v, dW, beta)
    else:
        v.mul_(beta).add_(dW)
    W.add_(v, alpha=-lr)


def rmsprop(W, dW, S, *, lr, beta2, eps, t=None):
    """S := β₂·S + (1-β₂)·dW² ;  W := W - α·dW/(√S + ε)
    (with t given, Ŝ = S/(1-β₂^t) takes the place of S: bias correction)"""
    ewa_step(S, dW * dW, beta2)
    S_hat = S if t is None else S / bias_correction(beta2, t)
    W.addcdiv_(dW, S_hat.sqrt().add_(eps), value=-lr)


def adam(W, dW, v, S, *, lr, beta1, beta2, eps, t):
    """v := β₁·v + (1-β₁)·dW ;  S := β₂·S + (1-β₂)·dW²
    v̂ = v/(1-β₁^t) ;  Ŝ = S/(1-β₂^t) ;  W := W - α·v̂/(√Ŝ + ε)"""
    ewa_step(v, dW, beta1)
    ewa_step(S, dW * dW, beta2)
    v_hat = v / bias_correction(beta1, t)
    S_hat = S / bias_correction(beta2, t)
    W.addcdiv_(v_hat, S_hat.sqrt().add_(eps), value=-lr)
