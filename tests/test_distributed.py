"""Data-parallel fit: two gloo processes on 127.0.0.1 equal one process with the same global
batch (uneven shards and an empty shard included), with and without sharded optimizer state;
a dying rank fails the launcher instead of hanging."""

from __future__ import annotations

import os

import pytest
import torch

import gdlab
from gdlab import distributed

OPTIMIZERS = {"gd": (gdlab.GD, {"lr": 0.1}), "momentum": (gdlab.Momentum, {"lr": 0.1}),
              "rmsprop": (gdlab.RMSProp, {"lr": 0.01}), "adam": (gdlab.Adam, {"lr": 0.01})}
#: (m, batch_size): shards of 4+3 and 3+3; and a last mini-batch of one row (1+0)
CASES = [(41, 7), (41, 10)]


def _data(m):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(m, 3, generator=g, dtype=torch.float64)
    Y = (X[:, 0] - X[:, 1] > 0).double()
    return X, Y


def _train_all(shard):
    """Every optimizer × case; returns {key: (parameters, costs)}."""
    results = {}
    for name, (cls, kwargs) in OPTIMIZERS.items():
        for m, batch_size in CASES:
            torch.manual_seed(0)
            model = gdlab.MLP([3, 4, 1], output="sigmoid").double()
            X, Y = _data(m)
            run = gdlab.Fit(model, X, Y, cls(model.parameters(), **kwargs), epochs=3,
                            batch_size=batch_size, seed=5, progress=False,
                            shard_optimizer_state=shard)
            size = distributed.world()[1]
            assert run.world_size == size and run.sharded == (shard and size > 1)
            history = run.run()
            params = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
            results[(name, m, batch_size)] = (params, torch.tensor(history.costs))
    return results


def _from_disk(folder):
    """Adam on .npy files, sharded state, checkpoints every epoch and the divergence guard."""
    from gdlab.data.memmap import open_npy

    torch.manual_seed(0)
    model = gdlab.MLP([3, 4, 1], output="sigmoid").double()
    run = gdlab.Fit(model, open_npy(folder / "X.npy"), open_npy(folder / "Y.npy"),
                    gdlab.Adam(model.parameters(), lr=0.01), epochs=3, batch_size=7, seed=5,
                    progress=False, shard_optimizer_state=True, run_dir=folder / "run",
                    checkpoint_every=1, on_divergence="stop")
    run.run()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _worker(path):
    ranks = distributed.world()[1]
    assert ranks == 2, ranks
    out = {shard: _train_all(shard) for shard in (False, True)}
    out["disk"] = _from_disk(path.parent)
    if distributed.is_main_process():
        torch.save(out, path)


def _dying_worker():
    if distributed.world()[0] == 1:
        os._exit(3)
    torch.distributed.all_reduce(torch.ones(1))


def test_two_processes_equal_one(tmp_path):
    # collectives time out after 60 s, so a stuck rank fails the test rather than hanging it
    import numpy as np

    X, Y = _data(41)
    np.save(tmp_path / "X.npy", X.numpy())
    np.save(tmp_path / "Y.npy", Y.numpy())
    path = tmp_path / "two.pt"
    distributed.launch(_worker, 2, path, timeout=60, threads=1)
    two = torch.load(path)
    one = _train_all(False)
    assert torch.allclose(two["disk"], one[("adam", 41, 7)][0], rtol=0, atol=1e-6)
    # rank 0 wrote the checkpoint, with the whole (consolidated) optimizer state
    from gdlab.train.callbacks.checkpoint import latest_checkpoint

    state = latest_checkpoint(tmp_path / "run")[0]
    assert state["epoch_num"] == 3 and len(state["optimizer"]["state"]) == 4
    for shard in (False, True):
        for key, (params, costs) in one.items():
            params2, costs2 = two[shard][key]
            assert torch.allclose(params2, params, rtol=0, atol=1e-6), (shard, key)
            assert torch.allclose(costs2, costs, rtol=0, atol=1e-9), (shard, key)


def test_a_dying_rank_fails_the_launcher():
    with pytest.raises(distributed.LaunchFailed, match="worker 1 of 2 died"):
        distributed.launch(_dying_worker, 2, timeout=20, threads=1)


def test_shard_bounds_cover_the_batch():
    for n in range(0, 12):
        for size in (1, 2, 3, 5):
            pieces = [distributed.shard_bounds(n, r, size) for r in range(size)]
            assert pieces[0][0] == 0 and pieces[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
            assert max(b - a for a, b in pieces) - min(b - a for a, b in pieces) <= 1


def test_single_process_is_not_distributed():
    assert distributed.world() == (0, 1)
    model = gdlab.MLP([3, 1], output="sigmoid").double()
    X, Y = _data(10)
    run = gdlab.Fit(model, X, Y, gdlab.GD(model.parameters()), epochs=1, batch_size=5,
                    progress=False, shard_optimizer_state=True)
    assert run.world_size == 1 and run.replicas is None and not run.sharded
