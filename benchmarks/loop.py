"""Training loop: ``gdlab.fit`` against the canonical PyTorch loop, DataLoader(TensorDataset) +
torch.optim.Adam, on an MLP 64-64-1 over 60,000 × 64 examples; one epoch, same model and
optimizer settings. The plain-slicing loop (canonical, minus the DataLoader) is shown too, and
``gdlab.fit`` over the same DataLoader with the same torch.optim.Adam: the loop's own overhead
(ratio ≥ 1.0: no slower than the hand-written loop over that DataLoader)."""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, TensorDataset

import gdlab
from benchmarks.common import median_time

M, N_X = 60_000, 64


def data():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(M, N_X, generator=generator)
    Y = (X @ torch.randn(N_X, 1, generator=generator) > 0).float()
    return X, Y


def model():
    torch.manual_seed(0)
    return gdlab.MLP([N_X, 64, 1], output="sigmoid")


def canonical_epoch(X, Y, batch_size):
    net = model()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    loader = DataLoader(TensorDataset(X, Y), batch_size=batch_size, shuffle=True)

    def epoch():
        for X_t, Y_t in loader:
            optimizer.zero_grad()
            loss_fn(net.logits(X_t), Y_t).backward()
            optimizer.step()
    return epoch


def slicing_epoch(X, Y, batch_size):
    net = model()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def epoch():
        order = torch.randperm(M)
        Xs, Ys = X[order], Y[order]
        for start in range(0, M, batch_size):
            optimizer.zero_grad()
            loss_fn(net.logits(Xs[start:start + batch_size]),
                    Ys[start:start + batch_size]).backward()
            optimizer.step()
    return epoch


def gdlab_loader_epoch(X, Y, batch_size):
    net = model()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(X, Y), batch_size=batch_size, shuffle=True)
    return lambda: gdlab.fit(net, loader, optimizer, epochs=1, progress=False)


def gdlab_epoch(X, Y, batch_size):
    net = model()
    optimizer = gdlab.Adam(net.parameters(), lr=1e-3)
    return lambda: gdlab.fit(net, X, Y, optimizer, epochs=1, batch_size=batch_size,
                             progress=False)


def run(batch_sizes=(64, 512), repeats: int = 5) -> list[dict]:
    X, Y = data()
    rows = []
    for batch_size in batch_sizes:
        times = {name: median_time(make(X, Y, batch_size), repeats=repeats, warmup=1)
                 for name, make in (("DataLoader loop", canonical_epoch),
                                       ("slicing loop", slicing_epoch),
                                    ("gdlab.fit", gdlab_epoch),
                                    ("gdlab.fit(DataLoader)", gdlab_loader_epoch))}
        rows.append({"batch_size": batch_size, **times,
                     "ratio": times["DataLoader loop"] / times["gdlab.fit"],
                     "loader ratio": times["DataLoader loop"] / times["gdlab.fit(DataLoader)"]})
    return rows


def table(rows) -> str:
    lines = ["| batch size | DataLoader + torch Adam | slicing + torch Adam | gdlab.fit | "
             "gdlab vs DataLoader loop | gdlab.fit(DataLoader) + torch Adam | "
             "its ratio to the DataLoader loop |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['batch_size']} | {row['DataLoader loop']:.3f} s | "
                     f"{row['slicing loop']:.3f} s | {row['gdlab.fit']:.3f} s | "
                     f"{row['ratio']:.2f}× | {row['gdlab.fit(DataLoader)']:.3f} s | "
                     f"{row['loader ratio']:.2f}× |")
    return "\n".join(lines)


if __name__ == "__main__":
    start = time.perf_counter()
    print(table(run()))
    print(f"({time.perf_counter() - start:.0f} s)")
