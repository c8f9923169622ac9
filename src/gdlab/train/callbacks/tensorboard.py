"""TensorBoard logging: a run's costs, α and validation metrics, written where TensorBoard
(``tensorboard --logdir DIR``) reads them, through ``torch.utils.tensorboard``.

    mini-batch/cost   J^{t} of every mini-batch, at step t
    epoch/cost        J = Σ_t m_t·J^{t} / m of each epoch, at step epoch_num
    epoch/lr          α of each epoch (its first mini-batch's), at step epoch_num
    epoch/<metric>    each per-epoch metric, e.g. val_cost and val_accuracy with ``val=``

TensorBoard smooths the curves with the same EWA (its "smoothing" slider is β).
"""

from __future__ import annotations

from pathlib import Path


class TensorBoard:
    """Callback: writes the run's figures to event files in ``log_dir`` after each epoch
    (flushed, so TensorBoard shows a run as it goes). Needs the ``tensorboard`` package
    (``pip install 'gdlab[tensorboard]'``); a data-parallel run writes from rank 0 only."""

    def __init__(self, log_dir):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoard logging needs the tensorboard package: "
                              "pip install 'gdlab[tensorboard]'") from None
        self._SummaryWriter = SummaryWriter
        self.log_dir = Path(log_dir)
        self.writer = None
        self._written = 0  # mini-batch costs of the history written so far

    def on_fit_start(self, run) -> None:
        if run.rank == 0:
            self.writer = self._SummaryWriter(str(self.log_dir))
            self._written = len(run.history.costs)  # a resumed run's earlier ones are there

    def on_epoch_end(self, run) -> None:
        if self.writer is None:
            return
        history, epoch_num = run.history, run.epoch_num
        new = history.costs[self._written:]
        for t, cost in enumerate(new, start=run.t - len(new) + 1):
            self.writer.add_scalar("mini-batch/cost", cost, t)
        self._written = len(history.costs)
        self.writer.add_scalar("epoch/cost", history.epoch_costs[-1], epoch_num)
        self.writer.add_scalar("epoch/lr", history.lrs[-1], epoch_num)
        for name, values in history.metrics.items():
            if len(values) == history.epochs:  # (a metric recorded at every epoch)
                self.writer.add_scalar(f"epoch/{name}", values[-1], epoch_num)
        self.writer.flush()

    def on_fit_end(self, run) -> None:
        self.close()

    def on_interrupt(self, run) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
