"""Back propagation in closed form (gdlab.backprop) against autograd, alone and inside fit."""

import copy
import itertools

import pytest
import torch

import gdlab
from gdlab import backprop
from gdlab.backprop import MLPBackprop, supports
from gdlab.losses import binary_cross_entropy, default_loss
from gdlab.models import MLP
from gdlab.train import Fit
from gdlab.train.gradients import ClosedForm

HIDDEN = ("relu", "tanh", "sigmoid", "leaky_relu")
OUTPUTS = ("sigmoid", "softmax", "linear")


def _problem(hidden, output, dtype=torch.float64, m=17, seed=0):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n_y = 3 if output == "softmax" else 2
    model = MLP([4, 6, 5, n_y], hidden=hidden, output=output).to(dtype)
    X = torch.randn(m, 4, generator=generator, dtype=dtype)
    if output == "softmax":
        Y = torch.randint(0, n_y, (m,), generator=generator)
    else:
        Y = (torch.rand(m, n_y, generator=generator) > 0.5).to(dtype)
    return model, X, Y


def _autograd(model, X, Y):
    model.zero_grad()
    forward, loss = default_loss(model)
    J = loss(forward(X), Y)
    J.backward()
    return J.detach(), [p.grad.clone() for p in model.parameters()]


def _stacked_networks(hidden, output, count):
    """(networks, the closed form, their parameters stacked as (C, ...) tensors, X, Y): ``count``
    networks of :func:`_problem`'s shape, each with its own initialization."""
    networks = [_problem(hidden, output, seed=s)[0] for s in range(count)]
    _, X, Y = _problem(hidden, output)
    stacked = [torch.stack(ps) for ps in zip(*[[p.detach() for p in net.parameters()]
                                               for net in networks])]
    return networks, MLPBackprop(networks[0]), stacked, X, Y


def _interleaved(dweights, dbiases):
    """[dW^[1], db^[1], dW^[2], …]: the order of a model's parameters."""
    return [g for pair in zip(dweights, dbiases) for g in pair]


def _parameters(model):
    params = [p.detach() for p in model.parameters()]
    return params[0::2], params[1::2]


