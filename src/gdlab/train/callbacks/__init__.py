"""Callbacks of a run: checkpoint and history log, live control, validation, progress bar,
TensorBoard."""
