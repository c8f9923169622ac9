"""The course's network MLP([n_x, ..., n_y]) and the costs implied by its output."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gdlab import MLP
from gdlab.losses import default_loss


def test_shapes():
    model = MLP([5, 4, 3, 2])
    assert [tuple(lin.weight.shape) for lin in model.linears] == [(4, 5), (3, 4), (2, 3)]
    assert [tuple(lin.bias.shape) for lin in model.linears] == [(4,), (3,), (2,)]
    assert sum(p.numel() for p in model.parameters()) == 4 * 5 + 4 + 3 * 4 + 3 + 2 * 3 + 2
    X = torch.randn(7, 5)
    assert model(X).shape == (7, 2)
    assert model.logits(X).shape == (7, 2)
    assert MLP([3, 1])(torch.randn(4, 3)).shape == (4, 1)  # logistic regression


def test_numpy_layer_dims():
    model = MLP(np.array([3, 4, 1]))
    assert model.layer_dims == [3, 4, 1]
    assert all(type(n) is int for n in model.layer_dims)
    assert "layer_dims=[3, 4, 1]" in repr(model)


@pytest.mark.parametrize(("init", "gain"), [("he", 2.0), ("xavier", 1.0)])
def test_init_statistics(init, gain):
    torch.manual_seed(0)
    model = MLP([800, 400, 300], init=init)
    for lin in model.linears:
        n_in = lin.in_features
        W = lin.weight.detach()
        # ≥ 120 000 samples: the sample std is within ~0.3 % of the true one
        assert W.std().item() == pytest.approx(math.sqrt(gain / n_in), rel=0.02)
        assert abs(W.mean().item()) < 3 * math.sqrt(gain / n_in) / math.sqrt(W.numel())
        assert torch.equal(lin.bias.detach(), torch.zeros_like(lin.bias))


def test_he_keeps_relu_activations_from_shrinking():
    # the reason for √(2/n): E[a²] stays ≈ E[x²] through ReLU layers
    torch.manual_seed(0)
    model = MLP([500] * 6 + [1], init="he")
    x = torch.randn(2000, 500)
    a = x
    with torch.no_grad():
        for lin in model.linears[:-1]:
            a = torch.relu(lin(a))
    assert (a**2).mean().item() == pytest.approx((x**2).mean().item(), rel=0.25)


def test_torch_init_is_pytorchs_default():
    torch.manual_seed(0)
    model = MLP([100, 50], init="torch")
    bound = 1 / math.sqrt(100)
    W = model.linears[0].weight.detach()
    assert W.abs().max() <= bound and W.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert model.linears[0].bias.abs().max() > 0


def test_init_is_seeded_by_torch():
    torch.manual_seed(3)
    a = MLP([4, 5, 1])
    torch.manual_seed(3)
    b = MLP([4, 5, 1])
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_sigmoid_output_in_open_unit_interval():
    torch.manual_seed(0)
    out = MLP([3, 8, 1], output="sigmoid")(torch.randn(50, 3))
    assert ((out > 0) & (out < 1)).all()


def test_softmax_rows_sum_to_one():
    torch.manual_seed(0)
    out = MLP([3, 8, 4], output="softmax")(torch.randn(50, 3) * 5)
    assert (out > 0).all()
    torch.testing.assert_close(out.sum(dim=1), torch.ones(50))


@pytest.mark.parametrize("output", ["sigmoid", "softmax", "linear"])
@pytest.mark.parametrize("hidden", ["relu", "tanh", "sigmoid", "leaky_relu"])
def test_forward_is_the_output_activation_of_logits(output, hidden):
    torch.manual_seed(0)
    model = MLP([3, 6, 5, 3], hidden=hidden, output=output)
    X = torch.randn(10, 3)
    z = model.logits(X)
    expected = {"sigmoid": torch.sigmoid(z), "softmax": torch.softmax(z, dim=1),
                "linear": z}[output]
    torch.testing.assert_close(model(X), expected)


@pytest.mark.parametrize(("hidden", "act"), [("relu", torch.relu), ("tanh", torch.tanh)])
def test_logits_by_hand(hidden, act):
    torch.manual_seed(0)
    model = MLP([3, 4, 2], hidden=hidden)
    X = torch.randn(6, 3)
    W1, b1 = model.linears[0].weight, model.linears[0].bias
    W2, b2 = model.linears[1].weight, model.linears[1].bias
    torch.testing.assert_close(model.logits(X), act(X @ W1.T + b1) @ W2.T + b2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layer_dims": [3]}, r"layer_dims must list at least \[n_x, n_y\], got \[3\]"),
    ({"layer_dims": []}, r"layer_dims must list at least \[n_x, n_y\], got \[\]"),
    ({"layer_dims": [2, 0, 1]}, r"every layer size in layer_dims must be an integer >= 1, got 0"),
    ({"layer_dims": [2, -4, 1]}, r"every layer size in layer_dims must be an integer >= 1, "
                                 r"got -4"),
    ({"layer_dims": [2, 1.5, 1]}, r"every layer size in layer_dims must be an integer >= 1, "
                                  r"got 1.5"),
    ({"layer_dims": [2, 3], "output": "tanh"},
     r"output must be one of 'sigmoid', 'softmax', 'linear', got 'tanh'"),
    ({"layer_dims": [2, 3], "hidden": "gelu"},
     r"hidden must be one of 'relu', 'tanh', 'sigmoid', 'leaky_relu', got 'gelu'"),
    ({"layer_dims": [2, 3], "init": "kaiming"},
     r"init must be one of 'he', 'xavier', 'torch', got 'kaiming'"),
])
def test_arguments_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLP(**kwargs)


# --- the cost a model's output implies --------------------------------------------------------


def test_default_loss_sigmoid_is_binary_cross_entropy_on_logits():
    torch.manual_seed(0)
    model = MLP([2, 5, 1], output="sigmoid")
    X, Y = torch.randn(20, 2), (torch.rand(20) > 0.5).float()
    forward, loss = default_loss(model)
    a = model(X).squeeze(1)
    expected = -(Y * torch.log(a) + (1 - Y) * torch.log(1 - a)).mean()
    torch.testing.assert_close(loss(forward(X), Y), expected)
    torch.testing.assert_close(loss(forward(X), Y.long()[:, None]), expected)  # ints, (m, 1)


def test_default_loss_sigmoid_is_stable_for_large_logits():
    model = MLP([1, 1], output="sigmoid")
    with torch.no_grad():
        model.linears[0].weight.fill_(1.0)
    forward, loss = default_loss(model)
    value = loss(forward(torch.tensor([[200.0]])), torch.tensor([0.0]))
    assert torch.isfinite(value) and value.item() == pytest.approx(200.0)


def test_default_loss_softmax_is_cross_entropy_on_class_indices():
    torch.manual_seed(0)
    model = MLP([2, 5, 3], output="softmax")
    X, Y = torch.randn(20, 2), torch.randint(0, 3, (20,))
    forward, loss = default_loss(model)
    a = model(X)
    expected = -torch.log(a[torch.arange(20), Y]).mean()
    torch.testing.assert_close(loss(forward(X), Y), expected)


def test_default_loss_linear_is_mean_squared_error():
    torch.manual_seed(0)
    model = MLP([2, 5, 2], output="linear")
    X, Y = torch.randn(20, 2), torch.randn(20, 2)
    forward, loss = default_loss(model)
    torch.testing.assert_close(loss(forward(X), Y), ((model(X) - Y) ** 2).mean())


def test_default_loss_plain_sequential():
    torch.manual_seed(0)
    X, Y = torch.randn(20, 2), (torch.rand(20) > 0.5).float()
    sig = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid())
    forward, loss = default_loss(sig)
    torch.testing.assert_close(loss(forward(X), Y), F.binary_cross_entropy(sig(X).squeeze(1), Y))
    soft = nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=1))
    labels = torch.randint(0, 3, (20,))
    forward, loss = default_loss(soft)
    torch.testing.assert_close(loss(forward(X), labels), F.cross_entropy(soft[0](X), labels))
    # one output of 0/1 labels: binary cross-entropy from the logits (issue "The lab for your
    # own model and data"; it was squared error before); float targets: squared error
    lin = nn.Sequential(nn.Linear(2, 1))
    forward, loss = default_loss(lin)
    torch.testing.assert_close(loss(forward(X), Y),
                               F.binary_cross_entropy_with_logits(lin(X).squeeze(1), Y))
    targets = torch.randn(20)
    forward, loss = default_loss(lin)
    torch.testing.assert_close(loss(forward(X), targets),
                               ((lin(X).squeeze(1) - targets) ** 2).mean())
