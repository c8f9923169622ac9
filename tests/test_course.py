"""The course reproduction against an independent plain-numpy implementation of the assignment.

The reference below is written the way the course writes it: column layout (n_x, m),
parameters in a dict, forward/backward propagation by hand, the update functions, the
mini-batch shuffling with ``np.random.seed(seed)`` and the ``model()`` loop with its
``seed += 1`` per epoch and the decay computed after each epoch. gdlab's output (its own MLP,
optimizers, schedules and ``fit``) must print the same text, digit for digit.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import sklearn.datasets
import torch

import gdlab
import gdlab.course
from gdlab.lab import course
from gdlab.lab.course import course_data, format_course, run_course

# ---------------------------------------------------------------------------------------------
# The assignment, in plain numpy (column layout)
# ---------------------------------------------------------------------------------------------


def load_dataset():
    np.random.seed(3)
    train_X, train_Y = sklearn.datasets.make_moons(n_samples=300, noise=.2)
    train_X = train_X.T
    train_Y = train_Y.reshape((1, train_Y.shape[0]))
    return train_X, train_Y


def initialize_parameters(layer_dims):
    np.random.seed(3)
    parameters = {}
    L = len(layer_dims)
    for l in range(1, L):
        parameters['W' + str(l)] = (np.random.randn(layer_dims[l], layer_dims[l - 1])
                                    * np.sqrt(2 / layer_dims[l - 1]))
        parameters['b' + str(l)] = np.zeros((layer_dims[l], 1))
    return parameters


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(0, x)


def forward_propagation(X, parameters):
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    z1 = np.dot(W1, X) + b1
    a1 = relu(z1)
    z2 = np.dot(W2, a1) + b2
    a2 = relu(z2)
    z3 = np.dot(W3, a2) + b3
    a3 = sigmoid(z3)
    cache = (z1, a1, W1, b1, z2, a2, W2, b2, z3, a3, W3, b3)
    return a3, cache


def compute_cost(a3, Y):
    logprobs = np.multiply(-np.log(a3), Y) + np.multiply(-np.log(1 - a3), 1 - Y)
    cost_total = np.sum(logprobs)
    return cost_total


def backward_propagation(X, Y, cache):
    m = X.shape[1]
    (z1, a1, W1, b1, z2, a2, W2, b2, z3, a3, W3, b3) = cache
    dz3 = 1. / m * (a3 - Y)
    dW3 = np.dot(dz3, a2.T)
    db3 = np.sum(dz3, axis=1, keepdims=True)
    da2 = np.dot(W3.T, dz3)
    dz2 = np.multiply(da2, np.int64(a2 > 0))
    dW2 = np.dot(dz2, a1.T)
    db2 = np.sum(dz2, axis=1, keepdims=True)
    da1 = np.dot(W2.T, dz2)
    dz1 = np.multiply(da1, np.int64(a1 > 0))
    dW1 = np.dot(dz1, X.T)
    db1 = np.sum(dz1, axis=1, keepdims=True)
    return {"dz3": dz3, "dW3": dW3, "db3": db3, "da2": da2, "dz2": dz2, "dW2": dW2, "db2": db2,
            "da1": da1, "dz1": dz1, "dW1": dW1, "db1": db1}


def predict(X, y, parameters):
    m = X.shape[1]
    p = np.zeros((1, m), dtype=int)
    a3, caches = forward_propagation(X, parameters)
    for i in range(0, a3.shape[1]):
        p[0, i] = 1 if a3[0, i] > 0.5 else 0
    return "Accuracy: " + str(np.mean(p[0, :] == y[0, :]))


def update_parameters_with_gd(parameters, grads, learning_rate):
    L = len(parameters) // 2
    for l in range(1, L + 1):
        parameters["W" + str(l)] = parameters["W" + str(l)] - learning_rate * grads["dW" + str(l)]
        parameters["b" + str(l)] = parameters["b" + str(l)] - learning_rate * grads["db" + str(l)]
    return parameters


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    np.random.seed(seed)
    m = X.shape[1]
    mini_batches = []
    permutation = list(np.random.permutation(m))
    shuffled_X = X[:, permutation]
    shuffled_Y = Y[:, permutation].reshape((1, m))
    num_complete_minibatches = math.floor(m / mini_batch_size)
    for k in range(0, num_complete_minibatches):
        mini_batch_X = shuffled_X[:, k * mini_batch_size:(k + 1) * mini_batch_size]
        mini_batch_Y = shuffled_Y[:, k * mini_batch_size:(k + 1) * mini_batch_size]
        mini_batches.append((mini_batch_X, mini_batch_Y))
    if m % mini_batch_size != 0:
        mini_batch_X = shuffled_X[:, num_complete_minibatches * mini_batch_size:m]
        mini_batch_Y = shuffled_Y[:, num_complete_minibatches * mini_batch_size:m]
        mini_batches.append((mini_batch_X, mini_batch_Y))
    return mini_batches


def initialize_velocity(parameters):
    L = len(parameters) // 2
    v = {}
    for l in range(1, L + 1):
        v["dW" + str(l)] = np.zeros(parameters["W" + str(l)].shape)
        v["db" + str(l)] = np.zeros(parameters["b" + str(l)].shape)
    return v


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    L = len(parameters) // 2
    for l in range(1, L + 1):
        v["dW" + str(l)] = beta * v["dW" + str(l)] + (1 - beta) * grads['dW' + str(l)]
        v["db" + str(l)] = beta * v["db" + str(l)] + (1 - beta) * grads['db' + str(l)]
        parameters["W" + str(l)] = parameters["W" + str(l)] - learning_rate * v["dW" + str(l)]
        parameters["b" + str(l)] = parameters["b" + str(l)] - learning_rate * v["db" + str(l)]
    return parameters, v


def initialize_adam(parameters):
    L = len(parameters) // 2
    v, s = {}, {}
    for l in range(1, L + 1):
        v["dW" + str(l)] = np.zeros(parameters["W" + str(l)].shape)
        v["db" + str(l)] = np.zeros(parameters["b" + str(l)].shape)
        s["dW" + str(l)] = np.zeros(parameters["W" + str(l)].shape)
        s["db" + str(l)] = np.zeros(parameters["b" + str(l)].shape)
    return v, s


def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9,
                                beta2=0.999, epsilon=1e-8):
    L = len(parameters) // 2
    v_corrected, s_corrected = {}, {}
    for l in range(1, L + 1):
        for g in ("dW", "db"):
            key, p = g + str(l), g[1] + str(l)
            v[key] = beta1 * v[key] + (1 - beta1) * grads[key]
            v_corrected[key] = v[key] / (1 - np.power(beta1, t))
            s[key] = beta2 * s[key] + (1 - beta2) * np.power(grads[key], 2)
            s_corrected[key] = s[key] / (1 - np.power(beta2, t))
            parameters[p] = parameters[p] - learning_rate * v_corrected[key] / (
                np.sqrt(s_corrected[key]) + epsilon)
    return parameters, v, s, v_corrected, s_corrected


def update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate, epsilon):
    """Not in the assignment: the lecture's RMSProp (no bias correction), written alike."""
    L = len(parameters) // 2
    for l in range(1, L + 1):
        for g in ("dW", "db"):
            key, p = g + str(l), g[1] + str(l)
            s[key] = beta2 * s[key] + (1 - beta2) * np.power(grads[key], 2)
            parameters[p] = parameters[p] - learning_rate * grads[key] / (
                np.sqrt(s[key]) + epsilon)
    return parameters, s


