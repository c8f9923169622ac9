"""``fit()``: train a model with a batch source, an optimizer and callbacks (see
:mod:`gdlab.train.loop`)."""

from __future__ import annotations

from .history import History
from .loop import Fit


def fit(model, X, Y=None, optimizer=None, *, epochs, batch_size=64, loss=None, schedule=None,
        seed=None, callbacks=(), progress=True, batch_order=None, num_threads=None,
        on_divergence=None, divergence_factor=10.0, reduce_factor=0.5, run_dir=None,
        checkpoint_every=None, resume=False, shard_optimizer_state=False, backprop="auto",
        val=None, val_fraction=None) -> History:
    """Train ``model`` on rows of ``X`` (examples) with targets ``Y`` by mini-batch gradient
    descent with ``optimizer``, and return its :class:`History`. The data may also be an
    iterable of ``(x, y)`` mini-batches — a ``torch.utils.data.DataLoader`` — given in X's
    place, Y left out: ``fit(model, loader, optimizer, epochs=...)``; its own order and
    mini-batch size are used (``batch_size``, ``seed`` and ``batch_order`` are about X, Y).

    Each epoch shuffles the rows (seeded by ``seed``; or ``batch_order(epoch_num)`` gives the
    permutation), cuts them into mini-batches of ``batch_size`` (m: batch GD, 1: SGD) and takes
    one optimizer step per mini-batch on the gradient of its mean cost J^{t}. ``schedule``
    (``schedule(epoch_num, t) -> α``) sets α at the start of each epoch, or each mini-batch
    for per-step schedules. ``loss(output, Y_t)`` defaults to the cost the model's output
    implies. ``backprop``: "auto" computes the gradients of a gdlab MLP on its default cost
    in closed form (:mod:`gdlab.backprop`, several times faster than autograd for small
    networks, same numbers) and uses autograd otherwise; "closed_form" or "autograd" force one.
    ``callbacks`` get the running :class:`Fit` at ``on_fit_start``,
    ``on_epoch_end`` (or are called, if plain functions) and ``on_fit_end``.
    ``num_threads`` sets torch's CPU threads while it runs; by default small steps run on one
    thread, which is faster for them, and larger ones keep torch's setting.

    Validation: ``val`` — data the model does not train on, as (X, Y), a Dataset or a
    DataLoader — or ``val_fraction``, a share of the rows of X, Y held out (seeded by
    ``seed``): after each epoch J on it, and for classification the accuracy, go into
    ``History.metrics["val_cost"]`` and ``["val_accuracy"]``. ``loss`` left out, gdlab infers
    the cost from the output and targets (:func:`gdlab.losses.infer_loss`) and names it in
    ``History.loss``.

    Reliability (see docs/reliability.md):

    - ``on_divergence``: None (no check), "stop" or "reduce". A non-finite mini-batch cost, or
      an epoch cost above ``divergence_factor`` × the smoothed cost (and above the first
      epoch's cost), restores the state at the start of that epoch; "stop" then raises
      :class:`Diverged` naming the epoch and α, "reduce" retries the epoch with α multiplied
      by ``reduce_factor``. Either way a "diverged" event goes into ``History.events``.
    - ``run_dir``: a folder for checkpoints (every ``checkpoint_every`` epochs — by default
      every 10 epochs but at most one a second —, at the end and on Ctrl-C, which then
      finishes the epoch and raises KeyboardInterrupt), the history as it grows, ``status.json``
      and live α requests (:func:`gdlab.request_lr`). ``resume``: True continues from the
      newest good checkpoint in ``run_dir`` (if any); or a checkpoint file, a run folder or a
      :meth:`Fit.state_dict`.

    Scaling out (see docs/scaling.md): ``X`` and ``Y`` may be :class:`gdlab.data.memmap.MemmapArray`
    (``.npy`` files read per mini-batch). Run under ``torchrun`` (or
    :func:`gdlab.distributed.launch`) the fit is data-parallel: each mini-batch is split across
    the ranks, the gradients are summed so that every rank takes the step one process would
    take, and only rank 0 writes checkpoints, status and the progress bar;
    ``shard_optimizer_state`` then keeps each rank's share of the moments only
    (``ZeroRedundancyOptimizer``).
    """
    return Fit(model, X, Y, optimizer, epochs=epochs, batch_size=batch_size, loss=loss,
               schedule=schedule, seed=seed, callbacks=callbacks, progress=progress,
               batch_order=batch_order, num_threads=num_threads, on_divergence=on_divergence,
               divergence_factor=divergence_factor, reduce_factor=reduce_factor,
               run_dir=run_dir, checkpoint_every=checkpoint_every, resume=resume,
               shard_optimizer_state=shard_optimizer_state, backprop=backprop, val=val,
               val_fraction=val_fraction).run()
