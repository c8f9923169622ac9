"""Checkpoints: Fit.state_dict round trips bit for bit, atomic checksummed files, the fallback
to the previous good checkpoint, nothing unpickled, Ctrl-C in the API."""

from __future__ import annotations

import io
import os
import pickle
import random
import signal

import numpy as np
import pytest
import torch

from gdlab import GD, MLP, Adam, Checkpoint, Fit, History, Momentum, RMSProp, fit
from gdlab import schedules as S
from gdlab.train.callbacks.checkpoint import (
    CHECKPOINT,
    PREVIOUS,
    CheckpointError,
    latest_checkpoint,
    read_checkpoint,
    save_checkpoint,
)

M = 150


def _data(output="sigmoid"):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(M, 3, generator=gen, dtype=torch.float64)
    if output == "softmax":
        Y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    else:
        Y = (X[:, 0] + 0.5 * X[:, 1] > 0).double()
    return X, Y


def _setup(cls=Adam, output="sigmoid", flat=True, lr=0.01, **kwargs):
    torch.manual_seed(0)
    model = MLP([3, 8, 3 if output == "softmax" else 1], output=output).double()
    if cls.__module__.startswith("torch"):
        optimizer = cls(model.parameters(), lr=lr, **kwargs)
    else:
        optimizer = cls(model.parameters(), lr=lr, flat=flat, **kwargs)
    return model, optimizer


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _StopAt:
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, run):
        if run.epoch_num == self.epoch:
            run.stop()


CASES = {
    "gd": dict(cls=GD, lr=0.1),
    "momentum-per-tensor": dict(cls=Momentum, lr=0.1, flat=False),
    "rmsprop": dict(cls=RMSProp, lr=0.005),
    "adam-plateau": dict(cls=Adam, schedule=lambda: S.plateau(0.01, patience=2, beta=0.5)),
    "adam-per-step": dict(cls=Adam, schedule=lambda: S.inverse_sqrt(0.01, per="step")),
    "adam-softmax": dict(cls=Adam, output="softmax"),
    "torch-adam": dict(cls=torch.optim.Adam),
    "unseeded": dict(cls=Momentum, lr=0.1, seed=None),
}


def _halve_at_epoch_2(run):
    if run.epoch_num == 2:
        run.set_lr(run.lr * 0.5)  # a manual α change, saved with the run


@pytest.mark.parametrize("name", CASES)
def test_state_dict_round_trip_continues_bit_for_bit(name, tmp_path):
    case = dict(CASES[name])
    make_schedule = case.pop("schedule", lambda: None)
    seed = case.pop("seed", 0)
    X, Y = _data(case.get("output", "sigmoid"))

    def new_run(callbacks=()):
        model, optimizer = _setup(**case)
        return Fit(model, X, Y, optimizer, epochs=7, batch_size=32, seed=seed,
                   schedule=make_schedule(), callbacks=[_halve_at_epoch_2, *callbacks],
                   progress=False)

    torch.manual_seed(1234)  # the global RNG shuffles the unseeded case
    straight = new_run()
    straight.run()
    torch.manual_seed(1234)
    first = new_run([_StopAt(3)])
    first.run()
    save_checkpoint(first.state_dict(), tmp_path)
    torch.manual_seed(999)  # the checkpoint brings back the RNG states, whatever they are now
    random.seed(5)
    np.random.seed(5)
    resumed = new_run()
    resumed.load_state_dict(read_checkpoint(tmp_path / CHECKPOINT))
    resumed.run()
    assert resumed.history.costs == straight.history.costs
    assert resumed.history.epoch_costs == straight.history.epoch_costs
    assert resumed.history.lrs == straight.history.lrs
    assert resumed.history.events == straight.history.events
    assert len(resumed.history.events) == 1
    assert _same(_weights(resumed.model), _weights(straight.model))
    assert (resumed.t, resumed.epoch_num, len(resumed.history.times)) == (straight.t, 7, 7)


