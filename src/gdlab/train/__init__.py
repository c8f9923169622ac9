"""Training: the loop and what it is made of.

    api.py        fit(): the loop composed with its parts
    loop.py       Fit: epochs × mini-batches → gradients → optimizer.step() → callbacks
    lr.py         LearningRate: the one owner of α (schedule, manual α, divergence cuts)
    gradients.py  autograd | closed form | data-parallel all-reduce
    divergence.py the divergence guard and Diverged
    history.py    History and the epoch cost
    state.py      a run's state (RNGs included) for checkpoints and snapshots
    callbacks/    checkpoint, live control (gdlab lr, gdlab status), progress bar
    runfolder.py  the run folder of gdlab fit
    distributed.py  data-parallel processes
"""

from .api import fit
from .divergence import Diverged
from .history import History
from .loop import Fit

__all__ = ["fit", "Fit", "History", "Diverged"]
