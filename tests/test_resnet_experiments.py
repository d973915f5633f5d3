"""Tests of the chapter-6 experiments: expressivity versus M, the local PL bound along
training, the lazy limit (linear rate above M = N, plateau below), the depth limit of a trained
network and the planar flow.

Tolerances. Slopes: the standard error over independent feature draws (z = 4) or the OLS
standard error of one fit with an allowance for the next term of the error expansion (stated
at the test). Inequalities that hold exactly: a relative rounding slack of 1e-9 (float64
quantities built from O(10^3) operations, eps ~ 2e-16). Convergence to the lazy limit: the
deviation must fall at least linearly in the target amplitude (the linearisation error is
first order in the displacement), tested by its fitted log-log slope minus z = 4 standard
errors. The seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfteach import resnet as rn
from mfteach.stats import fit_loglog_slope
from mfteach.testing import assert_slope_close

F64 = torch.float64
EPS = torch.finfo(F64).eps
N_DATA = 5


def _data(n: int, amplitude: float, seed0: int = 0):
    sets = [rn.toy_data(n, amplitude=amplitude, min_distance=0.4, generator=g)
            for g in range(seed0, seed0 + N_DATA)]
    return torch.stack([x for x, _ in sets]), torch.stack([y for _, y in sets])


def test_gram_rank_is_min_m_n_and_error_falls_like_m_to_minus_half():
    """rank K_M = min(M, N) for every draw; lambda_min(K_M) = 0 below M = N and approaches
    lambda_min(K) above; the RMS entrywise error has slope -1/2 (mean over 8 draws, z = 4)."""
    X, _ = rn.toy_data(12, min_distance=0.3, generator=3)
    widths = [4, 8, 12, 48, 192, 768, 3072]
    s = rn.gram_spectrum(X, widths, bandwidth=0.3, n_draws=8, generator=1)
    for M, r in zip(widths, s.rank):
        assert r.tolist() == [min(M, 12)] * 8
    # a zero eigenvalue of an N x N symmetric matrix to rounding: N eps lambda_max, and
    # lambda_max <= trace K_M <= 2 N (|phi|^2 <= 2)
    assert bool((s.lam_min[:2].abs() <= 12 * EPS * 2 * 12).all())
    gap = (s.lam_min[-1] - s.lam_kernel).abs()
    assert bool((gap < (s.lam_min[3] - s.lam_kernel).abs().mean()).all())
    print(f"slope {s.slope:.4f} ± {s.slope_se:.4f}; lambda_min(K) = {s.lam_kernel:.4f}, "
          f"lambda_min(K_M) means {s.lam_min.mean(1).tolist()}")
    assert abs(s.slope + 0.5) <= 4 * s.slope_se


@pytest.mark.parametrize("M", [6, 40, 400])
def test_pl_ratio_stays_above_its_gram_bound_along_training(M):
    """The inequality rn-pl-bound (Euler): |grad L|^2 / L >= 2/(L^2 N) sum_l
    lambda_min(K_M(x_l)) s_{l+1}^2 at every 25th step of 200, for 5 data sets; at U = 0 the
    bound equals 2 lambda_min(K_M)/(L N) (zero below M = N, positive above)."""
    X, Y = _data(10, 0.3)
    net = rn.init_resnet(2, 2, M, 6, bandwidth=0.3, scheme="euler", n_networks=N_DATA,
                         generator=M)
    b0 = rn.pl_lower_bound(net, X, Y)
    lam = torch.linalg.eigvalsh(rn.feature_gram(net.feats, X))[:, 0]
    torch.testing.assert_close(b0.bound, 2 * lam.clamp_min(0) / (6 * 10), rtol=1e-9,
                               atol=1e-15)
    assert bool((b0.sigma_min - 1).abs().max() <= 16 * EPS)  # J = I exactly at U = 0
    assert bool((b0.bound > 0).all()) == (M >= 10)
    worst = []
    for _ in range(8):
        h = rn.train(net, X, Y, lr=10.0, steps=25, record_every=25)
        net = h.final
        b = rn.pl_lower_bound(net, X, Y)
        torch.testing.assert_close(b.pl_ratio, rn.train(net, X, Y, lr=10.0, steps=0)
                                   .pl_ratio[0], rtol=1e-10, atol=0)
        assert bool((b.pl_ratio >= b.bound * (1 - 1e-9)).all()), (b.pl_ratio, b.bound)
        worst.append(float((b.pl_ratio / b.bound.clamp_min(1e-300)).min()))
    print(f"M = {M}: min ratio / bound along training {min(worst):.3g}")


def test_training_tends_to_the_lazy_prediction_as_the_target_nears_the_identity():
    """As the target's amplitude a -> 0 the network follows its linearisation at U = 0:
    above M = N the fitted log-loss rate tends to the lazy curve's (fitted on the same window;
    asymptotically rho = -2 log(1 - lr lambda_min/(LN))), and below M = N the loss stalls at
    the lazy plateau (the residual's part in ker K_M). For each of 8 data sets the log-log
    slope of the relative deviation against a in {0.04, 0.02, 0.01} is fitted; their mean must
    be at least 1 (the linearisation error is at least first order in the displacement)
    within a two-sided 99.9% Student-t interval of its standard error over data sets."""
    from scipy.stats import t as student_t

    amps = [0.04, 0.02, 0.01]
    n_data = 8
    rate_dev, plateau_dev = [], []
    for a in amps:
        sw = rn.width_sweep([5, 400], amplitude=a, n_data=n_data, generator=0)
        assert bool((sw.plateau[0] > 0).all()) and bool((sw.lazy_rho[0] == 0).all())
        assert bool((sw.plateau[1] == 0).all()) and bool((sw.lazy_rho[1] > 0).all())
        rate_dev.append((sw.rate[1] / sw.lazy_rate[1] - 1).abs().numpy())
        plateau_dev.append((1 - sw.loss[0, -1] / sw.plateau[0]).abs().numpy())
    tq = student_t.ppf(1 - 1e-3 / 2, n_data - 1)
    la = np.log(amps)
    for name, dev in (("rate above N", np.array(rate_dev)), ("plateau below N",
                                                              np.array(plateau_dev))):
        slopes = np.array([np.polyfit(la, np.log(dev[:, j]), 1)[0] for j in range(n_data)])
        mean, se = slopes.mean(), slopes.std(ddof=1) / np.sqrt(n_data)
        print(f"{name}: deviations {dev.mean(1).round(4).tolist()} at a = {amps}; slope "
              f"{mean:.2f} ± {se:.2f} (s.e. over {n_data} data sets)")
        assert mean >= 1 - tq * se, (name, slopes)
        assert bool((dev.mean(1)[1:] < dev.mean(1)[:-1]).all())


def test_width_sweep_linear_above_threshold_and_slow_below():
    """At the chapter's setting (a = 0.1) the loss reaches 1e-6 of its start for M >= 4N,
    while below M = N, where the PL floor 2 lambda_min(K_M)/(LN) is zero, it ends more than
    100 times higher and its late rate is slower, for each data set."""
    sw = rn.width_sweep([5, 40, 160], steps=300, generator=0)
    # lambda_min = 0 to rounding (N eps lambda_max, lambda_max <= 2N), times 2/(LN)
    N, L = sw.n_train, sw.depth
    assert bool((sw.pl_floor0[0].abs() <= 2 * (N * EPS * 2 * N) / (L * N)).all())
    assert bool((sw.loss[1:, -1] < 1e-6 * sw.loss[1:, 0]).all())
    assert bool((sw.loss[0, -1] > 100 * sw.loss[1:, -1].amax(0)).all())
    assert bool((sw.rate[1:] > sw.rate[0].abs().max()).all())


def test_trained_network_has_a_depth_limit_with_the_schemes_orders():
    """A trained network's velocity (blocks interpolated in depth) discretised at L = 16..256
    against DOP853: errors fall like L^-1 (Euler) and L^-2 (midpoint). The next term of the
    error expansion, c L^{-p-1}, biases the OLS slope by about |c|/(L ln 16) relative; the
    allowance 0.1 covers |c| up to 2 at L = 16."""
    X, Y = rn.toy_data(10, amplitude=0.5, min_distance=0.4, generator=0)
    net = rn.train(rn.init_resnet(2, 2, 256, 8, bandwidth=0.3, generator=1), X, Y, lr=10.0,
                   steps=200).final
    c = rn.depth_convergence(net, X, [16, 32, 64, 128, 256])
    print(f"orders {c.order} ± {c.order_se}")
    for scheme in rn.SCHEMES:
        fit = fit_loglog_slope(c.depths, c.error_output[scheme].tolist())
        assert_slope_close(fit, -rn.ORDER[scheme], z=4.0, atol=0.1)
        assert bool((c.error_path[scheme] >= c.error_output[scheme]).all())


def test_flow_grid_carries_the_data_to_the_outputs():
    X, Y = rn.toy_data(8, amplitude=0.5, generator=2)
    net = rn.train(rn.init_resnet(2, 2, 64, 4, bandwidth=0.4, n_networks=2, generator=3), X,
                   Y, lr=10.0, steps=30).final
    g = rn.flow_grid(net, X, n_lines=5, n_points=9, network=1)
    torch.testing.assert_close(g.points[-1], rn.resnet_output(net, X)[1], rtol=0, atol=1e-13)
    assert g.lines.shape == (5, 10, 9, 2)
    torch.testing.assert_close(g.depth_s, torch.linspace(0, 1, 5, dtype=F64))


@pytest.mark.parametrize("call, match", [
    (lambda: rn.gram_spectrum(torch.zeros(3, 2, dtype=F64), [4], generator=0), "'widths'"),
    (lambda: rn.gram_spectrum(torch.zeros(3, 2, dtype=F64), [8, 4], generator=0), "'widths'"),
    (lambda: rn.width_sweep([4, 8], n_data=1, generator=0), "'n_data'"),
    (lambda: rn.depth_convergence(rn.init_resnet(2, 2, 4, 4, generator=0),
                                  torch.zeros(3, 2, dtype=F64), [6, 12]), "'depths'"),
    (lambda: rn.pl_lower_bound(rn.init_resnet(2, 2, 4, 4, generator=0),
                               torch.zeros(3, 2, dtype=F64), torch.zeros(3, 2, dtype=F64)),
     "'net'"),
    (lambda: rn.flow_grid(rn.init_resnet(3, 3, 4, 4, generator=0),
                          torch.zeros(3, 3, dtype=F64)), "'net'"),
])
def test_bad_arguments_raise_one_line_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_experiments_on_device_match_cpu(device):
    kw = dict(n_train=6, depth=4, steps=30, record_every=5, n_data=2, generator=0)
    cpu = rn.width_sweep([4, 32], **kw)
    other = rn.width_sweep([4, 32], device=device, **kw)
    torch.testing.assert_close(other.loss.cpu(), cpu.loss, rtol=1e-7, atol=0)
    torch.testing.assert_close(other.lazy_loss.cpu(), cpu.lazy_loss, rtol=1e-7, atol=1e-18)
