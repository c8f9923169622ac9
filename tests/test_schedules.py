"""Learning-rate decay: the formulas, plateau, parsing and the torch scheduler adapter."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch

from gdlab import schedules as S
from gdlab.schedules import ScheduleLR, parse_schedule

# --- the lecture's table and every formula ----------------------------------------------------


def test_lecture_decay_table():
    # α₀ = 0.2, decay_rate = 1: epochs 1..4 train at 0.1, 0.067, 0.05, 0.04
    schedule = S.inverse_time(0.2, decay_rate=1)
    lrs = [schedule(epoch) for epoch in (1, 2, 3, 4)]
    assert lrs == pytest.approx([0.1, 0.2 / 3, 0.05, 0.04], rel=1e-12)
    assert [round(lr, 4) for lr in lrs] == [0.1, 0.0667, 0.05, 0.04]


@pytest.mark.parametrize("epoch", [0, 1, 2, 5, 13])
def test_inverse_time_formula(epoch):
    assert S.inverse_time(0.5, decay_rate=0.3)(epoch) == pytest.approx(0.5 / (1 + 0.3 * epoch))
    # time_interval: α₀ / (1 + decay_rate·⌊epoch/interval⌋)
    assert S.inverse_time(0.5, decay_rate=0.3, time_interval=4)(epoch) == pytest.approx(
        0.5 / (1 + 0.3 * (epoch // 4)))


def test_inverse_time_interval_steps():
    schedule = S.inverse_time(0.2, decay_rate=1, time_interval=2)
    assert [schedule(e) for e in range(1, 6)] == pytest.approx([0.2, 0.1, 0.1, 0.2 / 3, 0.2 / 3])


@pytest.mark.parametrize("epoch", [0, 1, 2, 3, 10, 50])
def test_exponential_formula(epoch):
    assert S.exponential(0.2)(epoch) == pytest.approx(0.95**epoch * 0.2)  # base 0.95 default
    assert S.exponential(0.2, base=0.5)(epoch) == pytest.approx(0.5**epoch * 0.2)


def test_exponential_hand_values():
    schedule = S.exponential(0.2, base=0.95)
    assert [schedule(e) for e in (1, 2)] == pytest.approx([0.19, 0.1805])


@pytest.mark.parametrize("epoch", [1, 2, 4, 9, 100])
def test_inverse_sqrt_per_epoch(epoch):
    assert S.inverse_sqrt(0.2, k=2.0)(epoch) == pytest.approx(2.0 / math.sqrt(epoch) * 0.2)
    assert not S.inverse_sqrt(0.2).per_step


@pytest.mark.parametrize("t", [1, 2, 4, 16, 1000])
def test_inverse_sqrt_per_step(t):
    schedule = S.inverse_sqrt(0.2, k=1.5, per="step")
    assert schedule.per_step
    assert schedule(3, t) == pytest.approx(1.5 / math.sqrt(t) * 0.2)
    assert schedule(1, t) == schedule(7, t)  # only t matters


def test_inverse_sqrt_per_step_needs_t():
    with pytest.raises(ValueError, match=r"needs t, the mini-batch step"):
        S.inverse_sqrt(0.2, per="step")(3)


@pytest.mark.parametrize(("epoch", "expected"), [(0, 0.2), (1, 0.2), (10, 0.2), (11, 0.1),
                                                 (20, 0.1), (21, 0.05), (35, 0.025)])
def test_staircase_halves_every_10_epochs(epoch, expected):
    schedule = S.staircase(0.2, factor=0.5, every=10)
    assert schedule(epoch) == pytest.approx(expected)
    assert schedule(epoch) == pytest.approx(0.2 * 0.5 ** (max(epoch - 1, 0) // 10))


def test_staircase_other_factor():
    schedule = S.staircase(1.0, factor=0.1, every=3)
    assert [schedule(e) for e in range(1, 8)] == pytest.approx(
        [1, 1, 1, 0.1, 0.1, 0.1, 0.01])


def test_constant():
    assert [S.constant(0.3)(e) for e in (0, 1, 50)] == [0.3, 0.3, 0.3]


@pytest.mark.parametrize("schedule", [
    S.constant(0.2), S.inverse_time(0.2, decay_rate=1), S.inverse_time(0.2, 2.0, 3),
    S.exponential(0.2), S.exponential(0.2, base=0.5), S.inverse_sqrt(0.2),
    S.inverse_sqrt(0.2, k=3.0), S.inverse_sqrt(0.2, k=3.0, per="step"), S.staircase(0.2),
    S.staircase(0.2, factor=0.1, every=1), S.plateau(0.2),
], ids=repr)
def test_epoch_zero_gives_lr0(schedule):
    assert schedule(0) == pytest.approx(0.2, rel=1e-15)


@pytest.mark.parametrize("integer", [np.int64, np.int32, np.uint8, np.intc])
@pytest.mark.parametrize("schedule", [
    S.constant(0.2), S.inverse_time(0.2, decay_rate=1), S.inverse_time(0.2, 1, time_interval=2),
    S.exponential(0.2), S.inverse_sqrt(0.2), S.inverse_sqrt(0.2, per="step"), S.staircase(0.2),
], ids=repr)
def test_numpy_integers_are_epochs_and_steps(schedule, integer):
    """The course's loops pass numpy integers (``for i in np.arange(...)``): same α as ints."""
    for epoch, t in [(0, None), (1, 1), (3, 7), (10, 250)]:
        alpha = schedule(integer(epoch), None if t is None else integer(t))
        assert alpha == schedule(epoch, t)
        assert type(alpha) is float