@pytest.mark.parametrize("hidden,output", list(itertools.product(HIDDEN, OUTPUTS)))
@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_closed_form_equals_autograd(hidden, output, dtype, tolerance):
    model, X, Y = _problem(hidden, output, dtype)
    J_ref, grads_ref = _autograd(model, X, Y)
    closed_form = MLPBackprop(model)
    Z, dweights, dbiases = closed_form(*_parameters(model), X, Y)
    J = closed_form.cost(Z, Y)
    grads = _interleaved(dweights, dbiases)
    torch.testing.assert_close(J, J_ref, rtol=tolerance, atol=tolerance)
    for grad, ref in zip(grads, grads_ref, strict=True):
        assert grad.shape == ref.shape
        torch.testing.assert_close(grad, ref, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("block_diagonal_max,block_group_max",
                         [(1 << 17, 1 << 12), (1 << 17, 64), (0, 1 << 12)],
                         ids=["block-diagonal", "block-diagonal-in-groups", "bmm"])
@pytest.mark.parametrize("hidden,output", [("relu", "sigmoid"), ("tanh", "softmax"),
                                           ("leaky_relu", "linear")])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_batched_rows_equal_single_networks(hidden, output, block_diagonal_max, block_group_max,
                                            layout, monkeypatch):
    """C networks at once (leading dimension C) give each network's own J and gradients,
    whether a layer's C products are one block-diagonal product, the products of groups of
    networks' blocks, or a batched product, and whether the C networks' parameters are
    contiguous tensors or strided views."""
    monkeypatch.setattr(backprop, "BLOCK_DIAGONAL_MAX", block_diagonal_max)
    monkeypatch.setattr(backprop, "BLOCK_GROUP_MAX", block_group_max)
    networks = [_problem(hidden, output, seed=s)[0] for s in range(6)]
    _, X, Y = _problem(hidden, output)
    closed_form = MLPBackprop(networks[0])
    per_network = [[p.detach() for p in net.parameters()] for net in networks]
    if layout == "contiguous":
        stacked = [torch.stack(ps) for ps in zip(*per_network)]
    else:  # C the last dimension in memory
        stacked = [torch.stack(ps, dim=-1).movedim(-1, 0) for ps in zip(*per_network)]
        assert not any(p.is_contiguous() for p in stacked)
    Z, dweights, dbiases = closed_form(stacked[0::2], stacked[1::2], X, Y)
    J = closed_form.cost(Z, Y)
    assert J.shape == (6,)
    for c, net in enumerate(networks):
        J_ref, grads_ref = _autograd(net, X, Y)
        torch.testing.assert_close(J[c], J_ref, rtol=1e-12, atol=1e-12)
        grads = [g[c] for pair in zip(dweights, dbiases) for g in pair]
        for grad, ref in zip(grads, grads_ref, strict=True):
            torch.testing.assert_close(grad, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_batched_gradients_are_written_into_given_tensors(layout):
    """C networks' gradients go into the given tensors — straight where they are contiguous
    (the vectorized trainer's), by a copy where they are not — twice in a row (the products
    keep where they last wrote), equal to the gradients returned without them."""
    _, closed_form, stacked, X, Y = _stacked_networks("relu", "sigmoid", 3)
    _, dweights_ref, dbiases_ref = closed_form(stacked[0::2], stacked[1::2], X, Y)
    if layout == "contiguous":
        out = [torch.full_like(p, 7.0) for p in stacked]
    else:  # each (C, ...) gradient a view of a larger tensor, C its last dimension
        out = [torch.full((*p.shape[1:], 2 * p.shape[0]), 7.0, dtype=p.dtype)[..., ::2]
               .movedim(-1, 0) for p in stacked]
        assert not any(o.is_contiguous() for o in out)
    for _ in range(2):
        _, dweights, dbiases = closed_form(stacked[0::2], stacked[1::2], X, Y, out[0::2],
                                           out[1::2])
        for given, returned, ref in zip(out, _interleaved(dweights, dbiases),
                                        _interleaved(dweights_ref, dbiases_ref), strict=True):
            assert returned is given
            torch.testing.assert_close(given, ref, rtol=1e-12, atol=1e-12)


def test_batched_gradients_follow_given_tensors_that_move():
    """The products bound to the given dW and db (views of them, for the first layer's rows
    and each db) follow those tensors into new storage."""
    _, closed_form, stacked, X, Y = _stacked_networks("relu", "sigmoid", 3)
    _, dweights_ref, dbiases_ref = closed_form(stacked[0::2], stacked[1::2], X, Y)
    out = [torch.zeros_like(p) for p in stacked]
    closed_form(stacked[0::2], stacked[1::2], X, Y, out[0::2], out[1::2])
    for o in out:
        o.data = torch.full_like(o, 7.0)  # new storage
    closed_form(stacked[0::2], stacked[1::2], X, Y, out[0::2], out[1::2])
    for given, ref in zip(out, _interleaved(dweights_ref, dbiases_ref),
                          strict=True):
        torch.testing.assert_close(given, ref, rtol=1e-12, atol=1e-12)


def test_bound_many_equals_a_call_and_needs_contiguous_gradients():
    networks, closed_form, stacked, X, Y = _stacked_networks("tanh", "linear", 3)
    Z_ref, dweights_ref, dbiases_ref = closed_form(stacked[0::2], stacked[1::2], X, Y)
    out = [torch.full_like(p, 7.0) for p in stacked]
    gradients = MLPBackprop(networks[0]).bound_many(stacked[0::2], stacked[1::2], out[0::2],
                                                    out[1::2])
    for rows in (slice(0, 17), slice(0, 5), slice(0, 17)):  # another mini-batch size between
        Z = gradients(X[rows], Y[rows])
    torch.testing.assert_close(Z, Z_ref, rtol=0, atol=0)
    for given, ref in zip(out, _interleaved(dweights_ref, dbiases_ref),
                          strict=True):
        torch.testing.assert_close(given, ref, rtol=0, atol=0)
    strided = [torch.zeros(*p.shape[1:], p.shape[0]).movedim(-1, 0) for p in stacked]
    with pytest.raises(ValueError, match="contiguous"):
        closed_form.bound_many(stacked[0::2], stacked[1::2], strided[0::2], strided[1::2])


@pytest.mark.parametrize("networks", [1, 6])
def test_weight_gradients_of_narrow_inputs_are_made_transposed(networks):
    """A weight with 2–8 inputs and at least 64 rows — one network's [3, 70, 1], or six
    [3, 12, 1] networks side by side (72 rows) — has dW made as its transpose, for speed: the
    gradients are the same as autograd's."""
    torch.manual_seed(0)
    width = 70 if networks == 1 else 12
    models = [MLP([3, width, 1], hidden="relu", output="sigmoid").double()
              for _ in range(networks)]
    X = torch.randn(20, 3, dtype=torch.float64)
    Y = (torch.rand(20, 1) > 0.5).double()
    closed_form = MLPBackprop(models[0])
    per_network = [[p.detach() for p in net.parameters()] for net in models]
    params = [torch.stack(ps) if networks > 1 else ps[0] for ps in zip(*per_network)]
    Z, dweights, dbiases = closed_form(params[0::2], params[1::2], X, Y)
    kept = closed_form._work["kept", networks > 1]
    transposed = kept.products[0]._dW_t if networks > 1 else kept.gradient_transposes[0]
    assert transposed is not None and transposed.shape == (3, networks * width)
    for c, net in enumerate(models):
        _, grads_ref = _autograd(net, X, Y)
        grads = [g[c] if networks > 1 else g for pair in zip(dweights, dbiases) for g in pair]
        for grad, ref in zip(grads, grads_ref, strict=True):
            torch.testing.assert_close(grad, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("networks", [1, 4])
@pytest.mark.parametrize("means", ["averaging matrix", "segment reduction"])
def test_batch_costs_are_each_mini_batch_cost(output, networks, means, monkeypatch):
    """An epoch's J^{t}, all at once from its Z^[L] (the last mini-batch holding the rest of
    the rows), equal the cost of each mini-batch on its own — by the losses fit uses with
    autograd, for one network or C at once, by either way of taking the means."""
    if means == "segment reduction":  # (the way of epochs with many more rows than here)
        monkeypatch.setattr(backprop, "AVERAGING_MATRIX_MAX", 0)
    models = [_problem("tanh", output, seed=s)[0] for s in range(networks)]
    _, X, Y = _problem("tanh", output, m=23)
    closed_form = MLPBackprop(models[0])
    per_network = [[p.detach() for p in net.parameters()] for net in models]
    stacked = [torch.stack(ps) if networks > 1 else ps[0] for ps in zip(*per_network)]
    Z, _, _ = closed_form(stacked[0::2], stacked[1::2], X, Y)
    costs = closed_form.batch_costs(Z, Y, 5)
    assert costs.shape == ((5, networks) if networks > 1 else (5,))
    for c, net in enumerate(models):
        forward, loss = default_loss(net)
        for t, start in enumerate(range(0, 23, 5)):
            expected = loss(forward(X[start:start + 5]), Y[start:start + 5])
            got = costs[t, c] if networks > 1 else costs[t]
            torch.testing.assert_close(got, expected.detach(), rtol=1e-12, atol=1e-14)


def test_gradients_are_written_into_given_tensors():
    model, X, Y = _problem("relu", "sigmoid")
    params = list(model.parameters())
    out = [torch.full_like(p, 7.0) for p in params]
    _, dweights, dbiases = MLPBackprop(model)(*_parameters(model), X, Y, out[0::2], out[1::2])
    _, grads_ref = _autograd(model, X, Y)
    for given, returned, ref in zip(out, _interleaved(dweights, dbiases),
                                    grads_ref, strict=True):
        assert returned is given
        torch.testing.assert_close(given, ref, rtol=1e-12, atol=1e-12)


def test_gradients_follow_parameters_that_move_and_mini_batches_of_any_size():
    """The closed form keeps views of each W and buffers per mini-batch size from call to call:
    parameters given new storage (as the flat optimizers do) and new values are followed, and
    so are gradients set to None or replaced in between."""
    model, X, Y = _problem("tanh", "linear")
    gradients = MLPBackprop(model).gradients_of(model)
    params = list(model.parameters())
    for k, rows in enumerate((slice(0, 8), slice(8, 13), slice(0, 8), slice(3, 9))):
        with torch.no_grad():
            for p in params:
                p.data = p.data * 1.5 + 0.1  # new values, in new storage
        if k == 2:
            params[1].grad = None
        if k == 3:
            params[2].grad = torch.zeros_like(params[2])
        Z = gradients(X[rows], Y[rows])
        got = [p.grad.clone() for p in model.parameters()]
        J_ref, grads_ref = _autograd(model, X[rows], Y[rows])
        torch.testing.assert_close(MLPBackprop(model).cost(Z, Y[rows]), J_ref)
        for grad, ref in zip(got, grads_ref, strict=True):
            torch.testing.assert_close(grad, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block_diagonal_max", [1 << 17, 0], ids=["block-diagonal", "bmm"])
def test_batched_gradients_follow_parameters_that_move(block_diagonal_max, monkeypatch):
    """C networks' products keep views of each W and b and copies of W in their block
    matrices: the same parameter tensors given new storage and new values, weights and biases
    alike, are followed from call to call, and so are other mini-batch sizes."""
    monkeypatch.setattr(backprop, "BLOCK_DIAGONAL_MAX", block_diagonal_max)
    networks, closed_form, stacked, X, Y = _stacked_networks("tanh", "sigmoid", 4)
    for k, rows in enumerate((slice(0, 8), slice(0, 8), slice(8, 13), slice(3, 9))):
        moved = stacked[0::2] if k % 2 else stacked[1::2]  # weights, then biases, in turn
        for p in moved:
            p.data = p.data * 1.5 + 0.1  # new values, in new storage
        Z, dweights, dbiases = closed_form(stacked[0::2], stacked[1::2], X[rows], Y[rows])
        for c, net in enumerate(networks):
            with torch.no_grad():  # network c's parameters: the stacked ones' c-th
                for p, copies in zip(net.parameters(), stacked, strict=True):
                    p.copy_(copies[c])
            J_ref, grads_ref = _autograd(net, X[rows], Y[rows])
            torch.testing.assert_close(closed_form.cost(Z, Y[rows])[c], J_ref,
                                       rtol=1e-12, atol=1e-12)
            grads = [g[c] for pair in zip(dweights, dbiases) for g in pair]
            for grad, ref in zip(grads, grads_ref, strict=True):
                torch.testing.assert_close(grad, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("networks", [1, 3])
@pytest.mark.parametrize("given", [False, True], ids=["new-gradients", "given-gradients"])
def test_what_the_closed_form_keeps_works_in_inference_mode_and_out_of_it(networks, given,
                                                                          monkeypatch):
    """The buffers and views kept between calls are ordinary tensors, whichever mode made them:
    a call in inference mode (as fit and the sweep make it) may follow one outside, and the
    other way round — with the gradients' tensors given (C networks' bound products, in groups
    here, kept from call to call) or not."""
    monkeypatch.setattr(backprop, "BLOCK_GROUP_MAX", 64)
    models = [_problem("relu", "sigmoid", seed=s)[0] for s in range(networks)]
    _, X, Y = _problem("relu", "sigmoid")
    per_network = [[p.detach() for p in net.parameters()] for net in models]
    params = [torch.stack(ps) if networks > 1 else ps[0] for ps in zip(*per_network)]
    out = [torch.empty_like(p) for p in params] if given else [None] * len(params)
    closed_form = MLPBackprop(models[0])
    results = []
    for inference in (True, False, True):
        with torch.inference_mode(inference):
            Z, dweights, dbiases = closed_form(params[0::2], params[1::2], X, Y,
                                               *((out[0::2], out[1::2]) if given else ()))
        results.append([Z, *(g.clone() for g in (*dweights, *dbiases))])
    for result in results[1:]:
        for got, first in zip(result, results[0], strict=True):
            torch.testing.assert_close(got, first, rtol=0, atol=0)


def _fit(model, X, Y, backprop, optimizer="adam", **kwargs):
    model = copy.deepcopy(model)
    make = {"adam": lambda ps: gdlab.Adam(ps, lr=0.01),
            "momentum": lambda ps: gdlab.Momentum(ps, lr=0.05, beta=0.9),
            "torch_sgd": lambda ps: torch.optim.SGD(ps, lr=0.05)}[optimizer]
    history = gdlab.fit(model, X, Y, make(model.parameters()), epochs=6, batch_size=5, seed=3,
                        progress=False, backprop=backprop, **kwargs)
    return model, history


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "torch_sgd"])
@pytest.mark.parametrize("output", OUTPUTS)
def test_fit_closed_form_equals_autograd(optimizer, output):
    model, X, Y = _problem("relu", output)
    schedule = gdlab.schedules.inverse_time(0.01, decay_rate=0.5)
    trained = {}
    for path in ("closed_form", "autograd"):
        trained[path] = _fit(model, X, Y, path, optimizer, schedule=schedule)
    (net_a, hist_a), (net_b, hist_b) = trained["closed_form"], trained["autograd"]
    assert hist_a.costs == pytest.approx(hist_b.costs, rel=1e-12, abs=1e-14)
    assert hist_a.epoch_costs == pytest.approx(hist_b.epoch_costs, rel=1e-12, abs=1e-14)
    for p, q in zip(net_a.parameters(), net_b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", [lambda ps: gdlab.Adam(ps, lr=0.01),
                                  lambda ps: torch.optim.Adam(ps, lr=0.01)])
def test_after_a_closed_form_fit_autograd_training_goes_on(make):
    """The closed form runs under inference mode, yet leaves ordinary tensors behind: the
    parameters, their gradients and the optimizer's state take autograd and in-place updates."""
    model, X, Y = _problem("relu", "sigmoid")
    optimizer = make(model.parameters())
    gdlab.fit(model, X, Y, optimizer, epochs=2, batch_size=5, progress=False,
              backprop="closed_form")
    state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)]
    assert state and not any(t.is_inference() for t in state)
    assert not any(t.is_inference() for p in model.parameters() for t in (p, p.grad))
    forward, loss = default_loss(model)
    for _ in range(2):  # the same optimizer goes on, with autograd's gradients
        optimizer.zero_grad()
        loss(forward(X), Y).backward()
        optimizer.step()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)  # in place, as a user may
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_auto_uses_closed_form_only_where_it_computes_what_autograd_would():
    model, X, Y = _problem("relu", "sigmoid")

    def chosen(model, **kwargs):
        run = Fit(model, X, Y, gdlab.Adam(model.parameters()), epochs=1, batch_size=8,
                  progress=False,
                  **kwargs)
        return isinstance(run.gradients, ClosedForm)

    assert chosen(model)
    assert not chosen(model, backprop="autograd")
    assert not chosen(model, loss=binary_cross_entropy)  # applied to a^[L], not z^[L]
    hooked = copy.deepcopy(model)
    hooked.linears[0].register_forward_hook(lambda module, inputs, output: output * 2)
    assert not chosen(hooked)
    frozen = copy.deepcopy(model)
    frozen.linears[0].weight.requires_grad_(False)
    assert not chosen(frozen)
    plain = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Sigmoid())
    assert not supports(plain, *default_loss(plain))


def test_bad_backprop_choice_is_a_clear_error():
    model, X, Y = _problem("relu", "sigmoid")
    with pytest.raises(ValueError, match="backprop must be one of auto, closed_form, autograd"):
        gdlab.fit(model, X, Y, gdlab.Adam(model.parameters()), epochs=1, batch_size=8,
                  backprop="numpy")
    plain = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Sigmoid())
    with pytest.raises(ValueError, match="backprop='closed_form' needs a gdlab MLP"):
        gdlab.fit(plain, X, Y, gdlab.Adam(plain.parameters()), epochs=1, batch_size=8,
                  backprop="closed_form")
