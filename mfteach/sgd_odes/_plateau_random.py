r"""The Saad-Solla plateau reached from random initial weights (chapter 04): its length
against the initial overlap scale, predicted by the escape law of :mod:`._plateau`
(:func:`mfteach.sgd_odes.plateau_escape`), with the spread over initialisations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import check_budget, check_float, check_int
from ..stats import SlopeFit, SlopeSpread, slope_spread
from ._overlaps import init_weights, overlaps
from ._plateau import (
    F64,
    _check_values,
    _crossing,
    _excess,
    _log_law_fit,
    _rate,
    _rk4_rate_error,
    _run_until,
    _saddle,
    _ten,
)

__all__ = ["PlateauFromRandom", "plateau_from_random"]


# --- 2. The plateau reached from a random initialisation

@dataclass(frozen=True)
class PlateauFromRandom:
    r"""Plateau lengths from random initial weights of scale :math:`s`, against the law.

    Attributes
    ----------
    K, d : int
    gamma, band, saddle_risk : float
        As passed; the saddle's excess risk :math:`R_s`.
    scales : Tensor, shape (n_s,)
        :math:`s`: students :math:`W_0 = sG`, :math:`Q_{ii} \approx s^2`,
        :math:`M_{ir} \sim N(0, s^2/d)`.
    eps0 : Tensor, shape (n_init, n_s)
        :math:`\lVert HM_0H\rVert_F/(1 - 1/K)`, the initial distance from the symmetric
        subspace along the unstable directions (:math:`\propto s`).
    t_enter, t_leave, length : Tensor, shape (n_init, n_s)
        First times the excess risk falls below :math:`(1 + b)R_s`, then below
        :math:`(1 - b)R_s` (:math:`b` = ``band``), and the plateau length, their difference.
    offset : Tensor, shape (n_init, n_s)
        ``t_leave - log(1/eps0) / rate``, the law's constant: the same for every
        initialisation once :math:`s` is small.
    rate : float
        :math:`\lambda` (:func:`plateau_rate`).
    fits : tuple of LogLawFit
        ``length`` against :math:`\log(1/s)` (correction :math:`\beta s^2`), one per
        initialisation.
    spread : SlopeSpread
        Their slopes' mean, spread and standard error; ``fit_stderr`` (the fits' own mean
        error) says how well each follows the law, ``stderr`` how much they differ.
    allowance : float
        Discretisation allowance of a slope, as in :class:`PlateauEscape`.
    """

    K: int
    d: int
    gamma: float
    band: float
    saddle_risk: float
    scales: Tensor
    eps0: Tensor
    t_enter: Tensor
    t_leave: Tensor
    length: Tensor
    offset: Tensor
    rate: float
    fits: tuple
    spread: SlopeSpread
    allowance: float


def plateau_from_random(K: int = 2, d: int = 100, *,
                        scales: Sequence[float] = (0.03, 0.01, 3e-3, 1e-3, 3e-4),
                        n_init: int = 5, gamma: float = 0.0, band: float = 0.2,
                        dt: float = 1.0,
                        generator: int | torch.Generator = 0) -> PlateauFromRandom:
    r"""How long the plateau lasts from random initial weights, against the initial scale.

    ``n_init`` student/teacher pairs are drawn by :func:`init_weights` (students
    :math:`G` i.i.d. :math:`N(0, 1)`, orthonormal teachers, :math:`P = I`); for every scale
    :math:`s` the high-d ODE (``gamma = 0``: gradient flow) starts from the overlaps of the
    real weights :math:`(sG, W^*)`. Same :math:`G` for every :math:`s`, so that the unstable
    component :math:`\epsilon_0` scales exactly as :math:`s` and each initialisation's length
    should grow by :math:`\frac1\lambda\log 10` per decade of :math:`1/s`.

    Parameters
    ----------
    K : int, default 2
        :math:`p = k = K`, ``2 <= K <= 4``.
    d : int, default 100
        Input dimension of the drawn weights (``>= K``). The ODE does not depend on it, the
        overlaps do: :math:`\epsilon_0 \sim s/\sqrt d`.
    scales : sequence of float, keyword-only
        At least four distinct :math:`s \in (0, 10]`. The law's correction (fitted as
        :math:`\beta s^2`, the order measured) grows fast beyond :math:`s \approx 0.03`.
    n_init : int, keyword-only, default 5
        Independent initialisations (at least 2 for a spread; 5 or more to interpret it).
    gamma : float, keyword-only, default 0
    band : float, keyword-only, default 0.2
        Relative half-width of the band around the saddle's risk that counts as the plateau,
        in (0, 1).
    dt : float, keyword-only, default 1.0
        RK4 step and recording interval, ``<= 2``.
    generator : int or torch.Generator, keyword-only, default 0

    Returns
    -------
    PlateauFromRandom

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), or a run that never leaves the plateau.

    Notes
    -----
    Measured (erf, :math:`K = 2`, :math:`d = 100`, defaults, seed 20261123): lengths
    143-240 at :math:`s = 0.03` to 283-380 at :math:`3\cdot 10^{-4}`; slopes
    :math:`30.4171 \pm 0.0006` (fit error; spread over the 5 initialisations below
    :math:`10^{-3}`) against :math:`1/\lambda = 30.4183`. An initialisation with an unusually
    small unstable component (seed 0 has one: :math:`\epsilon_0/s = 5\cdot 10^{-6}`) has
    a long plateau and a slope off the law (its second-order terms dominate); the spread then
    says so. Book size (defaults) about 2 s on one CPU core. Chapter 04.

    Examples
    --------
    >>> r = plateau_from_random(scales=(0.01, 3e-3, 1e-3, 3e-4), n_init=2, dt=2.0)
    >>> r.length.shape
    torch.Size([2, 4])
    """
    fn = "mfteach.sgd_odes.plateau_from_random"
    K = check_int(K, "K", fn, min=2, max=4)
    d = check_int(d, "d", fn, min=K)
    ss = _check_values(scales, "scales", fn, 0.0, 10.0, 4)
    n_init = check_int(n_init, "n_init", fn, min=2)
    gamma = check_float(gamma, "gamma", fn, min=0.0)
    band = check_float(band, "band", fn, min=0.0, max=1.0, min_open=True, max_open=True)
    dt = check_float(dt, "dt", fn, min=0.0, max=2.0, min_open=True)
    nbytes = 8 * 4 * n_init * len(ss) * 2 * K * d
    check_budget("d" if d >= n_init * len(ss) else "n_init", fn,
                 d if d >= n_init * len(ss) else n_init, nbytes=nbytes)
    W, Ws = init_weights(K, K, d, n_runs=n_init, generator=generator)
    s = torch.tensor(ss, dtype=F64).view(1, -1, 1, 1)
    o = overlaps(s * W.unsqueeze(1), Ws.unsqueeze(1))  # (n_init, n_s, K, *)
    H = torch.eye(K, dtype=F64) - 1.0 / K
    eps0 = torch.linalg.matrix_norm(H @ o.M @ H) / (1 - 1 / K)  # (n_init, n_s)
    xs, J = _saddle(K, gamma, 0.0, fn)
    lam, r_s = _rate(J), _excess(xs, K)
    hi, lo = (1 + band) * r_s, (1 - band) * r_s

    def cross(t, ex):
        out = []
        for e in ex.reshape(-1, ex.shape[-1]):
            a, ea = _crossing(t, e, hi, 0)
            b, eb = (_crossing(t, e, lo, int(np.searchsorted(t, a)) + 1)
                     if math.isfinite(a) else (math.nan, math.nan))
            out.append((a, b, ea + eb))
        return out

    t_guess = 1.2 * (math.log(1 / float(eps0.min().clamp_min(1e-300))) + 1) / lam + 60
    t, ex = _run_until(o.Q, o.M, o.P, gamma=gamma, delta=0.0, dt=dt, t_chunk=t_guess,
                       t_cap=4 * t_guess, fn=fn, name="scales", value=scales,
                       done=lambda t, ex: all(math.isfinite(c[1]) for c in cross(t, ex)))
    c = np.array(cross(t, ex)).reshape(n_init, len(ss), 3)
    length = c[..., 1] - c[..., 0]
    x = np.asarray(ss)
    fits, allow = [], []
    for i in range(n_init):
        fit, w = _log_law_fit(x, length[i], 2)
        fits.append(fit)
        allow.append(float(np.abs(w) @ c[i, :, 2]))
    spread = slope_spread([SlopeFit(slope=f.slope, stderr=f.stderr, intercept=f.intercept,
                                    n_points=f.n_points) for f in fits])
    offset = c[..., 1] - np.log(1 / eps0.numpy()) / lam
    return PlateauFromRandom(K=K, d=d, gamma=gamma, scales=_ten(ss), eps0=eps0,
                             t_enter=_ten(c[..., 0]), t_leave=_ten(c[..., 1]),
                             length=_ten(length), offset=_ten(offset), rate=lam,
                             fits=tuple(fits), spread=spread,
                             allowance=_rk4_rate_error(lam, dt) + max(allow), band=band,
                             saddle_risk=r_s)