@pytest.mark.parametrize(("epoch", "t", "message"), [
    (-1, None, r"epoch_num must be an integer >= 0 \(counted from 1\), got -1"),
    (1.5, None, r"epoch_num must be an integer >= 0 \(counted from 1\), got 1.5"),
    (True, None, r"epoch_num must be an integer >= 0 \(counted from 1\), got True"),
    (np.True_, None, r"epoch_num must be an integer >= 0 \(counted from 1\), got (np\.)?True_?"),
    (np.float64(3), None, r"epoch_num must be an integer >= 0 \(counted from 1\), got "),
    (np.int64(-2), None, r"epoch_num must be an integer >= 0 \(counted from 1\), got "),
    (1, np.int64(0), r"t must be an integer >= 1 \(mini-batch steps counted from 1\), got "),
    (1, 0, r"t must be an integer >= 1 \(mini-batch steps counted from 1\), got 0"),
    (1, 2.0, r"t must be an integer >= 1 \(mini-batch steps counted from 1\), got 2.0"),
])
def test_bad_epoch_or_step(epoch, t, message):
    with pytest.raises(ValueError, match=message):
        S.inverse_time(0.2, decay_rate=1)(epoch, t)


# --- validation -------------------------------------------------------------------------------

BAD_LR0 = [0, -1, math.nan, math.inf, "0.1", None]


@pytest.mark.parametrize("lr0", BAD_LR0)
@pytest.mark.parametrize("build", [
    S.constant, lambda lr0: S.inverse_time(lr0, decay_rate=1), S.exponential, S.inverse_sqrt,
    S.staircase, S.plateau], ids=["constant", "inverse_time", "exponential", "inverse_sqrt",
                                  "staircase", "plateau"])
