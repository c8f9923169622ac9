"""The progress bar of a run (or of several runs' epochs together)."""

from __future__ import annotations


class ProgressBar:
    """A progress bar over epochs (of one run or several) showing the bias-corrected EWA of the
    mini-batch cost and α."""

    def __init__(self, total: int, initial: int = 0):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="epoch", dynamic_ncols=True,
                        leave=False, disable=None)

    def describe(self, label: str) -> None:
        self.bar.set_description(label)

    def on_epoch_end(self, run) -> None:
        self.bar.set_postfix(cost=f"{run.smoothed_cost.current():.4g}", lr=f"{run.lr:.3g}",
                             refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
