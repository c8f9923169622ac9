"""Callbacks of a run (``gdlab.callbacks``): checkpoint and history log, live control,
validation, progress bar, TensorBoard. Names load on first use, so that ``gdlab status`` and
``gdlab lr`` (which read a run folder through :mod:`.control`) start without torch."""

import importlib

_NAMES = {"Checkpoint": ".checkpoint", "LiveControl": ".control", "Validation": ".validation",
          "ProgressBar": ".progress", "TensorBoard": ".tensorboard"}
__all__ = list(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module 'gdlab.train.callbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(_NAMES[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_NAMES])
