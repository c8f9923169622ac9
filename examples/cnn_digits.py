"""A small CNN on scikit-learn's handwritten digits as 1×8×8 images — your own model and data,
trained by gdlab.

``make_model()`` returns the network (two 3×3 convolutions with BatchNorm, max-pooling,
Dropout, a linear layer to the 10 classes' logits). ``make_data()`` returns
``(X_train, Y_train), (X_val, Y_val)``: tensors X of shape (m, 1, 8, 8), float32, the pixels
scaled to [0, 1], and Y of shape (m,), int64 class indices 0..9; 1797 digits split
1438 / 359 with a fixed seed. gdlab infers the cost (cross-entropy) from the class indices.

    gdlab compare --model examples/cnn_digits.py:make_model --data examples/cnn_digits.py:make_data

or in Python::

    model = make_model()
    (X, Y), val = make_data()
    gdlab.fit(model, X, Y, gdlab.Adam(model.parameters(), lr=1e-2), epochs=10, val=val)

(α = 0.01: about what ``gdlab.lr_find(make_model(), make_data())`` suggests, 0.015, and the
best of a 3-epoch sweep from 0.001 to 0.3.)
"""

import torch
from torch import nn

SEED = 0
VAL_FRACTION = 0.2


def make_model(seed: int = SEED) -> nn.Module:
    """The CNN, its weights drawn from torch's RNG seeded with ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),  # 8×8 → 4×4
        nn.Flatten(), nn.Dropout(0.25),
        nn.Linear(32 * 4 * 4, 10),
    )


def make_data(seed: int = SEED):
    """``(X_train, Y_train), (X_val, Y_val)``: the digits as (m, 1, 8, 8) images in [0, 1] and
    their class indices, 20 % held out for validation (seeded by ``seed``)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    Y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(Y), generator=torch.Generator().manual_seed(seed))
    n_val = round(VAL_FRACTION * len(Y))
    val, train = order[:n_val], order[n_val:]
    return (X[train], Y[train]), (X[val], Y[val])
