"""The exponentially weighted average, its bias correction and the smoothing of a series."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gdlab import EWA, bias_correction, ewa, ewa_step

# --- hand values from the lecture -------------------------------------------------------------


def test_first_update_is_two_percent_of_theta():
    # v_1 = 0.98·0 + 0.02·40 = 0.8 (the lecture's "= 8" is a slip)
    assert EWA(0.98).update(40.0) == pytest.approx(0.8, rel=1e-12)


def test_first_update_bias_corrected_is_theta():
    # v̂_1 = 0.8 / (1 - 0.98) = 40
    assert EWA(0.98, bias_correction=True).update(40.0) == pytest.approx(40.0, rel=1e-12)


def test_bias_correction_at_t2():
    assert bias_correction(0.98, 2) == pytest.approx(0.0396, rel=1e-12)
    avg = EWA(0.98)
    avg.update(40.0)
    v2 = avg.update(40.0)
    assert v2 == pytest.approx(0.98 * 0.8 + 0.02 * 40, rel=1e-12)  # 1.584
    assert v2 / bias_correction(0.98, 2) == pytest.approx(40.0, rel=1e-12)


def test_bias_corrected_average_of_a_constant_is_the_constant():
    avg = EWA(0.98, bias_correction=True)
    for _ in range(200):
        assert avg.update(7.5) == pytest.approx(7.5, rel=1e-12)


def test_window_is_where_the_weight_falls_to_one_over_e():
    # 0.9^10 ≈ 0.35 and 0.98^50 ≈ 0.36, both ≈ 1/e: the averages span ≈ 10 and ≈ 50 steps
    assert 0.9**10 == pytest.approx(0.35, abs=0.005)
    assert 0.98**50 == pytest.approx(0.36, abs=0.005)
    assert 0.98**50 == pytest.approx(1 / math.e, abs=0.01)
    assert EWA(0.9).window == pytest.approx(10)
    assert EWA(0.98).window == pytest.approx(50)
    assert EWA(0).window == pytest.approx(1)


def test_weight_of_an_old_point_after_one_window():
    # feed a single 1 and then zeros: after `window` more steps its weight is (1-β)·β^window
    beta = 0.9
    avg = EWA(beta)
    first = avg.update(1.0)
    for _ in range(int(round(avg.window))):
        last = avg.update(0.0)
    assert last / first == pytest.approx(beta**10)
    assert last / first == pytest.approx(1 / math.e, abs=0.02)


def test_ewa_step_numbers():
    assert ewa_step(0.0, 40.0, 0.98) == pytest.approx(0.8)
    assert ewa_step(1.0, 3.0, 0.5) == pytest.approx(2.0)


def test_ewa_step_tensor_in_place():
    v = torch.zeros(3, dtype=torch.float64)
    out = ewa_step(v, torch.tensor([10.0, 20.0, 30.0], dtype=torch.float64), 0.9)
    assert out is v
    torch.testing.assert_close(v, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))


def test_ewa_step_with_one_beta_per_row_is_the_formula_in_place():
    """β as a tensor (one per configuration, as the vectorized trainer passes it): the same
    β·v + (1-β)·θ, row by row, written into v."""
    gen = torch.Generator().manual_seed(0)
    v = torch.rand(4, 5, generator=gen, dtype=torch.float64)
    theta = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    beta = torch.tensor([[0.0], [0.5], [0.9], [0.999]], dtype=torch.float64)
    expected = beta * v + (1 - beta) * theta
    out = ewa_step(v, theta, beta)
    assert out is v
    torch.testing.assert_close(v, expected, rtol=1e-15, atol=1e-15)


# --- tensors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4)])
@pytest.mark.parametrize("bias_correction_", [False, True])
def test_tensor_average_matches_hand_loop(shape, bias_correction_):
    gen = torch.Generator().manual_seed(0)
    thetas = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(25)]
    avg = EWA(0.9, bias_correction=bias_correction_)
    v = torch.zeros(shape, dtype=torch.float64)
    for t, theta in enumerate(thetas, start=1):
        before = theta.clone()
        out = avg.update(theta)
        torch.testing.assert_close(theta, before, rtol=0, atol=0)  # input untouched
        v = 0.9 * v + 0.1 * theta
        expected = v / (1 - 0.9**t) if bias_correction_ else v
        assert out.shape == shape
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert avg.t == 25


def test_tensor_result_is_not_the_internal_state():
    avg = EWA(0.5)
    out = avg.update(torch.ones(2))
    out.add_(100.0)
    torch.testing.assert_close(avg.current(), torch.full((2,), 0.5))


@pytest.mark.parametrize(("dtype", "expected"), [(torch.float64, torch.float64),
                                                 (torch.float32, torch.float32),
                                                 (torch.float16, torch.float32),
                                                 (torch.int64, torch.float32)])
def test_tensor_average_dtype(dtype, expected):
    out = EWA(0.5).update(torch.ones(3, dtype=dtype) * 4)
    assert out.dtype == expected
    torch.testing.assert_close(out, torch.full((3,), 2.0, dtype=expected))


def test_current_before_any_update_is_zero():
    assert EWA(0.9).current() == 0
    assert EWA(0.9, bias_correction=True).current() == 0


@pytest.mark.parametrize("beta", [-0.1, 1, 1.2, math.nan])
def test_beta_is_checked(beta):
    with pytest.raises(ValueError, match=rf"beta must be in \[0, 1\), got {beta!r}"):
        EWA(beta)


# --- ewa() on a whole series ------------------------------------------------------------------


def _hand_smooth(values, beta, bias_correction_):
    out, v, t = [], 0.0, 0
    for x in values:
        if not math.isfinite(x):
            out.append(x)
            continue
        t += 1
        v = beta * v + (1 - beta) * x
        out.append(v / (1 - beta**t) if bias_correction_ else v)
    return out


SERIES = [3.0, 1.0, math.nan, 4.0, 1.0, math.inf, 5.0, -math.inf, 9.0, 2.0, 6.0]


@pytest.mark.parametrize("bias_correction_", [False, True])
def test_ewa_numpy_skips_non_finite_points(bias_correction_):
    series = np.array(SERIES)
    out = ewa(series, 0.8, bias_correction=bias_correction_)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float64
    expected = _hand_smooth(SERIES, 0.8, bias_correction_)
    np.testing.assert_allclose(out, expected, rtol=1e-12)  # nan/inf compare equal in place
    assert np.isnan(out[2]) and out[5] == math.inf and out[7] == -math.inf
    np.testing.assert_array_equal(series, np.array(SERIES))  # input untouched


def test_ewa_non_finite_points_do_not_count_in_t():
    # bias correction with t counting the NaN would give 2/(1-0.5^3)·... ≠ the value below
    out = ewa(np.array([2.0, math.nan, 2.0]), 0.5, bias_correction=True)
    assert out[2] == pytest.approx(2.0, rel=1e-12)


def test_ewa_numpy_dtype_kept_and_ints_become_float():
    out32 = ewa(np.arange(5, dtype=np.float32), 0.9)
    assert out32.dtype == np.float32
    out_int = ewa(np.arange(5), 0.9)
    assert out_int.dtype == np.float64
    np.testing.assert_allclose(out_int, _hand_smooth(range(5), 0.9, False), rtol=1e-12)
    out_list = ewa([1, 2, 3], 0.5)
    assert isinstance(out_list, np.ndarray)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ewa_tensor_in_tensor_out(dtype):
    series = torch.tensor(SERIES, dtype=dtype)
    out = ewa(series, 0.8, bias_correction=True)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == dtype and out.device == series.device
    expected = torch.tensor(_hand_smooth(SERIES, 0.8, True), dtype=dtype)
    torch.testing.assert_close(out, expected, equal_nan=True)


def test_ewa_tensor_with_grad_and_int_tensor():
    series = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out = ewa(series, 0.5)
    assert not out.requires_grad
    out_int = ewa(torch.tensor([1, 2, 3]), 0.5)
    assert out_int.dtype == torch.get_default_dtype()
    torch.testing.assert_close(out_int, torch.tensor([0.5, 1.25, 2.125]))


def test_ewa_rejects_non_1d():
    with pytest.raises(ValueError, match=r"series must be one-dimensional, got shape \(2, 2\)"):
        ewa(np.ones((2, 2)), 0.9)


# --- state ------------------------------------------------------------------------------------


@pytest.mark.parametrize("theta", [lambda k: float(k), lambda k: torch.full((2, 2), float(k))])
def test_state_dict_round_trip_continues_identically(theta):
    a = EWA(0.9, bias_correction=True)
    for k in range(5):
        a.update(theta(k))
    b = EWA(0.5)
    b.load_state_dict(a.state_dict())
    assert (b.beta, b.bias_correction, b.t) == (0.9, True, 5)
    for k in range(5, 10):
        out_a, out_b = a.update(theta(k)), b.update(theta(k))
        if isinstance(out_a, torch.Tensor):
            torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
        else:
            assert out_a == out_b


def test_state_dict_does_not_alias_the_running_average():
    a = EWA(0.9)
    a.update(torch.ones(3))
    saved = a.state_dict()
    b = EWA(0.9)
    b.load_state_dict(saved)
    b.update(torch.full((3,), 10.0))  # in place on b's tensor ...
    a.update(torch.full((3,), 5.0))   # ... and on a's
    torch.testing.assert_close(saved["value"], torch.full((3,), 0.1))  # the snapshot stays
    torch.testing.assert_close(a.current(), torch.full((3,), 0.9 * 0.1 + 0.5))
    torch.testing.assert_close(b.current(), torch.full((3,), 0.9 * 0.1 + 1.0))