def update_lr(learning_rate0, epoch_num, decay_rate):
    learning_rate = 1 / (1 + decay_rate * epoch_num) * learning_rate0
    return learning_rate


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    learning_rate = 1 / (1 + decay_rate * np.floor(epoch_num / time_interval)) * learning_rate0
    return learning_rate


def model(X, Y, layers_dims, optimizer, learning_rate=0.0007, mini_batch_size=64, beta=0.9,
          beta1=0.9, beta2=0.999, epsilon=1e-8, num_epochs=5000, print_cost=True, decay=None,
          decay_rate=1):
    """The assignment's model(); returns (printed lines, parameters, every epoch's cost)."""
    lines, epoch_costs = [], []
    t = 0
    seed = 10
    m = X.shape[1]
    learning_rate0 = learning_rate
    parameters = initialize_parameters(layers_dims)
    if optimizer == "momentum":
        v = initialize_velocity(parameters)
    elif optimizer == "adam":
        v, s = initialize_adam(parameters)
    elif optimizer == "rmsprop":
        _, s = initialize_adam(parameters)
    for i in range(num_epochs):
        seed = seed + 1
        minibatches = random_mini_batches(X, Y, mini_batch_size, seed)
        cost_total = 0
        for minibatch in minibatches:
            (minibatch_X, minibatch_Y) = minibatch
            a3, caches = forward_propagation(minibatch_X, parameters)
            cost_total += compute_cost(a3, minibatch_Y)
            grads = backward_propagation(minibatch_X, minibatch_Y, caches)
            if optimizer == "gd":
                parameters = update_parameters_with_gd(parameters, grads, learning_rate)
            elif optimizer == "momentum":
                parameters, v = update_parameters_with_momentum(parameters, grads, v, beta,
                                                                learning_rate)
            elif optimizer == "adam":
                t = t + 1
                parameters, v, s, _, _ = update_parameters_with_adam(
                    parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon)
            elif optimizer == "rmsprop":
                parameters, s = update_parameters_with_rmsprop(parameters, grads, s, beta2,
                                                               learning_rate, epsilon)
        cost_avg = cost_total / m
        epoch_costs.append(cost_avg)
        if decay:
            learning_rate = decay(learning_rate0, i, decay_rate)
        if print_cost and i % 1000 == 0:
            lines.append("Cost after epoch %i: %f" % (i, cost_avg))  # noqa: UP031
            if decay:
                lines.append("learning rate after epoch %i: %f" % (i, learning_rate))  # noqa: UP031
    return lines, parameters, epoch_costs


