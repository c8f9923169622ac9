"""Callbacks of a run (``gdlab.callbacks``): checkpoint and history log, live control,
validation, progress bar, TensorBoard. Names load on first use, so that ``gdlab status`` and
``gdlab lr`` (which read a run folder through :mod:`.control`) start without torch."""

from ..._lazy import lazy_names

_NAMES = {name: (module, name) for name, module in (
    ("Checkpoint", ".checkpoint"), ("LiveControl", ".control"), ("Validation", ".validation"),
    ("ProgressBar", ".progress"), ("TensorBoard", ".tensorboard"))}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES)
