"""Validation after each epoch: the cost J and, for classification, the accuracy of the model
on data it does not train on, recorded in ``history.metrics`` as ``val_cost`` and
``val_accuracy``."""

from __future__ import annotations

import torch

from ...losses import label_reader


class Validation:
    """Callback: J on the batch source ``source`` (the run's own cost, in eval mode, without
    gradients; Σ m_t·J^{t} / m over its chunks) and the fraction of its labels predicted
    right where the cost is a classification cost."""

    def __init__(self, source, chunk: int = 4096):
        self.source, self.chunk = source, chunk

    @torch.no_grad()
    def on_epoch_end(self, run) -> None:
        model, was_training = run.model, run.model.training
        read_labels = label_reader(run.loss)
        total, rows, right, labels = 0.0, 0, 0, 0
        model.eval()
        try:
            for X_t, Y_t in self.source.chunks(self.chunk):
                output = run.forward(X_t)
                n = X_t.shape[0]
                total += float(run.loss(output, Y_t)) * n
                if read_labels is not None:  # (one label per example, or per position of one)
                    predicted = read_labels(output).reshape(-1)
                    right += int((predicted == Y_t.reshape(-1).long()).sum())
                    labels += predicted.numel()
                rows += n
        finally:
            model.train(was_training)
        metrics = run.history.metrics
        metrics.setdefault("val_cost", []).append(total / rows)
        if read_labels is not None:
            metrics.setdefault("val_accuracy", []).append(right / labels)
