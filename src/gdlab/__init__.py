"""gdlab — the optimization methods of deep learning, exactly, visibly and fast.

Mini-batch gradient descent, exponentially weighted averages with bias correction, Momentum,
RMSProp, Adam and learning-rate decay, as a PyTorch library and a command-line lab.

The names below load on first use (scientific Python's SPEC 1), so ``import gdlab`` and the
``gdlab`` command start without importing torch.
"""

import sys
import types

from ._lazy import lazy_names

__version__ = "0.1.0"

#: public name -> (module that holds it, attribute; None for the module itself)
_NAMES = {
    "EWA": ("gdlab.ewa", "EWA"), "ewa": ("gdlab.ewa", "ewa"),
    "ewa_step": ("gdlab.ewa", "ewa_step"), "bias_correction": ("gdlab.ewa", "bias_correction"),
    "GD": ("gdlab.optim", "GD"), "Momentum": ("gdlab.optim", "Momentum"),
    "RMSProp": ("gdlab.optim", "RMSProp"), "Adam": ("gdlab.optim", "Adam"),
    "AdamW": ("gdlab.optim", "AdamW"),
    "schedules": ("gdlab.schedules", None),
    "minibatches": ("gdlab.data.batches", "minibatches"),
    "MLP": ("gdlab.models", "MLP"),
    "fit": ("gdlab.train", "fit"), "Fit": ("gdlab.train", "Fit"),
    "History": ("gdlab.train", "History"), "Diverged": ("gdlab.train", "Diverged"),
    "resume": ("gdlab.train.runfolder", "resume"),
    "Checkpoint": ("gdlab.train.callbacks.checkpoint", "Checkpoint"),
    "LiveControl": ("gdlab.train.callbacks.control", "LiveControl"),
    "request_lr": ("gdlab.train.callbacks.control", "request_lr"),
    "distributed": ("gdlab.train.distributed", None),
    "memmap": ("gdlab.data.memmap", None),
    "open_npy": ("gdlab.data.memmap", "open_npy"),
    "compare": ("gdlab.lab.compare", "compare"), "Comparison": ("gdlab.lab.compare", "Comparison"),
    "lr_find": ("gdlab.lab.lr_find", "lr_find"), "LRFind": ("gdlab.lab.lr_find", "LRFind"),
    "TensorBoard": ("gdlab.train.callbacks.tensorboard", "TensorBoard"),
    "Validation": ("gdlab.train.callbacks.validation", "Validation"),
    "course": ("gdlab.course", None),
    "callbacks": ("gdlab.train.callbacks", None),
}

__all__ = list(_NAMES)


class _Package(types.ModuleType):
    """The package ``gdlab``, whose name ``ewa`` is the function: importing the submodule
    ``gdlab.ewa`` (which sets that attribute) leaves it the function."""

    def __setattr__(self, name, value):
        if not (name == "ewa" and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__getattr__, __dir__ = lazy_names(__name__, _NAMES)
