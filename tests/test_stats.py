"""Standard errors, fitted slopes and the Monte-Carlo assertion: checked against closed forms."""

import math

import pytest
import torch

from mfteach.stats import bonferroni_z, fit_loglog_slope, mc_estimate, normal_isf
from mfteach.testing import assert_mc_close, assert_slope_close, check_exercise


def test_normal_isf_matches_known_quantiles():
    # Known values of the standard normal upper quantile.
    assert normal_isf(0.5 * math.erfc(3 / math.sqrt(2))) == pytest.approx(3.0, abs=1e-9)
    assert normal_isf(0.05) == pytest.approx(1.6448536269514722, abs=1e-9)


def test_bonferroni_z_values_from_style_guide():
    # CONTRIBUTING.md, Tests: z = 4.9 (m = 1), 5.7 (m = 100), 6.5 (m = 1e4) at family rate 1e-6.
    assert bonferroni_z(1) == pytest.approx(4.89, abs=0.01)
    assert bonferroni_z(100) == pytest.approx(5.73, abs=0.01)
    assert bonferroni_z(10_000) == pytest.approx(6.46, abs=0.01)


def test_mc_estimate_stderr_is_s_over_sqrt_n():
    x = torch.arange(10, dtype=torch.float64)
    est = mc_estimate(x)
    assert float(est.mean) == 4.5  # 45 / 10: exact in binary
    # The same torch.std of the same tensor, divided by sqrt(10): an ulp or two.
    assert float(est.stderr) == pytest.approx(float(x.std()) / math.sqrt(10), rel=1e-14)


def test_fit_recovers_exact_power_law_and_noisy_slope(generator):
    x = torch.tensor([16.0, 32, 64, 128, 256, 512], dtype=torch.float64)
    exact = fit_loglog_slope(x, 3.0 * x ** -0.5)
    # Least squares on 6 exact log-log points (log x in [2.8, 6.2], well-conditioned): the
    # slope and intercept within ~100 eps, far inside 1e-12.
    assert exact.slope == pytest.approx(-0.5, abs=1e-12)
    assert exact.intercept == pytest.approx(math.log(3.0), abs=1e-12)
    # Noisy: log y = -0.5 log x + eps, eps ~ N(0, s^2): the OLS stderr is the slope's sd.
    s = 0.05
    slopes = []
    for _ in range(400):
        eps = s * torch.randn(x.shape, generator=generator, dtype=torch.float64)
        slopes.append(fit_loglog_slope(x, x ** -0.5 * torch.exp(eps)).slope)
    slopes = torch.tensor(slopes)
    lx = torch.log(x)
    sd_theory = s / math.sqrt(float(((lx - lx.mean()) ** 2).sum()))
    assert_mc_close(slopes, -0.5)
    # Sample sd of 400 normals: relative sd about 1/sqrt(2*399); allow 5 of those.
    assert float(slopes.std()) == pytest.approx(sd_theory, rel=5 / math.sqrt(798))


def test_assert_mc_close_fails_on_a_biased_mean(generator):
    x = torch.randn(10_000, generator=generator, dtype=torch.float64)
    assert_mc_close(x, 0.0)
    with pytest.raises(AssertionError, match="Monte-Carlo mean"):
        assert_mc_close(x + 0.1, 0.0)   # 10 standard errors off


def test_assert_slope_close():
    fit = fit_loglog_slope([1, 2, 4, 8], [1.0, 0.7, 0.5, 0.36])
    assert_slope_close(fit, fit.slope)
    with pytest.raises(AssertionError, match="fitted slope"):
        assert_slope_close(fit, fit.slope + 1.0)


@pytest.mark.parametrize("x, y, match", [([1], [1], "'x' parameter"),
                                         ([1, 2], [1.0, 0.5], "'x' parameter .* at least 3"),
                                         ([1, 2, 4], [1, -1, 1], "'y' parameter"),
                                         ([1, 2, 4], [1, 1], "'y' parameter .* same length"),
                                         ([0, 2, 4], [1, 1, 1], "'x' parameter"),
                                         ([2, 2, 2], [1, 2, 3], "'x' parameter .* distinct"),
                                         ([1, 2, float("nan")], [1, 1, 1], "'x' parameter")])
def test_fit_validation(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_loglog_slope(x, y)


def test_check_exercise_reports_stub_and_mismatch():
    def stub(x):
        raise NotImplementedError("Exercise: square x")

    assert "Not yet implemented" in check_exercise(stub, lambda x: x * x, [(2.0,)])
    assert "match" in check_exercise(lambda x: x * x, lambda x: x * x, [(2.0,), (3.0,)])
    with pytest.raises(AssertionError, match="case 0"):
        check_exercise(lambda x: x + x, lambda x: x * x, [(3.0,)])


# Nothing silent ------------------------------------------------------------------------------
def test_mc_estimate_refuses_bad_samples_and_survives_huge_ones():
    with pytest.raises(ValueError, match="'samples' parameter .* finite"):
        mc_estimate(torch.tensor([1.0, float("nan"), 2.0]))
    with pytest.raises(TypeError, match="'samples' parameter .* floating"):
        mc_estimate(torch.arange(4))
    with pytest.raises(ValueError, match="'dim' parameter"):
        mc_estimate(torch.ones(4), dim=3)
    with pytest.raises(TypeError, match="'dim' parameter"):
        mc_estimate(torch.ones(4), dim="0")
    # Squares of 1e300 overflow; the estimate is exact under scaling by a power of 2.
    x = torch.tensor([1.0, -1.0, 3.0, 0.5], dtype=torch.float64)
    big = mc_estimate(x * 2.0**1000)
    small = mc_estimate(x)
    # Scaling by a power of 2 is exact, so the means agree exactly; the standard errors go
    # through the rescaled path (another order of the same operations): a few ulps.
    assert float(big.mean) == float(small.mean) * 2.0**1000
    assert float(big.stderr) == pytest.approx(float(small.stderr) * 2.0**1000, rel=1e-15)
    # s / sqrt(2) = |x1 - x2| / 2 = 1.7e308 is representable although x1 - x2 is not.
    est = mc_estimate(torch.tensor([1.7e308, -1.7e308], dtype=torch.float64))
    # The rescaled mean is exactly 0 (x1 = -x2); the stderr a few ulps from 1.7e308.
    assert float(est.mean) == 0.0 and float(est.stderr) == pytest.approx(1.7e308, rel=1e-14)


@pytest.mark.parametrize("x, exc", [("abc", TypeError), (None, TypeError),
                                    ([1, 2, "a"], TypeError), ([1j, 2, 3], TypeError),
                                    ([1, 2, 2**1100], ValueError)])
def test_fit_refuses_non_numbers_with_one_line(x, exc):
    with pytest.raises(exc, match="'x' parameter of mfteach.stats.fit_loglog_slope") as info:
        fit_loglog_slope(x, [1.0, 2.0, 3.0])
    assert "\n" not in str(info.value)


def test_bonferroni_z_names_m_when_the_tail_underflows():
    with pytest.raises(ValueError, match="'m' parameter of mfteach.stats.bonferroni_z"):
        bonferroni_z(10**30, 1e-300)
    with pytest.raises(ValueError, match="'m' parameter"):
        bonferroni_z(2**2000)
    assert math.isfinite(bonferroni_z(10**12))
