"""Tests of the infinite-width (RKHS) limit of ResNet training (mfteach.resnet: the kernel limit
and the width-limit experiment).

Tolerances.

* Equivalence with ``train`` (same features): the two runs compute the same numbers with
  different summation orders (``phi(x) U^T`` with ``U = sum_c a_c phi(z_c)^T`` against
  ``sum_c a_c (phi(z_c) . phi(x))``). Recursive summation of n terms errs by at most
  ``(n - 1) eps sum |terms|`` (Higham, Accuracy and Stability of Numerical Algorithms, eq.
  (4.4)); one velocity evaluation sums at most ``C + M`` terms (C centres, M features), the
  path chains L blocks and the run T steps. Gradient descent at a stable step is
  non-expansive, so errors add up rather than grow: relative tolerance
  ``T * L * (C + M) * eps`` on the loss (scale: initial loss) and on outputs (scale: the
  largest displacement ``|f - x|``).
* One GD step from U = 0 against its closed form: the only rounding is the N-term sum of the
  expansion and a few products in the autograd coefficients, so elementwise
  ``(N + 8) eps sum_n |lr D_n| k(x_n, x)``.
* Width limit: the per-seed log-log slopes of the RMS error against M over five independent
  feature draws per width; their mean must be within z = 4 standard errors of -1/2
  (false-alarm rate 6e-5 under the CLT). No allowance: the next term, the O(1/M) bias of
  second order in the kernel fluctuation, is M^{-1/2} times the leading term, under 1/8 at
  M = 64 (measured sqrt(M) * error is flat within its spread). A negative control (a limit
  with a 10% wrong bandwidth) must fail the same test.
* Devices: float64 on another device follows the CPU run to sqrt(eps) relative (rounding
  differences of reductions, grown over the steps).

The seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mfteach import resnet as rn
from mfteach.resnet import (
    KernelResNet,
    kernel_resnet_output,
    kernel_trajectories,
    kernel_velocity,
    train_kernel_limit,
    width_limit,
)
from mfteach.resnet._experiments import _seed_slopes
from mfteach.stats import SlopeFit
from mfteach.testing import assert_slope_close
from mfteach.training import DivergenceError

F64 = torch.float64
EPS = torch.finfo(F64).eps
N_SEEDS = 5


def _data(n: int = 8):
    return rn.toy_data(n, min_distance=0.4, generator=1)


def _fit(mean: float, se: float) -> SlopeFit:
    return SlopeFit(slope=mean, stderr=se, intercept=0.0, n_points=N_SEEDS)


# ------------------------------------------------------------------------------------------
# k_M: the kernel form of training is training
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", rn.SCHEMES)
def test_kernel_form_with_features_equals_train(scheme):
    """train_kernel_limit(features=phi) and train on the ResNet with features phi: losses,
    outputs and trajectories at new points agree to T L (C + M) eps (module docstring)."""
    X, Y = _data()
    Xn, _ = rn.toy_data(20, generator=7)
    L, M, T = 4, 64, 30
    net = rn.init_resnet(2, 3, M, L, bandwidth=0.5, scheme=scheme, n_networks=2,
                         generator=2)
    h = rn.train(net, X, Y, lr=5.0, steps=T, record_every=5)
    k = train_kernel_limit(X, Y, depth=L, scheme=scheme, lr=5.0, steps=T, record_every=5,
                           features=net.feats)
    C = k.final.n_centres
    assert C == T * X.shape[0] * (1 if scheme == "euler" else 2)
    tol = T * L * (C + M) * EPS
    assert torch.equal(h.step, k.step)
    assert bool((h.loss[-1] < 0.1 * h.loss[0]).all())  # training did something
    dl = float(((k.loss - h.loss).abs() / h.loss[0]).max())
    fo, ko = rn.resnet_output(h.final, Xn), kernel_resnet_output(k.final, Xn)
    scale = float((fo - Xn).abs().max())
    do = float((ko - fo).abs().max()) / scale
    dp = float((kernel_trajectories(k.final, Xn) - rn.trajectories(h.final, Xn)).abs().max())
    print(f"{scheme}: tol {tol:.2e}; loss {dl:.2e}, outputs {do:.2e}, paths {dp / scale:.2e}")
    assert dl <= tol and do <= tol and dp <= tol * scale


# ------------------------------------------------------------------------------------------
# The exact kernel: one step in closed form, and the M -> infinity limit
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", rn.SCHEMES)
def test_first_step_velocity_closed_form(scheme):
    """From U = 0 every state is A x_n, so after one step v_l(x) = -lr sum_n D_n k(A x_n, x)
    with D_n = B^T (x_n - y_n) / (L N) in every block (for the midpoint scheme the first
    evaluation's D is 0: the second evaluation does not depend on it at v = 0)."""
    X, Y = _data(6)
    N, d, q, L, lr, s = 6, 2, 3, 4, 2.0, 0.7
    h = train_kernel_limit(X, Y, depth=L, q=q, bandwidth=s, scheme=scheme, lr=lr, steps=1,
                           record_every=1)
    torch.testing.assert_close(h.loss[0, 0], 0.5 * (X - Y).square().sum(-1).mean(),
                               rtol=4 * N * EPS, atol=0)
    x = 2 * torch.rand(15, q, generator=torch.Generator().manual_seed(3), dtype=F64) - 1
    D = torch.zeros(N, q, dtype=F64)
    D[:, :d] = (X - Y) / (L * N)
    K = rn.gaussian_kernel(rn.lift(X, q), x, bandwidth=s)  # (N, 15)
    want = -lr * K.T @ D  # (15, q)
    got = kernel_velocity(h.final, x)[0]  # (L, 15, q)
    atol = (N + 8) * EPS * (lr * K.T @ D.abs())
    for layer in range(L):
        assert bool(((got[layer] - want).abs() <= atol).all()), layer
    assert float(want.abs().max()) > 1e-2  # the closed form is not trivially zero
    if scheme == "midpoint":  # centres: the N states, then the N midpoints (equal at U = 0)
        assert bool((h.final.coefficients[0, :, :N] == 0).all())
        assert torch.equal(h.final.centres[0, :, :N], h.final.centres[0, :, N:])


@pytest.mark.parametrize("scheme", rn.SCHEMES)
def test_width_limit_error_falls_like_m_to_minus_half(scheme):
    """Trained finite-M outputs and trajectories approach the trained kernel limit at the
    Monte Carlo rate: mean per-seed slope within z = 4 standard errors of -1/2."""
    X, Y = _data()
    w = width_limit(X, Y, [64, 256, 1024, 4096], depth=4, bandwidth=0.5, scheme=scheme,
                    lr=5.0, steps=60, n_seeds=N_SEEDS, generator=0)
    root = np.sqrt(np.asarray(w.widths, dtype=float))
    print(f"{scheme}: output slope {w.output_slope:+.3f} ± {w.output_stderr:.3f}, "
          f"trajectory slope {w.trajectory_slope:+.3f} ± {w.trajectory_stderr:.3f}; "
          f"sqrt(M) * mean error {(w.output_error.mean(1).numpy() * root).round(3)}; "
          f"final loss: limit {w.limit_loss:.3e}, widths {w.loss.mean(1).numpy()}")
    assert_slope_close(_fit(w.output_slope, w.output_stderr), -0.5, z=4.0)
    assert_slope_close(_fit(w.trajectory_slope, w.trajectory_stderr), -0.5, z=4.0)
    assert w.output_error.shape == (4, N_SEEDS) and w.X_test.shape == (100, 2)


def test_wrong_limit_fails_the_slope_test():
    """Negative control: against a limit trained with a 10% wider kernel the error stalls at
    the bias, and the slope test rejects it (the test above has power)."""
    X, Y = _data()
    ws = [256, 1024, 4096]
    Xt = rn.toy_data(50, generator=9)[0]
    wrong = train_kernel_limit(X, Y, depth=4, bandwidth=0.55, scheme="euler", lr=5.0,
                               steps=60, record_every=60).final
    f_wrong = kernel_resnet_output(wrong, Xt)
    err = []
    for i, M in enumerate(ws):
        net = rn.init_resnet(2, 2, M, 4, bandwidth=0.5, scheme="euler", n_networks=N_SEEDS,
                             generator=100 + i)
        fin = rn.train(net, X, Y, lr=5.0, steps=60, record_every=60).final
        err.append((rn.resnet_output(fin, Xt) - f_wrong).square().mean((1, 2)).sqrt())
    mean, se = _seed_slopes(np.asarray(ws, float), torch.stack(err).numpy())
    print(f"wrong limit: slope {mean:+.3f} ± {se:.3f}")
    with pytest.raises(AssertionError):
        assert_slope_close(_fit(mean, se), -0.5, z=4.0)


# ------------------------------------------------------------------------------------------
# Errors, divergence, devices
# ------------------------------------------------------------------------------------------

def _knet():
    X, Y = _data(4)
    return train_kernel_limit(X, Y, depth=2, steps=2).final


@pytest.mark.parametrize("call, match", [
    (lambda X, Y: train_kernel_limit(X, Y, depth=0), "'depth' parameter"),
    (lambda X, Y: train_kernel_limit(X, Y, depth=2, scheme="rk4"), "'scheme' parameter"),
    (lambda X, Y: train_kernel_limit(X, Y, depth=2, lr=0.0), "'lr' parameter"),
    (lambda X, Y: train_kernel_limit(X, Y, depth=2, steps=-1), "'steps' parameter"),
    (lambda X, Y: train_kernel_limit(X, Y, depth=2, record_every=0), "'record_every' param"),
    (lambda X, Y: train_kernel_limit(X, Y, depth=2, bandwidth=0.0), "'bandwidth' parameter"),
    (lambda X, Y: train_kernel_limit(X, Y, depth=2, q=1), "'q' parameter"),
    (lambda X, Y: train_kernel_limit(X, Y, depth=2, features="phi"), "'features' parameter"),
    (lambda X, Y: train_kernel_limit(X, Y, depth=2, q=3, features=rn.draw_features(
        2, 8, generator=0)), "'q' parameter"),
    (lambda X, Y: train_kernel_limit(X, Y, depth=2, features=rn.draw_features(
        2, 8, n_networks=2, generator=0).omega), "'features' parameter"),
    (lambda X, Y: train_kernel_limit(X[0], Y, depth=2), "'X' parameter"),
    (lambda X, Y: train_kernel_limit(X, Y[:3], depth=2), "'Y' parameter"),
    (lambda X, Y: train_kernel_limit(X, Y.float(), depth=2), "'Y' parameter"),
    (lambda X, Y: train_kernel_limit(X.expand(3, 8, 2), Y, depth=2, features=rn.draw_features(
        2, 8, n_networks=2, generator=0)), "'X' parameter"),
    (lambda X, Y: kernel_resnet_output("knet", X), "'knet' parameter"),
    (lambda X, Y: kernel_resnet_output(_knet(), X[:, :1]), "'X' parameter"),
    (lambda X, Y: kernel_trajectories(_knet(), X.numpy()), "'X' parameter"),
    (lambda X, Y: kernel_velocity(_knet(), torch.zeros(3, 5, dtype=F64)), "'x' parameter"),
    (lambda X, Y: KernelResNet(torch.zeros(1, 2, 3, 2, dtype=F64),
                               torch.zeros(1, 2, 3, 2, dtype=F64), 2, "rk4", 1.0),
     "'scheme' parameter"),
    (lambda X, Y: width_limit(X, Y, [64, 16], generator=0), "'widths' parameter"),
    (lambda X, Y: width_limit(X, Y, [16, 64], n_seeds=1, generator=0), "'n_seeds' parameter"),
    (lambda X, Y: width_limit(X, Y, [16, 64], steps=0, generator=0), "'steps' parameter"),
    (lambda X, Y: width_limit(X, Y, [16, 64], X_test=X[:, :1], generator=0),
     "'X_test' parameter"),
    (lambda X, Y: width_limit(X, Y, [16, 64], generator=None), "'generator' parameter"),
    (lambda X, Y: width_limit(X, X, [16, 64], depth=2, steps=2, n_seeds=2, generator=0),
     "'Y' parameter"),
])
def test_bad_arguments_raise_one_line_errors(call, match):
    X, Y = _data()
    with pytest.raises((ValueError, TypeError), match=match) as info:
        call(X, Y)
    assert "\n" not in str(info.value)


def test_huge_step_diverges_with_a_clear_error():
    X, Y = _data()
    with pytest.raises(DivergenceError, match="lr < 2 L N / lambda_max") as info:
        train_kernel_limit(X, Y, depth=4, bandwidth=0.3, lr=1e6, steps=50)
    assert "\n" not in str(info.value)


def test_device_matches_cpu(device):
    """The exact-kernel run (one data set per network) on ``device`` follows the CPU run to
    sqrt(eps) relative."""
    X, Y = _data()
    Xs = torch.stack([X, X.flip(0), -X])
    Ys = torch.stack([Y, Y.flip(0), -Y])
    Xn, _ = rn.toy_data(20, generator=7)
    kw = dict(depth=4, bandwidth=0.5, lr=5.0, steps=30, record_every=5)
    cpu = train_kernel_limit(Xs, Ys, **kw)
    other = train_kernel_limit(Xs.to(device), Ys.to(device), **kw)
    assert other.loss.device.type == torch.device(device).type
    torch.testing.assert_close(other.loss.cpu(), cpu.loss, rtol=math.sqrt(EPS), atol=0)
    f_cpu = kernel_resnet_output(cpu.final, Xn)
    f_dev = kernel_resnet_output(other.final, Xn.to(device)).cpu()
    torch.testing.assert_close(f_dev, f_cpu, rtol=math.sqrt(EPS), atol=0)
