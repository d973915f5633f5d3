"""Assertions shared by the test-suite, the chapters' checker cells and the assignments.

``assert_mc_close`` is the project's rule for Monte-Carlo comparisons: the tolerance is
``z * s / sqrt(n)`` from the samples themselves, never a number tuned to a seed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .stats import bonferroni_z, mc_estimate

__all__ = ["assert_mc_close", "assert_slope_close", "check_exercise"]


def assert_mc_close(samples: torch.Tensor, expected, *, z: float | None = None,
                    atol_bias: float = 0.0, dim: int = 0, family_rate: float = 1e-6) -> None:
    r"""Assert that the mean of ``samples`` matches ``expected`` within ``z`` standard errors.

    Checks :math:`|\bar x - \mu| \le z\, s/\sqrt{n} + \text{atol\_bias}` entrywise. With
    ``z=None`` the Bonferroni z for the number of compared entries at ``family_rate`` is used
    (4.9 for one entry, 5.7 for 100).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> assert_mc_close(torch.randn(10_000, generator=g, dtype=torch.float64), 0.0)
    """
    est = mc_estimate(samples, dim=dim)
    expected = torch.as_tensor(expected, dtype=est.mean.dtype, device=est.mean.device)
    if z is None:
        z = bonferroni_z(max(1, est.mean.numel()), family_rate)
    err = (est.mean - expected).abs()
    tol = z * est.stderr + atol_bias
    bad = err > tol
    if bool(bad.any()):
        worst = int(torch.argmax((err - tol).flatten()))
        raise AssertionError(
            f"Monte-Carlo mean differs from expected beyond z={z:.2f} standard errors "
            f"({int(bad.sum())} of {bad.numel()} entries). Worst entry {worst}: mean "
            f"{float(est.mean.flatten()[worst]):.6g}, expected "
            f"{float(expected.expand_as(est.mean).flatten()[worst]):.6g}, "
            f"stderr {float(est.stderr.flatten()[worst]):.3g}, n={est.n_samples}.")


def assert_slope_close(fit, expected: float, *, z: float = 4.0, atol: float = 0.0) -> None:
    """Assert a fitted log-log slope is within ``z`` standard errors (plus ``atol``) of theory."""
    tol = z * fit.stderr + atol
    if not abs(fit.slope - expected) <= tol:
        raise AssertionError(
            f"fitted slope {fit.slope:.4f} ± {fit.stderr:.4f} is not within {tol:.4f} of the "
            f"predicted {expected}")


def check_exercise(student_fn: Callable, reference_fn: Callable, cases: list[tuple],
                   *, rtol: float = 1e-6, atol: float = 1e-9) -> str:
    """Compare a reader's implementation with the library's on a list of argument tuples.

    Returns a short success message, or raises ``AssertionError`` naming the first failing case.
    A stub that still raises ``NotImplementedError`` gets a friendly message instead.
    """
    for i, args in enumerate(cases):
        try:
            got = student_fn(*args)
        except NotImplementedError as e:
            return f"Not yet implemented: {e}"
        want = reference_fn(*args)
        got_t = torch.as_tensor(got, dtype=torch.float64)
        want_t = torch.as_tensor(want, dtype=torch.float64)
        if got_t.shape != want_t.shape or not torch.allclose(got_t, want_t, rtol=rtol,
                                                              atol=atol):
            raise AssertionError(f"case {i}: expected {want_t.tolist()}, got {got_t.tolist()}")
    return f"All {len(cases)} cases match the reference implementation."
