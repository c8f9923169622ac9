"""Data on disk: memory-mapped .npy files and shards, mini-batches and fit on them, make-data,
and `gdlab fit --nproc 2` equal to one process."""

from __future__ import annotations

import csv
import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import gdlab
from gdlab.cli import main
from gdlab.data.memmap import MemmapArray, chunked_order, open_npy


@pytest.fixture(params=["pread", "mapping"], autouse=True)
def read_path(request, monkeypatch):
    """Each test reads rows both ways: pread (files over MAP_AT_MOST) and the mapping."""
    monkeypatch.setattr(gdlab.data.memmap, "MAP_AT_MOST", 0 if request.param == "pread" else 2**40)
    return request.param


def _arrays(m=50):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, 3))
    Y = (X[:, 0] + X[:, 2] > 0).astype(np.float64)
    return X, Y


def test_open_npy_file_and_shards(tmp_path):
    X, _ = _arrays()
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "shards").mkdir()
    for i, (a, b) in enumerate([(0, 20), (20, 21), (21, 50)]):
        np.save(tmp_path / "shards" / f"part-{i:03d}.npy", X[a:b])
    for A in (open_npy(tmp_path / "X.npy"), open_npy(tmp_path / "shards")):
        assert isinstance(A, MemmapArray) and A.shape == (50, 3) and len(A) == 50
        assert all(f is not None for f in A._files) == (gdlab.data.memmap.MAP_AT_MOST == 0)
        rows = np.array([49, 0, 20, 21, 19, -1])
        assert torch.equal(A[rows], torch.from_numpy(X[rows]))
        assert torch.equal(A[5:25], torch.from_numpy(X[5:25]))
        assert torch.equal(A[torch.tensor([3, 30])], torch.from_numpy(X[[3, 30]]))
        with pytest.raises(IndexError):
            A[np.array([50])]
        data = pickle.dumps(A)  # file names, not the data: another process reopens them
        assert len(data) < 1000 and torch.equal(pickle.loads(data)[rows], A[rows])


def test_open_npy_refuses_pickles_and_mismatched_shards(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a numeric .npy"):
        open_npy(tmp_path / "objects.npy")
    (tmp_path / "bad").mkdir()
    np.save(tmp_path / "bad" / "a.npy", np.zeros((2, 3)))
    np.save(tmp_path / "bad" / "b.npy", np.zeros((2, 4)))
    with pytest.raises(ValueError, match="trailing shape"):
        open_npy(tmp_path / "bad")
    with pytest.raises(FileNotFoundError):
        open_npy(tmp_path / "missing.npy")


def test_minibatches_from_disk_hold_the_same_rows(tmp_path):
    X, Y = _arrays()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    on_disk = list(gdlab.minibatches(open_npy(tmp_path / "X.npy"), open_npy(tmp_path / "Y.npy"),
                                     batch_size=8, seed=3))
    in_memory = list(gdlab.minibatches(X, Y, batch_size=8, seed=3))
    assert [len(x) for x, _ in on_disk] == [8] * 6 + [2]
    for (x, y), (x0, y0) in zip(on_disk, in_memory, strict=True):
        order = torch.argsort(x0[:, 0])  # the same rows, sorted within the mini-batch
        assert torch.equal(x[torch.argsort(x[:, 0])], x0[order])
        assert torch.equal(y[torch.argsort(x[:, 0])], y0[order])


def test_fit_from_disk_equals_fit_in_memory(tmp_path):
    X, Y = _arrays()
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "Y.npy", Y)
    results = []
    for data in ((X.astype(np.float32), Y), (open_npy(tmp_path / "X.npy"),
                                             open_npy(tmp_path / "Y.npy"))):
        torch.manual_seed(0)
        model = gdlab.MLP([3, 4, 1], output="sigmoid").double()
        history = gdlab.fit(model, *data, gdlab.Adam(model.parameters(), lr=0.01), epochs=3,
                            batch_size=8, seed=1, progress=False, on_divergence="stop")
        results.append((torch.cat([p.detach().reshape(-1) for p in model.parameters()]),
                        history.costs))
    assert torch.allclose(results[0][0], results[1][0], rtol=0, atol=1e-12)
    assert results[0][1] == pytest.approx(results[1][1], abs=1e-12)


def test_chunked_order_is_a_permutation_of_chunks():
    order = chunked_order(25, 10, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(25))
    ids = [i // 10 for i in order.tolist()]
    runs = [c for k, c in enumerate(ids) if k == 0 or ids[k - 1] != c]
    assert sorted(runs) == [0, 1, 2]  # each chunk's rows come as one run
    assert order.tolist() != list(range(25))


def test_make_data_writes_npy_in_chunks(tmp_path, capsys, read_path):
    if read_path == "mapping":
        pytest.skip("reads no rows")
    out = tmp_path / "data"
    assert main(["make-data", "--rows", "2500", "--features", "7", "--chunk-rows", "1000",
                 "--out", str(out), "-q"]) == 0
    X, Y = np.load(out / "X.npy"), np.load(out / "Y.npy")
    assert X.shape == (2500, 7) and X.dtype == np.float32 and Y.shape == (2500,)
    assert set(np.unique(Y)) == {0, 1} and 0.3 < Y.mean() < 0.7
    assert json.loads((out / "config.json").read_text())["command"] == "make-data"
    assert main(["make-data", "--rows", "0", "--out", str(tmp_path / "x"), "-q"]) == 2
    assert "rows must be" in capsys.readouterr().err


def test_fit_nproc_2_equals_one_process(tmp_path, capsys, read_path):
    if read_path == "mapping":
        pytest.skip("reads no rows")
    args = ["fit", "--data", "moons", "--layers", "2,5,1", "--optimizer", "adam",
            "--epochs", "3", "--batch-size", "63", "--seed", "0", "--dtype", "float64", "-q"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    status = main([*args, "--nproc", "2", "--shard-optimizer-state", "--out",
                   str(tmp_path / "two")])
    assert status == 0, capsys.readouterr().err
    one, two = (load_file(tmp_path / name / "model.safetensors") for name in ("one", "two"))
    assert all(torch.allclose(one[k], two[k], rtol=0, atol=1e-6) for k in one)
    with open(tmp_path / "two" / "history.csv") as f:
        assert len(list(csv.DictReader(f))) == 3
    assert main([*args, "--nproc", "0", "--out", str(tmp_path / "x")]) == 2