def test_rng_states_are_restored(tmp_path):
    X, Y = _data()
    model, optimizer = _setup()
    run = Fit(model, X, Y, optimizer, epochs=1, seed=None, progress=False)
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = run.state_dict()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    save_checkpoint(state, tmp_path)
    random.seed(10)
    np.random.seed(20)
    torch.manual_seed(30)
    run.load_state_dict(read_checkpoint(tmp_path / CHECKPOINT))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_state_is_tensors_and_plain_values_only(tmp_path):
    """weights_only loading accepts it: no numpy arrays, no custom classes."""
    X, Y = _data()
    model, optimizer = _setup()
    run = Fit(model, X, Y, optimizer, epochs=2, seed=0, progress=False,
              schedule=S.plateau(0.01))
    run.run()
    buffer = io.BytesIO()
    torch.save(run.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["epoch_num"] == 2 and state["history"]["epoch_costs"] == run.history.epoch_costs


def test_state_dict_copies_tensors():
    X, Y = _data()
    model, optimizer = _setup()
    run = Fit(model, X, Y, optimizer, epochs=2, seed=0, progress=False)
    run.run()
    state = run.state_dict()
    before = {k: v.clone() for k, v in state["model"].items()}
    run.epochs = 4
    run.run()  # training on changes the model, not the saved state
    assert _same(before, state["model"])


def test_load_state_dict_refuses_another_run():
    X, Y = _data()
    model, optimizer = _setup()
    run = Fit(model, X, Y, optimizer, epochs=1, batch_size=32, progress=False)
    state = run.state_dict()
    other = Fit(model, X, Y, optimizer, epochs=1, batch_size=16, progress=False)
    with pytest.raises(ValueError, match=r"mini-batches of 32; this one has m = 150 and "
                                         r"batch_size = 16"):
        other.load_state_dict(state)
    bigger, opt = MLP([3, 9, 1]).double(), None
    opt = Adam(bigger.parameters())
    with pytest.raises(ValueError, match=r"the saved state does not fit this model"):
        Fit(bigger, X, Y, opt, epochs=1, batch_size=32, progress=False).load_state_dict(state)
    with pytest.raises(ValueError, match=r"not the state of a gdlab fit"):
        run.load_state_dict({"format": 99})


# --- files ----------------------------------------------------------------------------------


def _state(epoch):
    return {"epoch_num": epoch, "w": torch.arange(5.0) * epoch}


def test_save_keeps_the_previous_checkpoint(tmp_path):
    save_checkpoint(_state(1), tmp_path)
    assert not (tmp_path / PREVIOUS).exists()
    save_checkpoint(_state(2), tmp_path)
    assert read_checkpoint(tmp_path / CHECKPOINT)["epoch_num"] == 2
    assert read_checkpoint(tmp_path / PREVIOUS)["epoch_num"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CHECKPOINT, PREVIOUS])  # no tmp
    state, path = latest_checkpoint(tmp_path)
    assert state["epoch_num"] == 2 and path.name == CHECKPOINT


@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[:len(data) // 2], r"truncated"),
    (lambda data: data[:-10] + bytes(10), r"checksum mismatch"),
    (lambda data: b"garbage", r"is not a gdlab checkpoint"),
    (lambda data: b"", r"is not a gdlab checkpoint"),
    (lambda data: data.replace(b" 1 ", b" 7 ", 1), r"version 7 checkpoint"),
])
def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, reason):
    save_checkpoint(_state(1), tmp_path)
    save_checkpoint(_state(2), tmp_path)
    path = tmp_path / CHECKPOINT
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=reason):
        read_checkpoint(path)
    messages = []
    state, used = latest_checkpoint(tmp_path, on_message=messages.append)
    assert state["epoch_num"] == 1 and used.name == PREVIOUS
    assert len(messages) == 1 and re_search(reason, messages[0])
    assert "using the previous checkpoint" in messages[0] and "(epoch 1)" in messages[0]
    with pytest.warns(UserWarning, match=reason):  # the API's default: a warning
        latest_checkpoint(tmp_path)


def re_search(pattern, text):
    import re

    return re.search(pattern, text) is not None