def test_lr0_checked(build, lr0):
    message = rf"lr0 must be a finite number > 0, got {re.escape(repr(lr0))}"
    with pytest.raises(ValueError, match=message):
        build(lr0)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: S.inverse_time(0.1, decay_rate=-1),
     r"decay_rate must be a finite number >= 0, got -1"),
    (lambda: S.inverse_time(0.1, decay_rate=math.nan),
     r"decay_rate must be a finite number >= 0, got nan"),
    (lambda: S.inverse_time(0.1, 1, time_interval=0),
     r"time_interval must be an integer >= 1, got 0"),
    (lambda: S.inverse_time(0.1, 1, time_interval=2.5),
     r"time_interval must be an integer >= 1, got 2.5"),
    (lambda: S.exponential(0.1, base=0), r"base must be in \(0, 1\], got 0"),
    (lambda: S.exponential(0.1, base=1.5), r"base must be in \(0, 1\], got 1.5"),
    (lambda: S.exponential(0.1, base=-0.5), r"base must be in \(0, 1\], got -0.5"),
    (lambda: S.exponential(0.1, base=math.nan), r"base must be in \(0, 1\], got nan"),
    (lambda: S.inverse_sqrt(0.1, k=0), r"k must be a finite number > 0, got 0"),
    (lambda: S.inverse_sqrt(0.1, per="batch"), r"per must be one of 'epoch', 'step', got 'batch'"),
    (lambda: S.staircase(0.1, factor=0), r"factor must be in \(0, 1\], got 0"),
    (lambda: S.staircase(0.1, factor=2), r"factor must be in \(0, 1\], got 2"),
    (lambda: S.staircase(0.1, every=0), r"every must be an integer >= 1, got 0"),
    (lambda: S.staircase(0.1, every=-3), r"every must be an integer >= 1, got -3"),
    (lambda: S.plateau(0.1, factor=1), r"factor must be in \(0, 1\), got 1"),
    (lambda: S.plateau(0.1, factor=0), r"factor must be in \(0, 1\), got 0"),
    (lambda: S.plateau(0.1, patience=0), r"patience must be an integer >= 1, got 0"),
    (lambda: S.plateau(0.1, beta=1), r"beta must be in \[0, 1\), got 1"),
    (lambda: S.plateau(0.1, threshold=-0.1), r"threshold must be a finite number >= 0, got -0.1"),
    (lambda: S.plateau(0.1, min_lr=-1), r"min_lr must be a finite number >= 0, got -1"),
])
def test_schedule_arguments_checked(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# --- plateau ----------------------------------------------------------------------------------


def test_plateau_keeps_lr_while_improving():
    schedule = S.plateau(1.0, factor=0.5, patience=2)
    for epoch in range(1, 60):
        assert schedule.observe(1.0 / epoch) == 1.0
        assert schedule(epoch) == 1.0


def test_plateau_cuts_after_patience_stalled_epochs():
    schedule = S.plateau(1.0, factor=0.5, patience=3, beta=0.0)  # β = 0: the raw epoch cost
    assert [schedule.observe(c) for c in (5, 4, 3, 2, 1)] == [1.0] * 5
    assert [schedule.observe(1.0) for _ in range(3)] == [1.0, 1.0, 0.5]  # cut at the 3rd stall
    assert schedule(9) == 0.5
    assert [schedule.observe(1.0) for _ in range(3)] == [0.5, 0.5, 0.25]
    # an improvement resets the count
    assert [schedule.observe(c) for c in (1.0, 1.0, 0.5, 0.5, 0.5)] == [0.25, 0.25, 0.25, 0.25,
                                                                         0.25]
    assert schedule.observe(0.5) == 0.125


def test_plateau_threshold_is_relative():
    schedule = S.plateau(1.0, factor=0.5, patience=1, beta=0.0, threshold=0.1)
    schedule.observe(1.0)
    assert schedule.observe(0.95) == 0.5  # 5 % better is not enough with threshold 10 %
    assert schedule.observe(0.80) == 0.5  # 0.80 < 0.95·0.9


def test_plateau_respects_min_lr_and_ignores_non_finite_costs():
    schedule = S.plateau(1.0, factor=0.5, patience=1, beta=0.0, min_lr=0.3)
    schedule.observe(1.0)
    assert schedule.observe(math.nan) == 1.0  # not a stall
    assert schedule.observe(math.inf) == 1.0
    assert schedule.observe(1.0) == 0.5
    assert schedule.observe(1.0) == 0.3
    assert schedule.observe(1.0) == 0.3


def test_plateau_smooths_a_noisy_cost():
    # a decreasing cost with ±20 % noise: the raw cost "stalls" at every up-tick, the EWA does not
    costs = [(1 / e) * (1 + 0.2 * (-1) ** e) for e in range(1, 31)]
    raw = S.plateau(1.0, patience=1, beta=0.0)
    smoothed = S.plateau(1.0, patience=1, beta=0.9)
    assert min(raw.observe(c) for c in costs) < 1.0
    assert [smoothed.observe(c) for c in costs] == [1.0] * len(costs)


def test_plateau_state_dict_round_trip():
    costs = [3.0, 2.0, 2.1, 2.2, 2.0, 1.9, 1.95, 1.97, 1.99, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.1]
    a = S.plateau(1.0, factor=0.5, patience=2, beta=0.5)
    for c in costs[:7]:
        a.observe(c)
    b = S.plateau(1.0, factor=0.5, patience=2, beta=0.5)
    b.load_state_dict(a.state_dict())
    assert b(8) == a(8) == 1.0
    rest_a = [a.observe(c) for c in costs[7:]]
    assert rest_a == [b.observe(c) for c in costs[7:]]
    assert min(rest_a) < 0.5  # the sequence does stall, more than once


# --- parse_schedule ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "cls", "attrs"), [
    ("constant", S.constant, {}),
    ("inverse_time:decay_rate=1", S.inverse_time, {"decay_rate": 1, "time_interval": 1}),
    ("inverse_time:decay_rate=0.5,time_interval=1000", S.inverse_time,
     {"decay_rate": 0.5, "time_interval": 1000}),
    ("inverse-time:decay_rate=1", S.inverse_time, {"decay_rate": 1}),
    ("  exponential : base = 0.9 ", S.exponential, {"base": 0.9}),
    ("exponential", S.exponential, {"base": 0.95}),
    ("inverse_sqrt:per=step,k=2", S.inverse_sqrt, {"per": "step", "k": 2, "per_step": True}),
    ("staircase:factor=0.5,every=10", S.staircase, {"factor": 0.5, "every": 10}),
    ("plateau:patience=5,factor=0.1", S.plateau, {"patience": 5, "factor": 0.1}),
])
def test_parse_schedule(text, cls, attrs):
    schedule = parse_schedule(text, 0.2)
    assert type(schedule) is cls
    assert schedule.lr0 == 0.2
    for key, value in attrs.items():
        assert getattr(schedule, key) == value