REFERENCE_DECAYS = {None: None, "update_lr": update_lr, "schedule_lr_decay": schedule_lr_decay}
REFERENCE_LR0 = {"gd": 0.1, "momentum": 0.1, "rmsprop": 0.01, "adam": 0.01}


def reference_run(optimizer, decay, epochs):
    """The assignment's printed text for one run (after gdlab's header line) and its costs."""
    train_X, train_Y = load_dataset()
    kwargs = {"optimizer": optimizer, "num_epochs": epochs}
    if decay is not None:
        kwargs.update(learning_rate=REFERENCE_LR0[optimizer], decay=REFERENCE_DECAYS[decay])
    lines, parameters, epoch_costs = model(train_X, train_Y, [train_X.shape[0], 5, 2, 1],
                                           **kwargs)
    label = "None" if decay is None else decay
    text = "\n".join([f"== {optimizer}, decay={label} ==", *lines,
                      predict(train_X, train_Y, parameters)])
    return text, epoch_costs


# ---------------------------------------------------------------------------------------------
# gdlab against the reference
# ---------------------------------------------------------------------------------------------

# Every optimizer × decay for SHORT epochs (each epoch's cost and the accuracy compared), and
# gd, adam and adam with schedule_lr_decay for LONG epochs: the printed epochs 0 and 1000, and
# schedule_lr_decay's first cut, which acts from epoch 1001 on. The short set trains in a pool
# of two processes, the long set in this one (starting a pool costs a torch import per worker).
SHORT, LONG = 200, 1010
OPTIMIZERS = ("gd", "momentum", "adam", "rmsprop")
DECAYS = (None, "update_lr", "schedule_lr_decay")
ALL = [(opt, decay) for opt in OPTIMIZERS for decay in DECAYS]
LONG_RUNS = [("gd", None), ("adam", None), ("adam", "schedule_lr_decay")]


@pytest.fixture(scope="module")
def short_result():
    return run_course(optimizers=OPTIMIZERS, decays=DECAYS, epochs=SHORT, workers=2,
                      keep_history=True)


@pytest.fixture(scope="module")
def long_result():
    first = run_course(("gd", "adam"), [None], LONG, workers=1, keep_history=True)
    second = run_course("adam", "schedule_lr_decay", LONG, workers=1, keep_history=True)
    return {"epochs": LONG, "runs": first["runs"] + second["runs"]}


