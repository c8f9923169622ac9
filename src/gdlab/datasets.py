"""Data for the lab: built-in sets and a user's CSV/NPZ files, split and standardized.

(Loaders to be completed — see ``load_data``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    """A train/test split ready to train on. Rows are examples.

    task: "binary" (Y in {0, 1}, shape (m, 1)), "multiclass" (Y class indices, shape (m,)),
    or "regression" (Y float, shape (m, n_y)). ``n_outputs`` is n_y of the output layer.
    """

    name: str
    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    task: str
    n_outputs: int
    feature_names: list[str]
    class_names: list[str] | None = None

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def output(self) -> str:
        """The output activation the task implies: sigmoid, softmax or linear."""
        return {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}[self.task]