def test_parsed_schedule_gives_the_table():
    schedule = parse_schedule("inverse_time:decay_rate=1", 0.2)
    assert [schedule(e) for e in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2 / 3, 0.05, 0.04])


@pytest.mark.parametrize(("text", "message"), [
    ("", r"schedule must be a non-empty string like 'inverse_time:decay_rate=1', got ''"),
    ("   ", r"schedule must be a non-empty string"),
    (None, r"schedule must be a non-empty string.*got None"),
    ("cosine", r"unknown schedule 'cosine'; allowed: constant, inverse_time, exponential, "
               r"inverse_sqrt, staircase, plateau"),
    (":decay_rate=1", r"unknown schedule ''"),
    ("inverse_time:decay_rate", r"malformed schedule option 'decay_rate' in "
                                r"'inverse_time:decay_rate': expected key=value"),
    ("inverse_time:decay_rate=", r"malformed schedule option 'decay_rate='"),
    ("inverse_time:=1", r"malformed schedule option '=1'"),
    ("exponential:gamma=0.9", r"schedule 'exponential' takes options base; got gamma"),
    ("constant:base=0.9", r"schedule 'constant' takes options none; got base"),
    ("inverse_time:decay_rate=1,foo=2", r"schedule 'inverse_time' takes options decay_rate, "
                                        r"time_interval; got foo"),
    ("inverse_time", r"schedule 'inverse_time' needs option decay_rate"),
    ("inverse_time:lr0=0.1", r"give α₀ with --lr, not lr0="),
    ("exponential:base=2", r"base must be in \(0, 1\], got 2"),
    ("staircase:every=0", r"every must be an integer >= 1, got 0"),
    ("inverse_sqrt:per=batch", r"per must be one of 'epoch', 'step', got 'batch'"),
])
def test_parse_schedule_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(text, 0.2)