def _check_against_reference(result, optimizer, decay, epochs):
    runs = {(r["optimizer"], r["decay"]): r for r in result["runs"]}
    run = runs[(optimizer, decay)]
    expected_text, expected_costs = reference_run(optimizer, decay, epochs)
    assert course.format_run(run) == expected_text
    # stronger than the printed digits: every epoch's cost, to round-off
    np.testing.assert_allclose(run["epoch_costs"], expected_costs, rtol=1e-9, atol=0)


def test_data_matches_the_assignment():
    X, Y = course_data()
    train_X, train_Y = load_dataset()
    assert X.shape == (300, 2) and Y.shape == (300, 1)
    assert X.dtype == np.float64 and Y.dtype == np.float64
    np.testing.assert_array_equal(X, train_X.T)
    np.testing.assert_array_equal(Y, train_Y.T)


def test_data_leaves_numpy_global_generator_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    course_data()
    assert np.random.rand() == expected


def test_init_matches_the_assignment():
    net = course.course_model()
    parameters = initialize_parameters([2, 5, 2, 1])
    for l, linear in enumerate(net.linears, start=1):
        np.testing.assert_array_equal(linear.weight.detach().numpy(), parameters[f"W{l}"])
        np.testing.assert_array_equal(linear.bias.detach().numpy(), parameters[f"b{l}"][:, 0])
        assert linear.weight.dtype == linear.bias.dtype == course.torch.float64


def test_batch_order_matches_random_mini_batches():
    X, Y = load_dataset()
    for epoch_num in (1, 2, 5000):
        batches = random_mini_batches(X, Y, 64, seed=10 + epoch_num)
        order = course.course_batch_order(epoch_num).numpy()
        assert [b[0].shape[1] for b in batches] == [64, 64, 64, 64, 44]
        np.testing.assert_array_equal(np.concatenate([b[0] for b in batches], axis=1),
                                      X[:, order])


def test_lagged_decay_matches_the_assignment_timing():
    schedule = course.course_schedule("gd", "update_lr")
    # epochs 0 and 1 (epoch_num 1, 2) train at α₀; epoch i+1 trains at the α after epoch i
    assert schedule(1) == schedule(2) == 0.1
    assert schedule(3) == pytest.approx(0.05)
    assert schedule.after_epoch(0) == 0.1
    assert schedule.after_epoch(1000) == pytest.approx(0.1 / 1001)
    step = course.course_schedule("adam", "schedule_lr_decay")
    assert step(1001) == 0.01 and step(1002) == pytest.approx(0.005)
    assert step.after_epoch(999) == 0.01 and step.after_epoch(1000) == pytest.approx(0.005)
    assert course.course_schedule("adam", None) is None


@pytest.mark.parametrize("optimizer,decay", ALL)
def test_printed_output_equals_the_numpy_reference(short_result, optimizer, decay):
    _check_against_reference(short_result, optimizer, decay, SHORT)


@pytest.mark.parametrize("optimizer,decay", LONG_RUNS)
def test_printed_output_equals_the_numpy_reference_past_epoch_1000(long_result, optimizer,
                                                                    decay):
    _check_against_reference(long_result, optimizer, decay, LONG)


def test_runs_come_in_order_with_the_json_shape(short_result, long_result):
    assert [(r["optimizer"], r["decay"]) for r in short_result["runs"]] == ALL
    assert [(r["optimizer"], r["decay"]) for r in long_result["runs"]] == LONG_RUNS
    for result, printed in ((short_result, ["0"]), (long_result, ["0", "1000"])):
        assert json.loads(json.dumps(result)) == result
        for run in result["runs"]:
            assert run["optimizer"] in ("gd", "momentum", "rmsprop", "adam")
            assert run["decay"] in (None, "update_lr", "schedule_lr_decay")
            assert list(run["costs"]) == printed
            assert all(isinstance(c, float) for c in run["costs"].values())
            assert isinstance(run["accuracy"], float) and 0 <= run["accuracy"] <= 1
            if run["decay"] is None:
                assert "lrs" not in run
            else:
                assert list(run["lrs"]) == printed
            assert len(run["epoch_costs"]) == result["epochs"]


