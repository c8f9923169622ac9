"""Batch sources: the loop trains the same from tensors, a DataLoader or any iterable of (x, y)
mini-batches; epoch, t, history, callbacks and resuming behave the same whatever the source."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import gdlab
from gdlab import GD, MLP, Adam, Fit, fit
from gdlab.data.batches import (
    IterableBatches,
    MemmapBatches,
    TensorBatches,
    batch_sizes,
    batch_source,
)
from gdlab.train.history import epoch_cost_of

M = 150  # not a multiple of the batch sizes below: the last mini-batch is smaller


def _data(m=M):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(m, 3, generator=gen)
    Y = (X[:, :1] - X[:, 1:2] > 0).float()
    return X, Y


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))


def _in_order(epoch_num):
    return torch.arange(M)


def test_a_dataloader_trains_exactly_as_the_same_tensors_in_the_same_order():
    X, Y = _data()
    net_a, net_b = _net(), _net()
    loss = nn.BCEWithLogitsLoss()
    loader = DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=False)
    from_loader = fit(net_a, loader, Adam(net_a.parameters(), lr=0.01), epochs=3, loss=loss,
                      progress=False)
    from_tensors = fit(net_b, X, Y, Adam(net_b.parameters(), lr=0.01), epochs=3, loss=loss,
                       batch_size=32, batch_order=_in_order, progress=False)
    assert from_loader.costs == from_tensors.costs
    assert from_loader.epoch_costs == from_tensors.epoch_costs
    assert len(from_loader.costs) == 3 * 5  # ⌈150/32⌉ mini-batches an epoch
    for a, b in zip(net_a.parameters(), net_b.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_optimizer_may_follow_the_loader_or_be_named():
    X, Y = _data()
    loader = DataLoader(TensorDataset(X, Y), batch_size=50)
    for call in (lambda net, opt: fit(net, loader, opt, epochs=1, progress=False),
                 lambda net, opt: fit(net, loader, optimizer=opt, epochs=1, progress=False),
                 lambda net, opt: fit(net, loader, None, opt, epochs=1, progress=False)):
        net = _net()
        history = call(net, GD(net.parameters(), lr=0.1))
        assert len(history.costs) == 3 and history.epochs == 1


def test_fit_without_an_optimizer_says_so():
    X, Y = _data()
    with pytest.raises(TypeError, match="fit needs an optimizer"):
        fit(_net(), DataLoader(TensorDataset(X, Y)), epochs=1)


def test_the_epoch_cost_weights_each_mini_batch_by_its_size():
    """J = Σ_t m_t·J^{t} / m also for mini-batches of different sizes (a plain iterable)."""
    X, Y = _data(10)
    batches = [(X[:2], Y[:2]), (X[2:7], Y[2:7]), (X[7:], Y[7:])]
    net = _net()
    history = fit(net, batches, torch.optim.SGD(net.parameters(), lr=0.0), epochs=1,
                  loss=nn.BCEWithLogitsLoss(), progress=False)
    J = history.costs
    assert history.epoch_costs[0] == pytest.approx((2 * J[0] + 5 * J[1] + 3 * J[2]) / 10,
                                                   rel=1e-12)
    with torch.no_grad():  # α = 0: every J^{t} is the initial model's
        whole = nn.BCEWithLogitsLoss()(net(X), Y).item()
    assert history.epoch_costs[0] == pytest.approx(whole, rel=1e-6)


def test_epoch_cost_of_equal_mini_batches_is_their_weighted_mean():
    costs = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64).numpy()
    assert epoch_cost_of(costs, batch_sizes(10, 4)) == pytest.approx((4 + 8 + 8) / 10)
    assert epoch_cost_of(costs, [1, 2, 7]) == pytest.approx((1 + 4 + 28) / 10)
    assert batch_sizes(10, 4) == [4, 4, 2] and batch_sizes(8, 4) == [4, 4]


def test_a_shuffling_dataloader_resumes_bit_for_bit():
    """Its order comes from torch's RNG, which the run's state saves."""
    X, Y = _data()

    def run(epochs, state=None):
        net = _net()
        loader = DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=True)
        run = Fit(net, loader, Adam(net.parameters(), lr=0.01), epochs=epochs,
                  loss=nn.BCEWithLogitsLoss(), progress=False)
        if state is not None:
            run.load_state_dict(state)
        run.run()
        return run

    torch.manual_seed(1)
    straight = run(4)
    torch.manual_seed(1)
    halfway = run(2).state_dict()
    torch.manual_seed(123)  # whatever the RNG holds now, the state puts it back
    resumed = run(4, halfway)
    assert resumed.history.costs == straight.history.costs
    for a, b in zip(resumed.model.parameters(), straight.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_manual_lr_callbacks_and_t_behave_as_with_tensors():
    X, Y = _data()
    loader = DataLoader(TensorDataset(X, Y), batch_size=50)
    net = _net()
    seen = []

    def callback(run):
        seen.append((run.epoch_num, run.t))
        if run.epoch_num == 1:
            run.set_lr(0.05)

    history = fit(net, loader, GD(net.parameters(), lr=0.1), epochs=3,
                  loss=nn.BCEWithLogitsLoss(), callbacks=[callback], progress=False)
    assert seen == [(1, 3), (2, 6), (3, 9)]
    assert history.lrs == [0.1, 0.05, 0.05]
    assert history.events[0] == {"epoch": 2, "t": 4, "event": "set_lr", "old_lr": 0.1,
                                 "lr": 0.05}


def test_a_loader_of_images_and_class_labels_trains_a_cnn():
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(64, 1, 8, 8, generator=gen)
    labels = torch.randint(0, 3, (64,), generator=gen)
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True)
    history = fit(cnn, loader, Adam(cnn.parameters(), lr=0.01), epochs=5,
                  loss=nn.CrossEntropyLoss(), progress=False)
    assert history.epoch_costs[-1] < history.epoch_costs[0]


def test_on_divergence_takes_its_reference_from_the_loader():
    X, Y = _data()
    loader = DataLoader(TensorDataset(X, Y), batch_size=50)
    net = _net()
    run = Fit(net, loader, GD(net.parameters(), lr=0.1), epochs=1, loss=nn.BCEWithLogitsLoss(),
              on_divergence="stop", progress=False)
    run.run()
    with torch.no_grad():
        expected = nn.BCEWithLogitsLoss()(_net()(X), Y).item()
    assert run.guard.initial_cost == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("batch, shown", [
    ({"x": 1, "y": 2}, "a dict with keys 'x', 'y'"),
    ((torch.zeros(2, 3),), "a tuple of 1: Tensor"),
    ([torch.zeros(2, 3), [1, 2]], "a list of 2: Tensor, list"),
])
def test_mini_batches_that_are_not_x_y_pairs_are_refused_in_one_line(batch, shown):
    net = _net()
    with pytest.raises(ValueError) as error:
        fit(net, [batch], GD(net.parameters(), lr=0.1), epochs=1, loss=nn.MSELoss(),
            progress=False)
    message = str(error.value)
    assert "\n" not in message and "pair (x, y) of tensors" in message and shown in message


def test_what_needs_tensors_is_refused_for_a_loader():
    X, Y = _data()
    loader = DataLoader(TensorDataset(X, Y), batch_size=50)
    net = _net()
    with pytest.raises(ValueError, match="batch_order needs the data as tensors X, Y"):
        Fit(net, loader, GD(net.parameters(), lr=0.1), epochs=1, batch_order=_in_order)


def test_an_empty_iterable_is_an_error_not_a_silent_epoch():
    net = _net()
    with pytest.raises(ValueError, match="no mini-batch in epoch 1"):
        fit(net, [], GD(net.parameters(), lr=0.1), epochs=1, loss=nn.MSELoss(),
            progress=False)


def test_batch_source_picks_one_adapter_per_kind_of_data(tmp_path):
    import numpy as np

    X, Y = _data()
    assert isinstance(batch_source(X, Y, 32), TensorBatches)
    assert isinstance(batch_source(X.numpy(), Y.numpy(), 32), TensorBatches)
    loader = DataLoader(TensorDataset(X, Y), batch_size=32)
    source = batch_source(loader)
    assert isinstance(source, IterableBatches) and source.m == M and source.batch_size == 32
    assert batch_source(source) is source
    np.save(tmp_path / "X.npy", X.numpy())
    np.save(tmp_path / "Y.npy", Y.numpy())
    lazy = batch_source(gdlab.open_npy(tmp_path / "X.npy"), gdlab.open_npy(tmp_path / "Y.npy"),
                        32)
    assert isinstance(lazy, MemmapBatches)
    with pytest.raises(TypeError, match="an iterable of \\(x, y\\) mini-batches"):
        batch_source(X)


def test_an_mlp_from_a_loader_is_trained_by_autograd_on_its_default_cost():
    """The closed form needs the rows in memory; from a loader the same cost by autograd."""
    X, Y = _data()
    torch.manual_seed(0)
    a = MLP([3, 5, 1])
    b = MLP([3, 5, 1])
    b.load_state_dict(a.state_dict())
    loader = DataLoader(TensorDataset(X, Y), batch_size=32)
    h_loader = fit(a, loader, GD(a.parameters(), lr=0.1), epochs=2, progress=False)
    h_tensors = fit(b, X, Y, GD(b.parameters(), lr=0.1), epochs=2, batch_size=32,
                    batch_order=_in_order, progress=False)
    assert h_loader.costs == pytest.approx(h_tensors.costs, rel=1e-5)


# --- the cost a model's output and targets imply (loss= left out) ---------------------------


def _inferred(model, output, Y):
    from gdlab.losses import infer_loss

    name, loss = infer_loss(model, output, Y)
    return name, loss(output, Y)


def test_class_indices_with_one_output_per_class_get_cross_entropy():
    z, labels = torch.randn(6, 4), torch.tensor([0, 3, 1, 2, 2, 0])
    name, J = _inferred(nn.Linear(2, 4), z, labels)
    assert name == "cross_entropy"
    torch.testing.assert_close(J, nn.functional.cross_entropy(z, labels))
    sequence = torch.randn(6, 5, 4)  # (N, L, C): a transformer's outputs, classes last
    positions = torch.randint(0, 4, (6, 5))
    name, J = _inferred(nn.Linear(2, 4), sequence, positions)
    torch.testing.assert_close(J, nn.functional.cross_entropy(sequence.reshape(-1, 4),
                                                              positions.reshape(-1)))
    probabilities = torch.softmax(z, 1)
    name, J = _inferred(nn.Sequential(nn.Linear(2, 4), nn.Softmax(dim=1)), probabilities, labels)
    torch.testing.assert_close(J, nn.functional.cross_entropy(z, labels))


def test_zero_one_labels_with_one_output_get_binary_cross_entropy():
    z, labels = torch.randn(6, 1), torch.tensor([0.0, 1, 1, 0, 1, 0])
    name, J = _inferred(nn.Linear(2, 1), z, labels)
    assert name == "binary_cross_entropy"
    torch.testing.assert_close(J, nn.functional.binary_cross_entropy_with_logits(z[:, 0], labels))
    _, J = _inferred(nn.Sequential(nn.Linear(2, 1), nn.Sigmoid()), torch.sigmoid(z),
                     labels.long())
    torch.testing.assert_close(J, nn.functional.binary_cross_entropy_with_logits(z[:, 0], labels))


def test_float_targets_of_the_outputs_shape_get_squared_error():
    y_hat, Y = torch.randn(6, 3), torch.randn(6, 3)
    name, J = _inferred(nn.Linear(2, 3), y_hat, Y)
    assert name == "squared_error"
    torch.testing.assert_close(J, ((y_hat - Y) ** 2).mean())


@pytest.mark.parametrize("output, Y", [
    (torch.randn(64, 10), torch.rand(64)),  # float targets, one per example, 10 outputs
    (torch.randn(64, 1), torch.tensor([0, 1, 2, 3] * 16)),  # class indices, one output
])
def test_anything_else_asks_for_loss_naming_both_shapes(output, Y):
    from gdlab.losses import infer_loss

    with pytest.raises(ValueError) as error:
        infer_loss(nn.Linear(2, 2), output, Y)
    message = str(error.value)
    assert "pass loss=" in message and str(tuple(output.shape)) in message
    assert str(tuple(Y.shape)) in message and "\n" not in message


def test_fit_infers_the_cost_of_a_cnn_on_class_labels_and_records_it():
    gen = torch.Generator().manual_seed(0)
    images, labels = torch.randn(48, 1, 8, 8, generator=gen), torch.randint(0, 3, (48,))
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    history = fit(cnn, images, labels, Adam(cnn.parameters(), lr=0.01), epochs=2, batch_size=16,
                  seed=0, progress=False)
    assert history.loss == "cross_entropy"
    explicit = _net_like(cnn)
    again = fit(explicit, images, labels, Adam(explicit.parameters(), lr=0.01), epochs=2,
                batch_size=16, seed=0, loss=nn.CrossEntropyLoss(), progress=False)
    assert again.loss == "CrossEntropyLoss"
    assert history.costs == pytest.approx(again.costs, rel=1e-6)


def _net_like(net):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))


def test_an_mlp_records_its_outputs_cost():
    X, Y = _data()
    net = MLP([3, 4, 1])
    assert fit(net, X, Y, GD(net.parameters(), lr=0.1), epochs=1,
               progress=False).loss == "binary_cross_entropy"


# --- a map-style Dataset, batched by gdlab; validation --------------------------------------


class _Pairs(torch.utils.data.Dataset):
    """A plain map-style dataset (not a TensorDataset): gdlab collates its examples."""

    def __init__(self, X, Y):
        self.X, self.Y = X, Y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.Y[i]


def test_a_dataset_is_batched_in_the_seeded_order_of_the_same_tensors():
    from gdlab.data.batches import DatasetBatches

    X, Y = _data()
    assert isinstance(batch_source(_Pairs(X, Y), batch_size=32), DatasetBatches)
    assert isinstance(batch_source(TensorDataset(X, Y), batch_size=32), TensorBatches)
    net_a, net_b = _net(), _net()
    loss = nn.BCEWithLogitsLoss()
    from_dataset = fit(net_a, _Pairs(X, Y), Adam(net_a.parameters(), lr=0.01), epochs=3,
                       batch_size=32, seed=4, loss=loss, progress=False)
    from_tensors = fit(net_b, X, Y, Adam(net_b.parameters(), lr=0.01), epochs=3, batch_size=32,
                       seed=4, loss=loss, progress=False)
    assert from_dataset.costs == pytest.approx(from_tensors.costs, rel=1e-6)
    assert len(from_dataset.costs) == 3 * 5


def test_val_records_the_validation_cost_and_accuracy_each_epoch():
    X, Y = _data()
    X_val, Y_val = _data(40)
    net = _net()
    run = Fit(net, X, Y, Adam(net.parameters(), lr=0.05), epochs=3, batch_size=50,
              val=(X_val, Y_val), progress=False, seed=0)
    seen = []
    run.callbacks.append(lambda r: seen.append(len(r.history.metrics["val_cost"])))
    history = run.run()
    assert len(history.metrics["val_cost"]) == len(history.metrics["val_accuracy"]) == 3
    assert seen == [1, 2, 3]  # each epoch's figure there before the other callbacks
    with torch.no_grad():
        z = net(X_val)
    assert history.metrics["val_cost"][-1] == pytest.approx(
        nn.functional.binary_cross_entropy_with_logits(z, Y_val).item(), rel=1e-6)
    assert history.metrics["val_accuracy"][-1] == pytest.approx(
        ((z > 0).float() == Y_val).float().mean().item())


def test_val_fraction_holds_out_a_seeded_share_of_the_rows():
    X, Y = _data()
    net = _net()
    run = Fit(net, X, Y, GD(net.parameters(), lr=0.1), epochs=1, val_fraction=0.2, seed=3,
              batch_size=30, progress=False)
    assert run.m == 120  # 150 rows, 30 held out
    run.run()
    assert len(run.history.metrics["val_cost"]) == 1
    with pytest.raises(ValueError, match="val_fraction must be a number in \\(0, 1\\)"):
        Fit(_net(), X, Y, GD(net.parameters(), lr=0.1), epochs=1, val_fraction=1.5)
    with pytest.raises(ValueError, match="not both"):
        Fit(_net(), X, Y, GD(net.parameters(), lr=0.1), epochs=1, val_fraction=0.2,
            val=(X, Y))


def test_validation_of_a_regression_has_a_cost_and_no_accuracy():
    X, _ = _data()
    Y = X @ torch.tensor([[1.0], [-1.0], [0.5]])
    net = _net()
    history = fit(net, X, Y, Adam(net.parameters(), lr=0.01), epochs=2, val_fraction=0.25,
                  progress=False)
    assert history.loss == "squared_error"
    assert len(history.metrics["val_cost"]) == 2 and "val_accuracy" not in history.metrics


def test_validation_from_a_loader_in_eval_mode():
    """Dropout is off while validating: the validation cost is deterministic."""
    X, Y = _data()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 1))
    val = DataLoader(TensorDataset(X[:40], Y[:40]), batch_size=16)
    run = Fit(net, X, Y, GD(net.parameters(), lr=1e-9), epochs=2, val=val, progress=False)
    run.run()
    first, second = run.history.metrics["val_cost"]
    assert first == pytest.approx(second, rel=1e-6) and net.training
