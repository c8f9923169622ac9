"""gdlab — the optimization methods of deep learning, exactly, visibly and fast.

Mini-batch gradient descent, exponentially weighted averages with bias correction, Momentum,
RMSProp, Adam and learning-rate decay, as a PyTorch library and a command-line lab.
"""

from . import schedules
from .data import memmap
from .data.batches import minibatches
from .data.memmap import open_npy
from .ewa import EWA, bias_correction, ewa, ewa_step
from .models import MLP
from .optim import GD, Adam, Momentum, RMSProp
from .train import distributed
from .train.callbacks.checkpoint import Checkpoint
from .train.callbacks.control import LiveControl, request_lr
from .train.loop import Diverged, Fit, History, fit

__version__ = "0.1.0"

__all__ = ["EWA", "ewa", "ewa_step", "bias_correction", "GD", "Momentum", "RMSProp", "Adam",
           "schedules", "minibatches", "MLP", "fit", "Fit", "History", "Diverged",
           "Checkpoint", "LiveControl", "request_lr", "distributed", "memmap", "open_npy"]
