"""The update rules, written once, on tensors, in the lecture's symbols.

Each rule updates the parameter ``W`` and its state tensors in place from the gradient ``dW``.
The optimizers apply a rule to one parameter at a time (the reference path), to whole flat
buffers holding many parameters at once (the flat path), or compiled into one fused pass over
those buffers (the fused path, :mod:`gdlab.optim.paths`): the formula is the same code.
The hyperparameters are numbers or 0-d tensors (the fused path passes tensors, so a new α, β
or step count needs no recompiling); ``form`` is a string and the switches are booleans. The
bias corrections 1-β^t come in computed (by :func:`gdlab.ewa.bias_correction`), once per step
rather than once per element. An optional state tensor (Adam's ``S_max``, RMSProp's ``v`` and
``dW_avg``) switches its variant on by being given. Tensors are real: a complex parameter
comes in as its real view (``torch.view_as_real``), as torch's optimizers take it.

Every rule starts from :func:`gradient`: gradient ascent (``maximize``) and weight decay λ,
either as L2 regularization (added to dW, so it goes through the averages and the division by
√S + ε) or decoupled (W shrinks by α·λ·W beside the update, as AdamW).
"""

from __future__ import annotations

import torch

from ..ewa import ewa_step


def gradient(W, dW, *, lr, weight_decay=None, decoupled=False, maximize=False):
    """The gradient the update follows, after the decay that does not go through it:

    maximize:                dW := -dW                  (gradient ascent on J)
    weight_decay = λ (L2):   dW := dW + λ·W             (the gradient of λ/2·‖W‖² added)
    decoupled:               W := W - α·λ·W             (before the update; dW unchanged)

    Returns the new dW (a new tensor where it changes: the parameter's ``.grad`` is kept)."""
    if maximize:
        dW = -dW
    if weight_decay is not None:
        if decoupled:
            W.mul_(1 - lr * weight_decay)
        else:
            dW = dW + weight_decay * W
    return dW


def gd(W, dW, *, lr, weight_decay=None, decoupled=False, maximize=False):
    """W := W - α·dW   (dW from :func:`gradient`: ascent, weight decay)"""
    dW = gradient(W, dW, lr=lr, weight_decay=weight_decay, decoupled=decoupled,
                  maximize=maximize)
    W.sub_(lr * dW)


def momentum(W, dW, v, *, lr, beta, form="ewa", nesterov=False, weight_decay=None,
             decoupled=False, maximize=False):
    """form "ewa": v := β·v + (1-β)·dW ;  form "sum": v := β·v + dW ;  then W := W - α·v

    nesterov (the step looks one average ahead):
        form "ewa": W := W - α·(β·v + (1-β)·dW) ;  form "sum": W := W - α·(dW + β·v)
    (so "ewa" with α still equals "sum" with α·(1-β)); dW from :func:`gradient`."""
    dW = gradient(W, dW, lr=lr, weight_decay=weight_decay, decoupled=decoupled,
                  maximize=maximize)
    if form == "ewa":
        ewa_step(v, dW, beta)
        step = ewa_step(v.clone(), dW, beta) if nesterov else v  # (the next average, not kept)
    else:
        v.mul_(beta).add_(dW)
        step = dW + beta * v if nesterov else v
    W.sub_(lr * step)


def rmsprop(W, dW, S, *, lr, beta2, eps, S_correction=None, v=None, momentum=0.0,
            dW_avg=None, weight_decay=None, decoupled=False, maximize=False):
    """S := β₂·S + (1-β₂)·dW² ;  W := W - α·dW/(√S + ε)

    with ``S_correction`` = 1-β₂^t: Ŝ = S/(1-β₂^t) takes the place of S (bias correction);
    centered (``dW_avg`` given, without bias correction): dW_avg := β₂·dW_avg + (1-β₂)·dW
    and √(S - dW_avg²) takes the place of √S;
    with momentum μ (``v`` given): v := μ·v + dW/(√S + ε) ;  W := W - α·v
    (centered and momentum as torch.optim.RMSprop defines them); dW from :func:`gradient`."""
    dW = gradient(W, dW, lr=lr, weight_decay=weight_decay, decoupled=decoupled,
                  maximize=maximize)
    ewa_step(S, dW * dW, beta2)
    S_hat = S if S_correction is None else S / S_correction
    if dW_avg is not None:
        ewa_step(dW_avg, dW, beta2)
        S_hat = S_hat - dW_avg * dW_avg
    if v is None:
        W.addcdiv_(lr * dW, S_hat.sqrt().add_(eps), value=-1)  # (W - α·dW/(√Ŝ + ε), one operation)
    else:
        v.mul_(momentum).addcdiv_(dW, S_hat.sqrt().add_(eps))
        W.sub_(lr * v)


def adam(W, dW, v, S, *, lr, beta1, beta2, eps, v_correction, S_correction, S_max=None,
         weight_decay=None, decoupled=False, maximize=False):
    """v := β₁·v + (1-β₁)·dW ;  S := β₂·S + (1-β₂)·dW²
    v̂ = v/(1-β₁^t) ;  Ŝ = S/(1-β₂^t) ;  W := W - α·v̂/(√Ŝ + ε)

    AMSGrad (``S_max`` given): S_max := max(S_max, S) and Ŝ = S_max/(1-β₂^t), so the step
    never grows back when S falls. ``v_correction`` = 1-β₁^t and ``S_correction`` = 1-β₂^t,
    from ``bias_correction``; dW from :func:`gradient` (decoupled: AdamW)."""
    dW = gradient(W, dW, lr=lr, weight_decay=weight_decay, decoupled=decoupled,
                  maximize=maximize)
    ewa_step(v, dW, beta1)
    ewa_step(S, dW * dW, beta2)
    if S_max is not None:
        S = S_max.copy_(torch.maximum(S_max, S))
    v_hat = v / v_correction
    S_hat = S / S_correction
    # W - α·v̂/(√Ŝ + ε) as one operation, α·v̂ and √Ŝ + ε made in place of v̂ and Ŝ
    W.addcdiv_(v_hat.mul_(lr), S_hat.sqrt_().add_(eps), value=-1)
