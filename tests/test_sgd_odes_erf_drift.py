"""The structured erf drift (mfteach/sgd_odes/_erf_drift.py) against the generic per-block code
and against Monte Carlo (issue 16).

Tolerances from rounding: each entry of A is a sum of n terms and each entry of V a sum of n^2
terms c_a c_b I4 with |c_a| <= 1, sum_a |c_a| = 2 and |I4| <= 2/pi, so two summation orders
differ by at most about n^2 * eps * (2 * 2 * 2/pi) per entry; the tests allow 4x that.
"""

from __future__ import annotations

import math

import pytest
import torch

import mfteach.sgd_odes._erf_drift as ed
from mfteach.sgd_odes import omega, psi_samples, psi_terms
from mfteach.sgd_odes._linearised import drift_fn, pack
from mfteach.sgd_odes._rhs import _erf_A, _mf_drift, _psi, _rhs, coefficients
from mfteach.testing import assert_mc_close

F64 = torch.float64


def random_omega(p: int, k: int, seed: int, batch=(), dtype=F64, extra: int = 3):
    """Random positive-definite Omegas (students first), of realistic O(1) scale."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(*batch, p + k, p + k + extra, generator=g, dtype=F64)
    Om = A @ A.mT / (p + k + extra)
    return (0.5 * (Om + Om.mT)).to(dtype)


def tol(n: int, dtype) -> float:
    return 4 * n * n * torch.finfo(dtype).eps * 8 / math.pi


def reference(Om: torch.Tensor, p: int):
    """A, V and N from one erf_I3 / erf_I4 per gathered block (the former code)."""
    k = Om.shape[-1] - p
    psi = _psi(Om, p, k, "erf_sqrt2", 1.0, True, reference=True)
    n = p + k
    A = _erf_A(Om, torch.arange(n).expand(p, n), coefficients(p, k, Om))
    return A, psi.var - psi.noise, psi.noise


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch"])
@pytest.mark.parametrize("p,k", [(1, 1), (2, 2), (5, 1), (9, 3)])
def test_structured_drift_equals_the_generic_code(p, k, compiled, seed):
    Om = random_omega(p, k, seed, batch=(3,))
    A, V, N = ed.erf_drift(Om, p, True, compiled=compiled)
    A0, V0, N0 = reference(Om, p)
    t = tol(p + k, F64)
    assert (A - A0).abs().max() <= t
    assert (V - V0).abs().max() <= t
    assert (N - N0).abs().max() <= t
    assert A.shape == (3, p, p + k) and V.shape == (3, p, p)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch"])
def test_float32_keeps_the_float32_rounding(compiled, seed):
    p, k = 6, 2
    Om = random_omega(p, k, seed, batch=(2,), dtype=torch.float32)
    A, V, N = ed.erf_drift(Om, p, True, compiled=compiled)
    A0, V0, _ = reference(Om.double(), p)
    assert A.dtype == torch.float32
    t = tol(p + k, torch.float32)
    assert (A.double() - A0).abs().max() <= t and (V.double() - V0).abs().max() <= t


@pytest.mark.parametrize("regime", ["high_d", "gf", "gf_noise"])
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch"])
def test_right_hand_side_equals_the_generic_code(regime, compiled, seed):
    p, k = 4, 2
    Om = random_omega(p, k, seed, batch=(2, 3))
    dQ, dM = ed.erf_rhs(Om, p, 0.7, 0.3, regime, compiled=compiled)
    dQ0, dM0 = _rhs(Om, p, k, "erf_sqrt2", 0.7, 0.3, regime, reference=True)
    t = tol(p + k, F64)
    assert dQ.shape == dQ0.shape and dM.shape == dM0.shape
    assert (dQ - dQ0).abs().max() <= t and (dM - dM0).abs().max() <= t
    # the regimes differ by the variance term, so a dropped term would be seen
    other = "gf" if regime != "gf" else "high_d"
    assert (ed.erf_rhs(Om, p, 0.7, 0.3, other)[0] - dQ).abs().max() > 1e3 * t


def test_variance_term_vs_monte_carlo(seed):
    """Independent of both codes: the integrals themselves, sampled (p = 6, all 36 entries)."""
    p, k = 6, 2
    Om = random_omega(p, k, seed)
    Q, M, P = Om[:p, :p], Om[:p, p:], Om[p:, p:]
    closed = psi_terms(Q, M, P, activation="erf_sqrt2", delta=0.25)
    mc = psi_samples(Q, M, P, activation="erf_sqrt2", delta=0.25, n_samples=200_000,
                     generator=seed)
    for name in ("M", "GF", "var", "noise"):
        assert_mc_close(getattr(mc, name), getattr(closed, name), family_rate=1e-6 / 4)


def test_the_chunked_torch_path_and_the_parallel_kernel_agree(monkeypatch, seed):
    p, k = 7, 2
    Om = random_omega(p, k, seed, batch=(4,))
    A0, V0, N0 = ed.erf_drift(Om, p, True, compiled=False)
    monkeypatch.setattr(ed, "_CHUNK_ELEMS", 5 * (p + k) ** 2)  # several chunks of pairs
    A1, V1, _ = ed.erf_drift(Om, p, True, compiled=False)
    t = tol(p + k, F64)
    assert (V1 - V0).abs().max() <= t and (A1 - A0).abs().max() <= t
    if ed.numba is not None:
        monkeypatch.setattr(ed, "PARALLEL_WORK", 1)
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            A2, V2, N2 = ed.erf_drift(Om, p, True, compiled=True)
        finally:
            torch.set_num_threads(threads)
        assert (V2 - V0).abs().max() <= t and (N2 - N0).abs().max() <= t


def test_autograd_takes_the_torch_path_with_the_generic_derivatives(seed):
    Om = random_omega(3, 3, seed)  # p = k = 3, as the linearisation needs
    assert ed.use_compiled(Om) == (ed.numba is not None)
    assert not ed.use_compiled(Om.clone().requires_grad_(True))
    x = pack(Om[:3, :3].clone(), Om[:3, 3:].clone())
    P = Om[3:, 3:].clone()
    J = torch.func.jacrev(drift_fn(3, P, "erf_sqrt2", 0.5, 0.1))(x)

    def ref(y):
        from mfteach.sgd_odes._linearised import unpack
        from mfteach.sgd_odes._overlaps import omega_raw
        Q, M = unpack(y, 3)
        dQ, dM = _rhs(omega_raw(Q, M, P), 3, 3, "erf_sqrt2", 0.5, 0.1, "high_d", True)
        return pack(dQ, dM)

    J0 = torch.func.jacrev(ref)(x)
    assert (J - J0).abs().max() <= 8 * tol(6, F64)


def test_mean_field_columns_equal_the_generic_code(seed):
    g = torch.Generator().manual_seed(seed)
    for p, d in ((1, None), (4, 7), (6, 200)):
        M = 0.5 * torch.randn(3, p, 2, generator=g, dtype=F64)
        q = torch.rand(3, p, generator=g, dtype=F64)
        P = torch.eye(2, dtype=F64) + 0.2
        a = _mf_drift(M, q, P, "erf_sqrt2", d)
        b = _mf_drift(M, q, P, "erf_sqrt2", d, generic=True)
        for x, y in zip(a, b):
            assert (x - y).abs().max() <= tol(2 * p + 2, F64)


def test_i4_count_is_a_quarter_of_the_generic_count():
    assert ed.i4_count(4, 2) == 10 * 21 and ed.i4_count(4, 2, structured=False) == 576
    assert ed.i4_count(100, 2) / ed.i4_count(100, 2, structured=False) < 0.26


def test_public_rhs_uses_the_structured_code(seed):
    p, k = 5, 2
    Om = random_omega(p, k, seed)
    from mfteach.sgd_odes import ode_rhs
    dQ, dM = ode_rhs(Om[:p, :p], Om[:p, p:], Om[p:, p:], activation="erf_sqrt2", gamma=0.5,
                     delta=0.1)
    dQ0, dM0 = _rhs(omega(Om[:p, :p], Om[:p, p:], Om[p:, p:]), p, k, "erf_sqrt2", 0.5, 0.1,
                    "high_d", reference=True)
    assert (dQ - dQ0).abs().max() <= tol(p + k, F64)


@pytest.mark.gpu
def test_cuda_structured_drift_equals_cpu(seed):
    torch.backends.cuda.matmul.allow_tf32 = False
    p, k = 12, 2
    Om = random_omega(p, k, seed, batch=(8,))
    A, V, N = ed.erf_drift(Om.cuda(), p, True)
    A0, V0, N0 = ed.erf_drift(Om, p, True, compiled=ed.numba is not None)
    t = tol(p + k, F64)
    assert A.device.type == "cuda"
    assert (A.cpu() - A0).abs().max() <= t and (V.cpu() - V0).abs().max() <= t
    A32, V32, _ = ed.erf_drift(Om.float().cuda(), p, True)
    t32 = tol(p + k, torch.float32)
    assert (A32.double().cpu() - A0).abs().max() <= t32
    assert (V32.double().cpu() - V0).abs().max() <= t32
