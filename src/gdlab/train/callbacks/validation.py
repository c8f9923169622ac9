"""Validation after each epoch: the cost J and, for classification, the accuracy of the model
on data it does not train on, recorded in ``history.metrics`` as ``val_cost`` and
``val_accuracy``."""

from __future__ import annotations

import torch

from ...losses import label_reader


@torch.no_grad()
def evaluate(run, source, chunk: int, read_labels=None):
    """(J, accuracy) of ``run``'s model on the batch source ``source``, in eval mode (the mode
    restored), ``chunk`` rows at a time: J = Σ m_t·J^{t} / m with the run's cost, and the
    fraction of labels ``read_labels(output)`` gets right (None without it; one label per
    example, or per position of one)."""
    model, was_training = run.model, run.model.training
    total, rows, right, labels = 0.0, 0, 0, 0
    model.eval()
    try:
        for X_t, Y_t in source.chunks(chunk):
            output = run.forward(X_t)
            n = X_t.shape[0]
            total += float(run.loss(output, Y_t)) * n
            rows += n
            if read_labels is not None:
                predicted = read_labels(output).reshape(-1)
                right += int((predicted == Y_t.reshape(-1).long()).sum())
                labels += predicted.numel()
    finally:
        model.train(was_training)
    return total / rows, (right / labels if read_labels is not None else None)


class Validation:
    """Callback: J on the batch source ``source`` (the run's own cost, in eval mode, without
    gradients) and the fraction of its labels predicted right where the cost is a
    classification cost (:func:`evaluate`)."""

    def __init__(self, source, chunk: int = 4096):
        self.source, self.chunk = source, chunk

    def on_epoch_end(self, run) -> None:
        cost, accuracy = evaluate(run, self.source, self.chunk, label_reader(run.loss))
        metrics = run.history.metrics
        metrics.setdefault("val_cost", []).append(cost)
        if accuracy is not None:
            metrics.setdefault("val_accuracy", []).append(accuracy)
