"""Training: the loop and what it is made of.

    api.py        fit(): the loop composed with its parts
    loop.py       Fit: epochs × mini-batches → gradients → optimizer.step() → callbacks
    lr.py         LearningRate: the one owner of α (schedule, manual α, divergence cuts)
    gradients.py  autograd | closed form | data-parallel all-reduce
    divergence.py the divergence guard and Diverged
    history.py    History and the epoch cost
    state.py      a run's state (RNGs included) for checkpoints and snapshots
    callbacks/    checkpoint (and the history log), live control (gdlab lr, gdlab status),
                  validation, progress bar, TensorBoard
    runfolder.py  the run folder of gdlab fit: start, resume, write its results
    distributed.py  data-parallel processes

Names load on first use, so that ``gdlab status`` and ``gdlab lr`` (which read the run folder
through :mod:`gdlab.train.callbacks.control`) start without importing torch.
"""

from .._lazy import lazy_names

_NAMES = {"fit": (".api", "fit"), "Fit": (".loop", "Fit"), "History": (".history", "History"),
          "Diverged": (".divergence", "Diverged")}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES)