# --- ScheduleLR: any torch optimizer, plain loop ----------------------------------------------


def _sgd(lrs=(0.2,)):
    params = [torch.nn.Parameter(torch.zeros(2, dtype=torch.float64)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    return params, torch.optim.SGD(groups)


def _train_step(params, optimizer):
    for p in params:
        p.grad = torch.ones_like(p)  # dW = 1: each step moves W by exactly -α
    optimizer.step()


def test_schedule_lr_drives_torch_sgd_through_the_table():
    params, opt = _sgd()
    sched = ScheduleLR(opt, S.inverse_time(0.2, decay_rate=1))
    used = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "scheduler before optimizer" complaints
        for _epoch in range(4):
            used.append(opt.param_groups[0]["lr"])
            before = params[0].detach().clone()
            for _batch in range(3):
                _train_step(params, opt)
            # the steps really were taken with this epoch's α
            torch.testing.assert_close(before - params[0].detach(),
                                       torch.full((2,), 3 * used[-1], dtype=torch.float64))
            sched.step()
    assert used == pytest.approx([0.1, 0.2 / 3, 0.05, 0.04], rel=1e-12)
    assert sched.get_last_lr() == pytest.approx([0.2 / 6])  # epoch 5 is next


def test_schedule_lr_keeps_the_ratio_of_param_groups():
    params, opt = _sgd((0.2, 0.02))
    sched = ScheduleLR(opt, S.inverse_time(0.2, decay_rate=1))
    for epoch in range(1, 5):
        lrs = [group["lr"] for group in opt.param_groups]
        assert lrs[0] == pytest.approx(0.2 / (1 + epoch))
        assert lrs[1] == pytest.approx(0.02 / (1 + epoch))
        _train_step(params, opt)
        sched.step()


def test_schedule_lr_per_step_schedule():
    params, opt = _sgd()
    sched = ScheduleLR(opt, S.inverse_sqrt(0.2, per="step"))
    used = []
    for _epoch in range(2):
        for _batch in range(3):
            used.append(opt.param_groups[0]["lr"])
            _train_step(params, opt)
            sched.step_batch()
        sched.step()
    # mini-batch t (counted from 1 over the whole run) trains at α₀/√t, as in fit()
    assert used == pytest.approx([0.2 / math.sqrt(t) for t in range(1, 7)], rel=1e-12)
    assert sched.t == 6


def test_schedule_lr_with_a_gdlab_optimizer_and_resume():
    from gdlab import GD

    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = GD([p], lr=0.2)
    sched = ScheduleLR(opt, S.exponential(0.2, base=0.5))
    for _ in range(3):
        _train_step([p], opt)
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5**4)  # epoch 4 is next
    torch.testing.assert_close(p.detach(), torch.full((3,), -(0.1 + 0.05 + 0.025),
                                                      dtype=torch.float64))
    state = sched.state_dict()
    opt2 = GD([p], lr=0.2)
    sched2 = ScheduleLR(opt2, S.exponential(0.2, base=0.5))
    sched2.load_state_dict(state)
    _train_step([p], opt)
    sched.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    assert sched2.get_last_lr() == pytest.approx([0.2 * 0.5**5])
