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

import importlib

_NAMES = {"fit": ".api", "Fit": ".loop", "History": ".history", "Diverged": ".divergence"}
__all__ = list(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module 'gdlab.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(_NAMES[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_NAMES])