def test_missing_latest_uses_previous_and_all_damaged_is_an_error(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    save_checkpoint(_state(1), tmp_path)
    save_checkpoint(_state(2), tmp_path)
    os.replace(tmp_path / CHECKPOINT, tmp_path / "elsewhere")  # as if killed between renames
    messages = []
    state, _ = latest_checkpoint(tmp_path, on_message=messages.append)
    assert state["epoch_num"] == 1 and "is missing" in messages[0]
    (tmp_path / PREVIOUS).write_bytes(b"junk")
    with pytest.raises(CheckpointError, match=r"no good checkpoint left"):
        latest_checkpoint(tmp_path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_payload_is_never_executed(tmp_path, monkeypatch):
    """A file with a valid header and checksum whose payload is a malicious pickle is refused
    (weights_only=True), and its code does not run."""
    import hashlib

    monkeypatch.chdir(tmp_path)
    payload = pickle.dumps({"epoch_num": 1, "x": _Exploit()})
    buffer = io.BytesIO()
    torch.save({"epoch_num": 1, "x": _Exploit()}, buffer, _use_new_zipfile_serialization=True)
    for body in (payload, buffer.getvalue()):
        header = b"gdlab-checkpoint 1 %s %d\n" % (hashlib.sha256(body).hexdigest().encode(),
                                                  len(body))
        (tmp_path / CHECKPOINT).write_bytes(header + body)
        with pytest.raises(CheckpointError, match=r"cannot be loaded"):
            read_checkpoint(tmp_path / CHECKPOINT)
    assert not (tmp_path / "pwned").exists()


def test_stale_temporary_files_are_cleaned_up(tmp_path):
    stale = tmp_path / f".{CHECKPOINT}.999999.tmp"
    stale.write_bytes(b"half a checkpoint")
    save_checkpoint(_state(1), tmp_path)
    assert not stale.exists()


# --- the Checkpoint callback and fit(run_dir=...) --------------------------------------------


def test_fit_run_dir_every_and_resume(tmp_path):
    X, Y = _data()
    model, optimizer = _setup()
    saved = []
    original = Checkpoint.save

    def spy(self, run):
        saved.append(run.epoch_num)
        return original(self, run)

    Checkpoint.save = spy
    try:
        fit(model, X, Y, optimizer, epochs=7, seed=0, progress=False, run_dir=tmp_path,
            checkpoint_every=3, callbacks=[_StopAt(5)])
    finally:
        Checkpoint.save = original
    assert saved == [3, 5]  # every 3 epochs, and where the run stopped
    model2, optimizer2 = _setup()
    history = fit(model2, X, Y, optimizer2, epochs=7, seed=0, progress=False, run_dir=tmp_path,
                  resume=True)
    model3, optimizer3 = _setup()
    straight = fit(model3, X, Y, optimizer3, epochs=7, seed=0, progress=False)
    assert history.costs == straight.costs
    assert _same(_weights(model2), _weights(model3))
    # resume from a checkpoint file or a state dict too
    model4, optimizer4 = _setup()
    state = read_checkpoint(tmp_path / PREVIOUS)
    assert fit(model4, X, Y, optimizer4, epochs=7, seed=0, progress=False,
               resume=state).costs == straight.costs
    with pytest.raises(ValueError, match=r"resume=True needs run_dir"):
        fit(model4, X, Y, optimizer4, epochs=7, progress=False, resume=True)
    with pytest.raises(ValueError, match=r"no checkpoint .*none"):
        fit(model4, X, Y, optimizer4, epochs=7, progress=False, resume=tmp_path / "none")


def test_fresh_run_removes_stale_checkpoints(tmp_path):
    save_checkpoint(_state(40), tmp_path)
    X, Y = _data()
    model, optimizer = _setup()
    fit(model, X, Y, optimizer, epochs=2, seed=0, progress=False, run_dir=tmp_path,
        checkpoint_every=5)
    assert read_checkpoint(tmp_path / CHECKPOINT)["epoch_num"] == 2
    assert not (tmp_path / PREVIOUS).exists()


# --- Ctrl-C ---------------------------------------------------------------------------------


def test_ctrl_c_finishes_the_epoch_saves_and_resumes_exactly(tmp_path):
    X, Y = _data()
    model, optimizer = _setup()
    run = Fit(model, X, Y, optimizer, epochs=6, batch_size=32, seed=0, progress=False,
              run_dir=tmp_path)

    def press_ctrl_c(opt, args, kwargs):
        if run.t == 12:  # in the middle of epoch 3 (5 mini-batches per epoch)
            os.kill(os.getpid(), signal.SIGINT)

    optimizer.register_step_post_hook(press_ctrl_c)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match=r"stopped at the end of epoch 3 of 6"):
        run.run()
    assert signal.getsignal(signal.SIGINT) is handler  # put back
    assert run.t == 15 and run.epoch_num == 3  # the epoch was finished
    assert read_checkpoint(tmp_path / CHECKPOINT)["epoch_num"] == 3
    _assert_resume_finishes_like_a_straight_run(X, Y, tmp_path)


def _assert_resume_finishes_like_a_straight_run(X, Y, run_dir):
    """Resuming the run in run_dir to 6 epochs gives the costs and weights of 6 straight ones."""
    model2, optimizer2 = _setup()
    resumed = fit(model2, X, Y, optimizer2, epochs=6, batch_size=32, seed=0, progress=False,
                  run_dir=run_dir, resume=True)
    model3, optimizer3 = _setup()
    straight = fit(model3, X, Y, optimizer3, epochs=6, batch_size=32, seed=0, progress=False)
    assert resumed.costs == straight.costs and _same(_weights(model2), _weights(model3))


def test_second_ctrl_c_abandons_the_epoch_consistently(tmp_path):
    X, Y = _data()
    model, optimizer = _setup()
    run = Fit(model, X, Y, optimizer, epochs=6, batch_size=32, seed=0, progress=False,
              run_dir=tmp_path, checkpoint_every=100)

    def press_ctrl_c_twice(opt, args, kwargs):
        if run.t in (12, 13):
            os.kill(os.getpid(), signal.SIGINT)

    optimizer.register_step_post_hook(press_ctrl_c_twice)
    with pytest.raises(KeyboardInterrupt):
        run.run()
    # back at the start of epoch 3 = the end of epoch 2, and saved there
    assert (run.epoch_num, run.t, run.history.epochs, len(run.history.costs)) == (2, 10, 2, 10)
    assert read_checkpoint(tmp_path / CHECKPOINT)["epoch_num"] == 2
    _assert_resume_finishes_like_a_straight_run(X, Y, tmp_path)


def test_history_metrics_round_trip():
    history = History(costs=[1.0], epoch_costs=[1.0], lrs=[0.1], times=[0.5],
                      events=[{"epoch": 1, "event": "set_lr"}], metrics={"accuracy": [0.5]})
    again = History.from_state_dict(history.state_dict())
    assert again == history and again.metrics is not history.metrics