LINE = re.compile(r"Cost after epoch \d+: \d+\.\d{6}|learning rate after epoch \d+: \d+\.\d{6}"
                  r"|Accuracy: [01](\.\d+)?|== (gd|momentum|rmsprop|adam), "
                  r"decay=(None|update_lr|schedule_lr_decay) ==|")


def test_text_format(short_result, long_result):
    for result in (short_result, long_result):
        text = format_course(result)
        lines = text.split("\n")
        for line in lines:
            assert LINE.fullmatch(line), line
        n_runs = len(result["runs"])
        n_decay = sum(r["decay"] is not None for r in result["runs"])
        assert sum(line.startswith("== ") for line in lines) == n_runs
        assert sum(line.startswith("Accuracy: ") for line in lines) == n_runs
        n_printed = len(result["runs"][0]["costs"])
        assert sum(line.startswith("Cost after") for line in lines) == n_printed * n_runs
        assert sum(line.startswith("learning rate") for line in lines) == n_printed * n_decay
        assert len(text.split("\n\n")) == n_runs
    runs = long_result["runs"]
    blocks = [block.split("\n") for block in format_course(long_result).split("\n\n")]
    assert blocks[0] == ["== gd, decay=None ==",
                         f"Cost after epoch 0: {runs[0]['costs']['0']:f}",
                         f"Cost after epoch 1000: {runs[0]['costs']['1000']:f}",
                         "Accuracy: " + str(np.float64(runs[0]["accuracy"]))]
    assert blocks[2] == ["== adam, decay=schedule_lr_decay ==",
                         f"Cost after epoch 0: {runs[2]['costs']['0']:f}",
                         "learning rate after epoch 0: 0.010000",
                         f"Cost after epoch 1000: {runs[2]['costs']['1000']:f}",
                         "learning rate after epoch 1000: 0.005000",
                         "Accuracy: " + str(np.float64(runs[2]["accuracy"]))]
    update = {(r["optimizer"], r["decay"]): r for r in short_result["runs"]}["gd", "update_lr"]
    assert update["lrs"] == {"0": 0.1}


def test_adam_beats_gd_after_1000_epochs(long_result):
    runs = {(r["optimizer"], r["decay"]): r for r in long_result["runs"]}
    assert runs[("adam", None)]["accuracy"] > runs[("gd", None)]["accuracy"]
    assert runs[("adam", None)]["accuracy"] > 0.9


def test_print_fn_gets_each_run_as_it_finishes():
    printed = []
    result = run_course(optimizers=["adam", "gd"], decays="update_lr", epochs=3,
                        print_fn=printed.append, workers=1)
    assert [(r["optimizer"], r["decay"]) for r in result["runs"]] == [("adam", "update_lr"),
                                                                      ("gd", "update_lr")]
    assert printed == [course.format_run(r) for r in result["runs"][:1]] + [
        "\n" + course.format_run(r) for r in result["runs"][1:]]
    assert "\n".join(printed) == format_course(result)
    assert list(result["runs"][0]["costs"]) == ["0"]
    assert "epoch_costs" not in result["runs"][0]


def test_subset_in_one_process_equals_the_same_runs_from_the_pool(short_result):
    result = run_course(optimizers=["rmsprop", "momentum"], decays="update_lr", epochs=SHORT,
                        workers=1, keep_history=True)
    pooled = {(r["optimizer"], r["decay"]): r for r in short_result["runs"]}
    assert result == {"epochs": SHORT, "runs": [pooled["rmsprop", "update_lr"],
                                                pooled["momentum", "update_lr"]]}


def test_progress_bar_does_not_change_the_result(capsys):
    plain = run_course("gd", None, epochs=2, workers=1)
    assert run_course("gd", None, epochs=2, workers=1, progress=True) == plain
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("kwargs,match", [
    ({"optimizers": ["sgd"]}, r"optimizer must be one of 'gd', 'momentum', 'rmsprop', 'adam', "
                              r"got 'sgd'"),
    ({"decays": ["exponential"]}, r"decay must be one of None, 'update_lr', "
                                  r"'schedule_lr_decay', got 'exponential'"),
    ({"optimizers": []}, r"optimizers must name at least one"),
    ({"decays": ()}, r"decays must name at least one"),
    ({"epochs": 0}, r"epochs must be an integer >= 1, got 0"),
    ({"epochs": 2.5}, r"epochs must be an integer >= 1, got 2.5"),
    ({"workers": 0}, r"workers must be an integer >= 1, got 0"),
])
def test_validation_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_course(**kwargs)


