r"""Exact output cumulants at initialisation for non-Gaussian hidden weights.

With i.i.d. hidden weights :math:`w_{ij}` of mean 0 and variance 1 (``HIDDEN_LAWS``), the
pre-activation at one input is :math:`u = \sum_j c_j w_j`, :math:`c = x/\sqrt d`. It is
Gaussian, :math:`\mathcal N(0, q)` with :math:`q = |x|^2/d`, only when the weights are (or, by
the CLT, as the number of comparable non-zero :math:`c_j` grows). The cumulants of one term
:math:`Z = a\phi(u)` then follow from :math:`\mathbb{E}Z^m = \mathbb{E}a^m\,\mathbb{E}\phi(u)^m`
as in :func:`output_cumulants`, with the moments :math:`\mathbb{E}\phi(u)^m` taken under the
exact law of :math:`u`:

* Rademacher weights: :math:`u` is discrete, :math:`\sum_j \pm c_j`; grouping the equal
  :math:`|c_j|` (multiplicities :math:`k_g`), its law is the convolution of the scaled
  binomials :math:`c_g(2B_g - k_g)`, :math:`B_g \sim \mathrm{Bin}(k_g, 1/2)`, enumerated
  exactly on its :math:`\prod_g (k_g + 1)` support points.
* Uniform weights on :math:`[-\sqrt3, \sqrt3]`, for inputs whose :math:`k` non-zero
  coordinates have one magnitude :math:`c` (this includes :math:`x = \sqrt d\,e_1` and the
  delocalised :math:`x = (1, \dots, 1)`): :math:`u = \sqrt3\,c\,(2S - k)` with :math:`S` the
  Irwin-Hall sum of :math:`k` uniforms on :math:`[0, 1]`, whose density is the cardinal
  B-spline :math:`M_k`. :math:`M_k` is evaluated by its stable recursion
  :math:`M_r(s) = \big(s M_{r-1}(s) + (r - s) M_{r-1}(s - 1)\big)/(r - 1)` (a positive
  combination, no cancellation; de Boor 1978, ch. IX), and
  :math:`\mathbb{E}\phi(u)^m = \int_0^k \phi(\sqrt3 c(2s - k))^m M_k(s)\,ds` by Gauss-Legendre
  on every half unit interval of :math:`s`. :math:`M_k` is a polynomial of degree :math:`k-1`
  on each piece and the kink of ReLU (:math:`u = 0`, :math:`s = k/2`) is a break point, so the
  rule is exact for ReLU (to rounding) and exponentially accurate for smooth :math:`\phi`.
* Gaussian weights: :func:`output_cumulants` with :math:`q = |x|^2/d`.

CLT rate. For the delocalised input the weights enter symmetrically, the third cumulant of
:math:`u` vanishes and :math:`\kappa_4(u) = q^2\kappa_4(w)/k`; the Edgeworth expansion of a
smooth expectation gives :math:`\mathbb{E}g(u) - \mathbb{E}g(z) = \frac{\kappa_4(u)}{24}
\mathbb{E}g^{(4)}(z) + O(k^{-2})`, so every cumulant coefficient approaches its Gaussian-hidden
value at the rate :math:`1/k`. For ReLU it is exact at every :math:`k`:
:math:`\mathbb{E}\phi^2 = q/2`, :math:`\mathbb{E}\phi^4 = \mathbb{E}u^4/2 = (3 + \kappa_4(w)/k)
q^2/2`, so with Gaussian readout :math:`N\kappa_4/\kappa_2^2 = 15 + 6\kappa_4(w)/k`.

References
----------
L. Carvalho, J. L. Costa, J. Mourão, G. Oliveira (2023), arXiv 2304.03385, abstract: the
finite-width corrections are "determined by the statistics of parameter initialization and by
the activation function". C. de Boor (1978), "A Practical Guide to Splines", Springer (the
B-spline recursion). Book chapter 02.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice, check_tensor, fail
from ..activations import Activation, resolve_activation
from ._cumulants import OutputCumulants, _activation_moment, _cumulants_from_moments
from ._sampling import HIDDEN_LAWS, READOUTS, readout_law

__all__ = ["HIDDEN_KAPPA4", "HiddenLawCumulants", "hidden_law_cumulants"]

#: Fourth cumulant :math:`\kappa_4(w) = \mathbb{E}w^4 - 3` of each hidden law.
HIDDEN_KAPPA4: dict[str, float] = {"gaussian": 0.0, "rademacher": -2.0, "uniform": -1.2}

# Largest support enumerated for Rademacher weights, and largest k for uniform weights.
_MAX_SUPPORT = 1 << 22
_MAX_UNIFORM_K = 1024


@dataclass(frozen=True)
class HiddenLawCumulants(OutputCumulants):
    r"""Exact output cumulants at one input for a given law of the hidden weights.

    An :class:`OutputCumulants` (same attributes and methods: ``kappa(width)``,
    ``excess_kurtosis(width)``, ...) with two more attributes.

    Attributes
    ----------
    hidden : str
        The hidden law (one of ``HIDDEN_LAWS``).
    phi_moments : tuple of float
        :math:`(\mathbb{E}\phi(u), \dots, \mathbb{E}\phi(u)^4)` under the exact law of
        :math:`u = w\cdot x/\sqrt d`.
    """

    hidden: str = "gaussian"
    phi_moments: tuple[float, float, float, float] = (math.nan,) * 4


def _rademacher_rule(c: np.ndarray, fn: str, x) -> tuple[np.ndarray, np.ndarray]:
    """Support points and probabilities of u = sum_j c_j s_j, s_j = +-1."""
    vals, counts = np.unique(np.abs(c[c != 0]), return_counts=True)
    size = float(np.prod(counts.astype(np.float64) + 1))
    if size > _MAX_SUPPORT:
        fail("x", fn, f"an input whose sign sums sum_j +-x_j/sqrt(d) take at most "
             f"{_MAX_SUPPORT} values for hidden='rademacher' (coordinates of few distinct "
             f"magnitudes)", x)
    nodes, probs = np.zeros(1), np.ones(1)
    for v, k in zip(vals, counts):
        b = np.arange(k + 1, dtype=np.float64)
        logp = (math.lgamma(k + 1) - np.array([math.lgamma(i + 1) + math.lgamma(k - i + 1)
                                               for i in range(k + 1)]) - k * math.log(2.0))
        nodes = (nodes[:, None] + v * (2 * b - k)[None, :]).ravel()
        probs = (probs[:, None] * np.exp(logp)[None, :]).ravel()
    return nodes, probs


def _bspline_pieces(k: int, t: np.ndarray) -> np.ndarray:
    """M_k(t + l) for l = 0..k-1 and t in [0, 1): shape (len(t), k) (cardinal B-spline)."""
    V = np.ones((t.size, 1))
    for r in range(2, k + 1):
        l = np.arange(r, dtype=np.float64)
        new = np.zeros((t.size, r))
        new[:, : r - 1] += (t[:, None] + l[: r - 1]) * V
        new[:, 1:] += (r - t[:, None] - l[1:]) * V
        V = new / (r - 1)
    return V


def _uniform_rule(c: np.ndarray, fn: str, x) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E g(u), u = sum_j c_j U_j, U_j uniform on [-sqrt 3, sqrt 3],
    for coordinates of one magnitude (the zero ones aside)."""
    mags = np.abs(c[c != 0])
    k = mags.size
    cmax = float(mags.max())
    if float(mags.max() - mags.min()) > 16 * np.finfo(np.float64).eps * cmax:
        fail("x", fn, "an input whose non-zero coordinates all have the same magnitude for "
             "hidden='uniform' (e.g. sqrt(d) e_1 or (1, ..., 1); the density of a sum of "
             "uniforms of unequal widths is not implemented)", x)
    if k > _MAX_UNIFORM_K:
        fail("x", fn, f"an input with at most {_MAX_UNIFORM_K} non-zero coordinates for "
             f"hidden='uniform' (beyond, u is Gaussian to O(1/k): use hidden='gaussian')", x)
    n_gl = max(32, (k + 4) // 2 + 16)  # exact for ReLU^4 x M_k (degree k + 3) per piece
    z, w = np.polynomial.legendre.leggauss(n_gl)
    t = np.concatenate([(z + 1) / 4, (z + 3) / 4])  # two halves of [0, 1]
    wt = np.concatenate([w, w]) / 4
    M = _bspline_pieces(k, t)  # (P, k)
    s = t[:, None] + np.arange(k, dtype=np.float64)[None, :]
    nodes = math.sqrt(3.0) * cmax * (2 * s - k)
    return nodes.ravel(), (wt[:, None] * M).ravel()


def hidden_law_cumulants(activation: str | Activation, x: Tensor, *,
                         readout: str = "gaussian",
                         hidden: str = "gaussian") -> HiddenLawCumulants:
    r"""Exact cumulants of :math:`f(x) = N^{-1/2}\sum_i a_i\phi(w_i\cdot x/\sqrt d)` at one
    input, for i.i.d. hidden weights of a given law.

    As :func:`output_cumulants`, with :math:`\mathbb{E}\phi(u)^m` under the exact law of
    :math:`u = w\cdot x/\sqrt d` (derived in this module's docstring): exact
    enumeration for Rademacher weights, B-spline density and Gauss-Legendre quadrature for uniform
    weights, :func:`output_cumulants` (:math:`q = |x|^2/d`) for Gaussian weights.

    Parameters
    ----------
    activation : str or Activation
    x : Tensor, shape (d,) or (1, d)
        One non-zero input.
    readout : {"gaussian", "rademacher", "exponential"}, keyword-only
    hidden : {"gaussian", "rademacher", "uniform"}, keyword-only
        ``"uniform"`` needs the non-zero coordinates of ``x`` to share one magnitude;
        ``"rademacher"`` at most :math:`2^{22}` distinct sign sums.

    Returns
    -------
    HiddenLawCumulants

    Raises
    ------
    TypeError, ValueError
        For a bad activation, readout or hidden law, or an ``x`` that is not one finite
        non-zero input (or is outside the cases above).

    Notes
    -----
    At :math:`x = \sqrt d\,e_1`, :math:`u = w_1` has the hidden law itself. Gaussian readout,
    :math:`N\kappa_4/\kappa_2^2`: ReLU 15 (Gaussian), 3 (Rademacher), 7.8 (uniform); tanh
    1.882 (Gaussian), 0 (Rademacher: :math:`\phi(u)^2 = \tanh^2 1` is constant), 1.271
    (uniform). For the delocalised :math:`x = (1, \dots, 1)` the coefficient tends to
    the Gaussian value at the rate :math:`1/d` (ReLU: exactly
    :math:`15 + 6\kappa_4(w)/d`, ``HIDDEN_KAPPA4``).

    Examples
    --------
    >>> e1 = torch.tensor([2.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # sqrt(4) e_1
    >>> [round(hidden_law_cumulants("relu", e1, hidden=h).kurtosis_coef, 10)
    ...  for h in ("gaussian", "rademacher", "uniform")]
    [15.0, 3.0, 7.8]
    >>> ones = torch.ones(100, dtype=torch.float64)
    >>> round(hidden_law_cumulants("relu", ones, hidden="rademacher").kurtosis_coef, 10)
    14.88
    """
    fn = "mfteach.finite_width.hidden_law_cumulants"
    act = resolve_activation(activation, fn)
    check_choice(readout, "readout", fn, READOUTS)
    check_choice(hidden, "hidden", fn, HIDDEN_LAWS)
    check_tensor(x, "x", fn, ndim=(1, 2))
    if x.ndim == 2 and x.shape[0] != 1:
        fail("x", fn, "one input: a tensor of shape (d,) or (1, d)", x)
    xs = x.detach().reshape(-1).to("cpu", torch.float64)
    if xs.numel() < 1 or not bool((xs != 0).any()):
        fail("x", fn, "a non-zero input of at least one coordinate", x)
    d = xs.numel()
    if float(xs.abs().max()) > 1e50:
        fail("x", fn, "an input with entries of magnitude at most 1e50 (the fourth moments "
             "must stay finite)", x)
    c = xs.numpy() / math.sqrt(d)
    q = float((c * c).sum())
    if not q > 0:
        fail("x", fn, "an input with |x|^2/d > 0 in float64", x)
    if hidden == "gaussian":
        phi_mom = [_activation_moment(act, m, q, 200, fn) for m in range(1, 5)]
    else:
        rule = _rademacher_rule if hidden == "rademacher" else _uniform_rule
        nodes, weights = rule(c, fn, x)
        u = torch.from_numpy(nodes)
        wt = torch.from_numpy(weights)
        with torch.no_grad():
            ph = act.fn(u).to(torch.float64)
            phi_mom = [float((wt * ph**m).sum()) for m in range(1, 5)]
    a_mom = readout_law(readout).moments
    kz = _cumulants_from_moments([a_mom[m] * phi_mom[m] for m in range(4)])
    k2 = kz[1]
    if not (k2 > 0 and all(math.isfinite(v) for v in (*kz, *phi_mom))):
        fail("x", fn, "an input at which phi(u) fluctuates with moments finite in float64 "
             "(kappa_2 > 0)", x)
    return HiddenLawCumulants(act.name, readout, q, tuple(kz), kz[2] / k2**1.5,
                              kz[3] / k2**2, hidden, tuple(phi_mom))
