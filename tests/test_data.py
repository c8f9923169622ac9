"""Mini-batches: shuffle, then partition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdlab import minibatches


def _indexed(m, n_x=3):
    """Rows that carry their index: X[i] = (i, i, ...), Y[i] = i."""
    idx = torch.arange(m)
    X = idx[:, None].repeat(1, n_x).double()
    return X, idx.clone()


def _check_paired(X_t, Y_t):
    assert torch.equal(X_t[:, 0].long(), Y_t)
    assert torch.equal(X_t, X_t[:, :1].expand_as(X_t))


def test_148_rows_in_batches_of_64():
    X, Y = _indexed(148)
    batches = list(minibatches(X, Y, batch_size=64, seed=0))
    assert [len(X_t) for X_t, _ in batches] == [64, 64, 20]
    assert [len(Y_t) for _, Y_t in batches] == [64, 64, 20]


@pytest.mark.parametrize(("m", "batch_size"), [(148, 64), (100, 10), (7, 3), (5, 1), (5, 5),
                                               (5, 64)])
def test_every_example_exactly_once_per_epoch(m, batch_size):
    X, Y = _indexed(m)
    seen = []
    for X_t, Y_t in minibatches(X, Y, batch_size=batch_size, seed=3):
        _check_paired(X_t, Y_t)
        assert 1 <= len(Y_t) <= batch_size
        seen.append(Y_t)
    seen = torch.cat(seen)
    assert sorted(seen.tolist()) == list(range(m))
    n_batches = -(-m // batch_size)
    assert len(list(minibatches(X, Y, batch_size=batch_size, seed=3))) == n_batches


def test_batch_size_m_is_batch_gradient_descent():
    X, Y = _indexed(37)
    batches = list(minibatches(X, Y, batch_size=37, shuffle=False))
    assert len(batches) == 1
    assert torch.equal(batches[0][0], X) and torch.equal(batches[0][1], Y)


def test_batch_size_one_is_stochastic_gradient_descent():
    X, Y = _indexed(37)
    batches = list(minibatches(X, Y, batch_size=1, seed=0))
    assert len(batches) == 37
    assert all(X_t.shape == (1, 3) and Y_t.shape == (1,) for X_t, Y_t in batches)


def test_same_seed_same_order_different_seed_different_order():
    X, Y = _indexed(148)

    def order(seed):
        return torch.cat([Y_t for _, Y_t in minibatches(X, Y, batch_size=64, seed=seed)])

    assert torch.equal(order(0), order(0))
    assert not torch.equal(order(0), order(1))
    assert not torch.equal(order(0), torch.arange(148))  # it does shuffle


def test_unseeded_shuffle_follows_torch_global_rng():
    X, Y = _indexed(50)
    torch.manual_seed(5)
    a = torch.cat([Y_t for _, Y_t in minibatches(X, Y, batch_size=8)])
    torch.manual_seed(5)
    b = torch.cat([Y_t for _, Y_t in minibatches(X, Y, batch_size=8)])
    c = torch.cat([Y_t for _, Y_t in minibatches(X, Y, batch_size=8)])
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_shuffle_false_keeps_order():
    X, Y = _indexed(20)
    batches = list(minibatches(X, Y, batch_size=6, shuffle=False))
    assert [Y_t.tolist() for _, Y_t in batches] == [list(range(0, 6)), list(range(6, 12)),
                                                     list(range(12, 18)), [18, 19]]


@pytest.mark.parametrize("as_type", [list, torch.tensor, np.array])
def test_explicit_order(as_type):
    X, Y = _indexed(6)
    order = [5, 0, 3, 1, 4, 2]
    batches = list(minibatches(X, Y, batch_size=4, order=as_type(order)))
    assert [Y_t.tolist() for _, Y_t in batches] == [[5, 0, 3, 1], [4, 2]]
    for X_t, Y_t in batches:
        _check_paired(X_t, Y_t)


def test_order_must_have_one_entry_per_row():
    X, Y = _indexed(6)
    with pytest.raises(ValueError, match=r"order must be a permutation of range\(6\), got shape "
                                         r"\(5,\)"):
        minibatches(X, Y, order=[0, 1, 2, 3, 4])


def test_numpy_input():
    X = np.arange(30, dtype=np.float32).reshape(10, 3)
    Y = np.arange(10)
    batches = list(minibatches(X, Y, batch_size=4, seed=0))
    assert [len(Y_t) for _, Y_t in batches] == [4, 4, 2]
    for X_t, Y_t in batches:
        assert isinstance(X_t, torch.Tensor) and X_t.dtype == torch.float32
        assert torch.equal(X_t[:, 0], (Y_t * 3).float())
    assert sorted(torch.cat([Y_t for _, Y_t in batches]).tolist()) == list(range(10))


def test_multi_dimensional_rows_and_targets():
    X = torch.arange(12 * 2 * 2).reshape(12, 2, 2)
    Y = torch.arange(12 * 3).reshape(12, 3)
    for X_t, Y_t in minibatches(X, Y, batch_size=5, seed=1):
        assert X_t.shape[1:] == (2, 2) and Y_t.shape[1:] == (3,)
        assert torch.equal(X_t[:, 0, 0] // 4, Y_t[:, 0] // 3)


def test_inputs_not_modified():
    X, Y = _indexed(20)
    X0, Y0 = X.clone(), Y.clone()
    list(minibatches(X, Y, batch_size=3, seed=0))
    assert torch.equal(X, X0) and torch.equal(Y, Y0)


@pytest.mark.parametrize("batch_size", [0, -1, -64, 2.5, True, "64", None])
def test_batch_size_checked(batch_size):
    X, Y = _indexed(10)
    # checked when called, not only when the first batch is drawn
    with pytest.raises(ValueError, match=rf"batch_size must be an integer >= 1, got "
                                         rf"{batch_size!r}"):
        minibatches(X, Y, batch_size=batch_size)


def test_x_y_length_mismatch():
    with pytest.raises(ValueError, match=r"X and Y must have the same number of rows "
                                         r"\(examples\), got 10 and 9"):
        minibatches(torch.zeros(10, 2), torch.zeros(9))


def test_x_must_be_an_array():
    with pytest.raises(TypeError, match="X must be a torch.Tensor or numpy array, got list"):
        minibatches([[1.0], [2.0]], torch.zeros(2))


def test_numpy_batch_size():
    X, Y = _indexed(10)
    assert len(list(minibatches(X, Y, batch_size=np.int64(4), seed=0))) == 3


@pytest.mark.parametrize("ahead", [1, 2, 3, 256])
def test_partition_cuts_the_rows_in_order_however_many_it_makes_at_a_time(ahead, monkeypatch):
    """partition makes its views a few mini-batches at a time; the mini-batches are the same
    consecutive slices whatever that number, the last with the rest."""
    from gdlab.data import batches as data

    monkeypatch.setattr(data, "PARTITION_AHEAD", ahead)
    X, Y = _indexed(23)
    batches = list(data.partition(X, Y, 4))
    assert [Y_t.tolist() for _, Y_t in batches] == [list(range(s, min(s + 4, 23)))
                                                  for s in range(0, 23, 4)]
    for X_t, Y_t in batches:
        _check_paired(X_t, Y_t)