# ---------------------------------------------------------------------------------------------
# gdlab.course: the assignment's functions in its own form, against the reference above
# ---------------------------------------------------------------------------------------------

LAYERS = (3, 4, 2, 1)


def random_parameters(seed=0, layer_dims=LAYERS):
    rng = np.random.default_rng(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        parameters[f"W{l}"] = rng.normal(size=(layer_dims[l], layer_dims[l - 1]))
        parameters[f"b{l}"] = rng.normal(size=(layer_dims[l], 1))
    return parameters


def random_grads(parameters, seed):
    rng = np.random.default_rng(seed)
    return {f"d{key}": rng.normal(size=value.shape) for key, value in parameters.items()}


def copied(d):
    return {key: value.copy() for key, value in d.items()}


def test_momentum_one_step_by_hand():
    parameters = {"W1": np.array([[1.0, 2.0]]), "b1": np.array([[0.5]])}
    grads = {"dW1": np.array([[0.1, -0.2]]), "db1": np.array([[1.0]])}
    v = gdlab.course.initialize_velocity(parameters)
    assert v.keys() == {"dW1", "db1"} and not v["dW1"].any() and v["db1"].shape == (1, 1)
    parameters, v = gdlab.course.update_parameters_with_momentum(parameters, grads, v, beta=0.9,
                                                                 learning_rate=0.1)
    # v := 0.9·0 + 0.1·dW ;  W := W - 0.1·v
    np.testing.assert_allclose(v["dW1"], [[0.01, -0.02]], rtol=1e-15)
    np.testing.assert_allclose(v["db1"], [[0.1]], rtol=1e-15)
    np.testing.assert_allclose(parameters["W1"], [[0.999, 2.002]], rtol=1e-15)
    np.testing.assert_allclose(parameters["b1"], [[0.49]], rtol=1e-15)


def test_adam_first_step_by_hand():
    """At t = 1 the corrected moments are dW and dW², so W moves by α·dW/(|dW| + ε)."""
    parameters = {"W1": np.array([[1.0, 2.0]]), "b1": np.array([[0.5]])}
    grads = {"dW1": np.array([[0.1, -0.2]]), "db1": np.array([[4.0]])}
    v, s = gdlab.course.initialize_adam(parameters)
    parameters, v, s, v_hat, s_hat = gdlab.course.update_parameters_with_adam(
        parameters, grads, v, s, t=1, learning_rate=0.01)
    np.testing.assert_allclose(v["dW1"], [[0.01, -0.02]], rtol=1e-14)  # (1-β₁)·dW
    np.testing.assert_allclose(s["db1"], [[0.016]], rtol=1e-13)  # (1-β₂)·dW²
    np.testing.assert_allclose(v_hat["dW1"], [[0.1, -0.2]], rtol=1e-14)
    np.testing.assert_allclose(s_hat["db1"], [[16.0]], rtol=1e-13)
    np.testing.assert_allclose(parameters["W1"], [[1 - 0.01 * 0.1 / (0.1 + 1e-8),
                                                   2 + 0.01 * 0.2 / (0.2 + 1e-8)]], rtol=1e-15)
    np.testing.assert_allclose(parameters["b1"], [[0.5 - 0.01 * 4 / (4 + 1e-8)]], rtol=1e-15)


def test_gd_momentum_and_adam_equal_the_assignment_over_steps():
    ours = {"gd": random_parameters(), "momentum": random_parameters(),
            "adam": random_parameters()}
    ref = {name: copied(p) for name, p in ours.items()}
    v_ours, v_ref = gdlab.course.initialize_velocity(ours["momentum"]), initialize_velocity(
        ref["momentum"])
    (va, sa), (va_ref, sa_ref) = gdlab.course.initialize_adam(ours["adam"]), initialize_adam(
        ref["adam"])
    for t in range(1, 6):
        grads = random_grads(ours["gd"], seed=t)
        gdlab.course.update_parameters_with_gd(ours["gd"], copied(grads), 0.05)
        update_parameters_with_gd(ref["gd"], grads, 0.05)
        ours["momentum"], v_ours = gdlab.course.update_parameters_with_momentum(
            ours["momentum"], copied(grads), v_ours, 0.9, 0.05)
        update_parameters_with_momentum(ref["momentum"], grads, v_ref, 0.9, 0.05)
        got = gdlab.course.update_parameters_with_adam(ours["adam"], copied(grads), va, sa,
                                                       np.int64(t), 0.02)
        want = update_parameters_with_adam(ref["adam"], grads, va_ref, sa_ref, t, 0.02)
        for got_d, want_d in zip(got, want, strict=True):
            assert got_d.keys() == want_d.keys()
            for key in want_d:
                np.testing.assert_allclose(got_d[key], want_d[key], rtol=1e-13, atol=1e-15)
    for name in ours:
        for key in ref[name]:
            np.testing.assert_allclose(ours[name][key], ref[name][key], rtol=1e-13)
    np.testing.assert_allclose(v_ours["db2"], v_ref["db2"], rtol=1e-13)


def _torch_params(parameters):
    return {key: torch.nn.Parameter(torch.from_numpy(value.copy())) for key, value in
            parameters.items()}


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_equal_to_gdlabs_own_optimizers(name):
    """The adapters and gdlab.Momentum / gdlab.Adam run the same rule: equal to the last bit on
    the optimizers' reference path (one parameter at a time; the fused path may round the last
    bit differently and is tested against the reference path in test_fused.py)."""
    parameters = random_parameters(seed=1)
    tensors = _torch_params(parameters)
    if name == "momentum":
        optimizer = gdlab.Momentum(tensors.values(), lr=0.05, beta=0.8, flat=False)
        v = gdlab.course.initialize_velocity(parameters)
    else:
        optimizer = gdlab.Adam(tensors.values(), lr=0.02, beta1=0.8, beta2=0.99, eps=1e-7,
                               flat=False)
        v, s = gdlab.course.initialize_adam(parameters)
    for t in range(1, 5):
        grads = random_grads(parameters, seed=10 + t)
        for key, tensor in tensors.items():
            tensor.grad = torch.from_numpy(grads[f"d{key}"].copy())
        optimizer.step()
        if name == "momentum":
            parameters, v = gdlab.course.update_parameters_with_momentum(parameters, grads, v,
                                                                         0.8, 0.05)
        else:
            parameters, v, s, _, _ = gdlab.course.update_parameters_with_adam(
                parameters, grads, v, s, t, learning_rate=0.02, beta1=0.8, beta2=0.99,
                epsilon=1e-7)
        for key, tensor in tensors.items():
            assert np.array_equal(parameters[key], tensor.detach().numpy()), (t, key)


@pytest.mark.parametrize(("m", "size", "seed"), [(148, 64, 0), (300, 64, 11), (128, 64, 3),
                                                 (5, 1, 2), (7, 10, 1)])
def test_random_mini_batches_equal_the_assignment(m, size, seed):
    rng = np.random.default_rng(m)
    X, Y = rng.normal(size=(3, m)), (rng.random((1, m)) > 0.5).astype(np.float64)
    got = gdlab.course.random_mini_batches(X, Y, size, seed)
    want = random_mini_batches(X, Y, size, seed)
    assert len(got) == len(want) == math.ceil(m / size)
    for (X_t, Y_t), (X_ref, Y_ref) in zip(got, want, strict=True):
        assert X_t.shape == X_ref.shape and Y_t.shape == Y_ref.shape
        assert np.array_equal(X_t, X_ref) and np.array_equal(Y_t, Y_ref)
    assert got[-1][0].shape[1] == (m % size or size)


def test_decay_equals_the_assignment_and_takes_numpy_integers():
    # the lecture's table: α₀ = 0.2, decay_rate = 1 gives 0.1, 0.067, 0.05, 0.04
    assert [gdlab.course.update_lr(0.2, e, 1) for e in (1, 2, 3, 4)] == pytest.approx(
        [0.1, 0.2 / 3, 0.05, 0.04], rel=1e-15)
    for epoch_num in [0, 1, 7, 999, 1000, 2500, np.int64(3), np.int32(4000)]:
        assert gdlab.course.update_lr(0.5, epoch_num, 0.3) == pytest.approx(
            update_lr(0.5, epoch_num, 0.3), rel=1e-15)
        assert gdlab.course.schedule_lr_decay(0.5, epoch_num, 0.3) == pytest.approx(
            schedule_lr_decay(0.5, epoch_num, 0.3), rel=1e-15)
    assert gdlab.course.schedule_lr_decay(0.1, 999, 1) == 0.1  # time_interval=1000 by default
    assert gdlab.course.schedule_lr_decay(0.1, 1000, 1) == 0.05
    assert gdlab.course.schedule_lr_decay(0.1, 10, 1, time_interval=5) == pytest.approx(0.1 / 3)


def _bad_inputs():
    p = random_parameters()
    g = random_grads(p, 0)
    v, s = gdlab.course.initialize_adam(p)
    without_b2 = {k: val for k, val in p.items() if k != "b2"}
    flat_b1 = {**p, "b1": p["b1"].ravel()}
    wrong_W2 = {**p, "W2": np.zeros((2, 3))}
    X = np.zeros((3, 10))
    momentum, adam = (gdlab.course.update_parameters_with_momentum,
                      gdlab.course.update_parameters_with_adam)
    return [
        (lambda: gdlab.course.initialize_velocity(without_b2),
         r"parameters must hold W1, b1, …, W3, b3 \(.*\); missing 'b2'$"),
        (lambda: gdlab.course.initialize_adam({"w1": p["W1"]}), r"missing 'W1'$"),
        (lambda: gdlab.course.initialize_velocity({**p, "W9": 1}),
         r"unexpected key 'W9'$"),
        (lambda: gdlab.course.initialize_velocity(flat_b1),
         r"parameters\['b1'\] must have shape \(n_1, 1\) = \(4, 1\), got \(4,\)$"),
        (lambda: gdlab.course.initialize_velocity(wrong_W2),
         r"parameters\['W2'\] must have shape \(n_2, n_1\) = \(n_2, 4\), got \(2, 3\)$"),
        (lambda: gdlab.course.update_parameters_with_gd(p, {**g, "dW3": np.zeros((1, 3))}, 0.1),
         r"grads\['dW3'\] must have shape \(1, 2\) \(that of parameters\['W3'\]\), "
         r"got \(1, 3\)$"),
        (lambda: momentum(p, {k: val for k, val in g.items() if k != "db3"}, v, 0.9, 0.1),
         r"grads must hold db3 of shape \(1, 1\) \(that of parameters\['b3'\]\); "
         r"missing 'db3'$"),
        (lambda: momentum(p, g, {**v, "dW1": v["dW1"].T}, 0.9, 0.1),
         r"v\['dW1'\] must have shape \(4, 3\)"),
        (lambda: adam(p, g, v, {**s, "db2": np.zeros(2)}, 1), r"s\['db2'\] must have shape"),
        (lambda: adam(p, g, v, s, 0), r"t must be an integer >= 1 \(Adam's step count"),
        (lambda: adam(p, g, v, s, 1.0), r"t must be an integer >= 1"),
        (lambda: momentum(p, g, v, 1.0, 0.1), r"beta must be in \[0, 1\), got 1.0$"),
        (lambda: gdlab.course.random_mini_batches(X.T, np.zeros((1, 10))),
         r"Y must have shape \(1, m\) = \(1, 3\), one column per example, got \(1, 10\)$"),
        (lambda: gdlab.course.random_mini_batches(X[0], np.zeros((1, 10))),
         r"X must have shape \(n_x, m\), one column per example, got \(10,\)$"),
        (lambda: gdlab.course.random_mini_batches(X, np.zeros(10)),
         r"Y must have shape \(1, m\) = \(1, 10\), one column per example, got \(10,\)$"),
        (lambda: gdlab.course.random_mini_batches(X, np.zeros((1, 10)), 0),
         r"mini_batch_size must be an integer >= 1, got 0$"),
    ]


@pytest.mark.parametrize("call,match", _bad_inputs())
def test_course_functions_bad_input(call, match):
    with pytest.raises(ValueError, match=match) as error:
        call()
    assert "\n" not in str(error.value)
