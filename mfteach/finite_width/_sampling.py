r"""Vectorised sampling of random networks' outputs and tangent kernels at initialisation.

The network of the chapter is the NTK-parametrized fully connected net of
:mod:`mfteach.kernels` without biases and with a readout law of our choice:

.. math::

    f(x) = \frac{1}{\sqrt N}\sum_{i=1}^N a_i\,\phi\big(h^L_i(x)\big),\qquad
    h^1 = \frac{W^1 x}{\sqrt d},\qquad h^{l+1} = \frac{W^{l+1}\phi(h^l)}{\sqrt N},

with i.i.d. hidden weights of mean 0 and variance 1 (:math:`\mathcal N(0, 1)` by default, or one of
``HIDDEN_LAWS`` in :func:`sample_outputs`) and i.i.d. readout weights :math:`a_i` of mean 0
and variance 1 drawn from one of ``READOUTS``. For one hidden layer (``depth=1``) the output is
a sum of :math:`N` i.i.d. terms :math:`Z_i = a_i\phi(u_i)`, where the pre-activations
:math:`u_i = (w_i\cdot x/\sqrt d)_x` are jointly Gaussian with covariance
:math:`K^1(x, x') = x\cdot x'/d`. The sampler draws :math:`(a, u)` directly, as an
:math:`S\times N` matrix per input direction, never the weights :math:`w_i \in \mathbb{R}^d`,
and never one network at a time (Gaussian hidden weights; other laws draw the first-layer
weights). Deeper networks are drawn as batches of weight matrices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import check_budget, check_choice, check_int, check_tensor, fail, max_bytes
from ..activations import ACTIVATIONS, Activation, get_activation
from ..device import as_generator, resolve_device, resolve_dtype

__all__ = ["READOUTS", "HIDDEN_LAWS", "ReadoutLaw", "readout_law", "sample_readout",
           "sample_outputs", "sample_ntk"]


@dataclass(frozen=True)
class ReadoutLaw:
    r"""A law of the readout weights :math:`a` (mean 0, variance 1) and its moments.

    Attributes
    ----------
    name : str
    moments : tuple of float
        :math:`(\mathbb{E}a, \mathbb{E}a^2, \mathbb{E}a^3, \mathbb{E}a^4)`.
    description : str
    """

    name: str
    moments: tuple[float, float, float, float]
    description: str


_READOUTS = {
    "gaussian": ReadoutLaw("gaussian", (0.0, 1.0, 0.0, 3.0), "a ~ N(0, 1)"),
    "rademacher": ReadoutLaw("rademacher", (0.0, 1.0, 0.0, 1.0), "a = +1 or -1, prob. 1/2"),
    "exponential": ReadoutLaw("exponential", (0.0, 1.0, 2.0, 9.0),
                              "a = E - 1, E ~ Exp(1) (skewed)"),
}

#: Names of the readout laws: ``"gaussian"``, ``"rademacher"``, ``"exponential"`` (centred).
READOUTS: tuple[str, ...] = tuple(_READOUTS)

#: Names of the laws of the hidden weights :math:`w_{ij}` (mean 0, variance 1):
#: ``"gaussian"`` :math:`\mathcal N(0, 1)`; ``"rademacher"`` :math:`\pm 1` with probability 1/2;
#: ``"uniform"`` uniform on :math:`[-\sqrt3, \sqrt3]`. Their fourth cumulants are 0, -2, -6/5.
HIDDEN_LAWS: tuple[str, ...] = ("gaussian", "rademacher", "uniform")

# Elements of the largest intermediate tensor per chunk of networks.
_BUDGET = {"cpu": 1 << 22, "cuda": 1 << 27}


def readout_law(name: str) -> ReadoutLaw:
    """Look up a readout law by name (one of ``READOUTS``).

    Examples
    --------
    >>> readout_law("exponential").moments
    (0.0, 1.0, 2.0, 9.0)
    """
    check_choice(name, "name", "mfteach.finite_width.readout_law", READOUTS)
    return _READOUTS[name]


def _draw_readout(shape: tuple[int, ...], law: str, g: torch.Generator, dev: torch.device,
                  dt: torch.dtype) -> Tensor:
    if law == "gaussian":
        return torch.randn(shape, generator=g, device=dev, dtype=dt)
    if law == "rademacher":
        bits = torch.randint(0, 2, shape, generator=g, device=dev, dtype=torch.int8)
        return bits.to(dt).mul_(2).sub_(1)
    return torch.empty(shape, device=dev, dtype=dt).exponential_(generator=g).sub_(1)


def _draw_hidden(shape: tuple[int, ...], law: str, g: torch.Generator, dev: torch.device,
                 dt: torch.dtype) -> Tensor:
    """Hidden weights of one of ``HIDDEN_LAWS`` (mean 0, variance 1)."""
    if law == "gaussian":
        return torch.randn(shape, generator=g, device=dev, dtype=dt)
    if law == "rademacher":
        bits = torch.randint(0, 2, shape, generator=g, device=dev, dtype=torch.int8)
        return bits.to(dt).mul_(2).sub_(1)
    u = torch.rand(shape, generator=g, device=dev, dtype=dt)
    return u.mul_(2).sub_(1).mul_(math.sqrt(3.0))


def sample_readout(shape: tuple[int, ...], law: str = "gaussian", *,
                   generator: int | torch.Generator, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> Tensor:
    r"""Draw readout weights of the given law (mean 0, variance 1).

    Parameters
    ----------
    shape : tuple of int
    law : {"gaussian", "rademacher", "exponential"}
        :math:`\mathcal N(0,1)`; :math:`\pm1` with probability 1/2; :math:`E - 1` with
        :math:`E \sim \mathrm{Exp}(1)` (third moment 2, fourth moment 9).
    generator, device, dtype : keyword-only
        Randomness (int seed or a generator on ``device``), placement, dtype (float64
        by default).

    Returns
    -------
    Tensor, shape ``shape``

    Examples
    --------
    >>> a = sample_readout((100_000,), "rademacher", generator=0)
    >>> sorted(set(a.tolist()))
    [-1.0, 1.0]
    """
    fn = "mfteach.finite_width.sample_readout"
    check_choice(law, "law", fn, READOUTS)
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        fail("shape", fn, "a tuple of non-negative ints", shape, exc=TypeError)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    check_budget("shape", fn, shape, nbytes=2.0 * math.prod(shape) * dt.itemsize)
    g = as_generator(generator, dev, fn)
    return _draw_readout(shape, law, g, dev, dt)


def _check_widths(widths, fn: str) -> tuple[int, ...]:
    """At least two distinct ints >= 1 (a list, tuple, or 1-d integer array or tensor)."""
    rule = "a sequence of at least two distinct ints >= 1"
    if isinstance(widths, (Tensor, np.ndarray)) and widths.ndim == 1 and not (
            widths.dtype.is_floating_point if isinstance(widths, Tensor)
            else widths.dtype.kind == "f"):
        widths = widths.tolist()
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        fail("widths", fn, rule, widths, exc=TypeError)
    out = tuple(check_int(w, "widths", fn, min=1) for w in widths)
    if len(set(out)) < 2:
        fail("widths", fn, rule, widths)
    return out


def _input_factor(x: Tensor) -> Tensor:
    """A factor L (k, r) with L L^T = x x^T / d, r = numerical rank (at most min(k, d))."""
    K1 = x @ x.T / x.shape[1]
    lam, V = torch.linalg.eigh(K1)
    keep = lam > lam.max().clamp_min(0) * x.shape[0] * torch.finfo(x.dtype).eps * 10
    if not bool(keep.any()):
        return torch.zeros(x.shape[0], 1, dtype=x.dtype, device=x.device)
    return V[:, keep] * lam[keep].sqrt()


def _check_common(fn, x, activation, width, n_samples, readout, depth, chunk_size, device,
                  dtype, *, ndim=(1, 2)):
    check_tensor(x, "x", fn, ndim=ndim)
    if x.ndim == 1:
        x = x.unsqueeze(0)
    if x.shape[1] < 1 or x.shape[0] < 1:
        fail("x", fn, "a tensor of shape (k, d) with k, d >= 1", x)
    if not isinstance(activation, Activation):
        check_choice(activation, "activation", fn, ACTIVATIONS)
    act = get_activation(activation)
    width = check_int(width, "width", fn, min=1)
    n_samples = check_int(n_samples, "n_samples", fn, min=1)
    check_choice(readout, "readout", fn, READOUTS)
    depth = check_int(depth, "depth", fn, min=1)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", fn, min=1)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    scale = float(x.detach().abs().max()) if x.numel() else 0.0
    if not math.isfinite(scale * scale * x.shape[1]) or scale > math.sqrt(
            torch.finfo(dt).max) / 1e3:
        fail("x", fn, f"small enough that the pre-activations x.x'/d are finite in {dt}", x)
    x = x.to(device=dev, dtype=dt)
    return x, act, width, n_samples, depth, chunk_size, dev, dt


def _check_sample_budget(fn: str, *, n_out: int, per_network: int, width: int,
                         n_samples: int, chunk_size: int | None, depth: int, dt: torch.dtype,
                         dev: torch.device, width_name: str = "width") -> None:
    """Refuse samples whose output or whose largest chunk would exceed the memory limit, and
    depths that would run too many layer passes, naming the argument responsible."""
    it = dt.itemsize
    check_budget("n_samples", fn, n_samples, nbytes=2.0 * n_samples * n_out * it)
    one = 4.0 * per_network * it  # the buffers of one network
    if one > max_bytes():
        check_budget(width_name, fn, width, nbytes=one)
    m = _chunk_size(n_samples, per_network, chunk_size, dev)
    check_budget("chunk_size" if chunk_size is not None else "n_samples", fn,
                 chunk_size if chunk_size is not None else n_samples, nbytes=one * m)
    check_budget("depth", fn, depth, steps=float(depth) * math.ceil(n_samples / m))


def _chunk_size(n_samples: int, per_network: int, chunk_size: int | None,
                dev: torch.device) -> int:
    if chunk_size is None:
        chunk_size = max(1, _BUDGET[dev.type] // max(1, per_network))
    return min(chunk_size, n_samples)


def _chunks(n_samples: int, per_network: int, chunk_size: int | None, dev: torch.device):
    chunk_size = _chunk_size(n_samples, per_network, chunk_size, dev)
    for start in range(0, n_samples, chunk_size):
        yield min(chunk_size, n_samples - start)


def _hidden_features(L: Tensor, act: Activation, m: int, width: int, depth: int,
                     g: torch.Generator) -> Tensor:
    """phi(h^L) for m networks: shape (m, width, k)."""
    z = torch.randn(m, width, L.shape[1], generator=g, device=L.device, dtype=L.dtype)
    h = z @ L.T  # (m, N, k): first-layer pre-activations, covariance x.x'/d
    for _ in range(depth - 1):
        W = torch.randn(m, width, width, generator=g, device=L.device, dtype=L.dtype)
        h = W @ act.fn(h) / math.sqrt(width)
    return act.fn(h)


def _hidden_features_law(x: Tensor, act: Activation, m: int, width: int, depth: int,
                         g: torch.Generator, law: str) -> Tensor:
    """phi(h^L) for m networks whose hidden weights follow ``law``: shape (m, width, k).

    The first-layer weights are drawn as (m, width, d) matrices (a non-Gaussian law is not
    fixed by the covariance x.x'/d, so the pre-activations cannot be drawn directly)."""
    W = _draw_hidden((m, width, x.shape[1]), law, g, x.device, x.dtype)
    h = W @ x.T / math.sqrt(x.shape[1])  # (m, N, k)
    for _ in range(depth - 1):
        W = _draw_hidden((m, width, width), law, g, x.device, x.dtype)
        h = W @ act.fn(h) / math.sqrt(width)
    return act.fn(h)


def sample_outputs(x: Tensor, *, activation: str | Activation, width: int, n_samples: int,
                   generator: int | torch.Generator, readout: str = "gaussian", depth: int = 1,
                   device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                   chunk_size: int | None = None, hidden: str = "gaussian") -> Tensor:
    r"""Outputs :math:`f(x)` of ``n_samples`` independent random networks of width ``width``.

    :math:`f(x) = N^{-1/2}\sum_i a_i\phi(h^L_i(x))` with the architecture of this module's
    docstring. For ``depth=1`` the pre-activations :math:`u = (w_i\cdot x/\sqrt d)_x` are
    drawn directly as :math:`u = zL^\top`, :math:`LL^\top = xx^\top/d`, from
    :math:`S\times N\times r` standard normals (:math:`r \le \min(k, d)`), so the cost does not
    depend on the input dimension :math:`d`.

    Parameters
    ----------
    x : Tensor, shape (k, d) or (d,)
        The inputs (moved to ``device``/``dtype``); all networks see the same inputs.
    activation : str or Activation
        ``"relu"``, ``"erf"``, ``"tanh"``, ...
    width : int
        Hidden width :math:`N`.
    n_samples : int
        Number of networks :math:`S`.
    generator : int or torch.Generator
        Randomness; a generator must live on ``device``.

    Other Parameters
    ----------------
    readout : {"gaussian", "rademacher", "exponential"}
        Law of :math:`a` (:func:`sample_readout`).
    hidden : {"gaussian", "rademacher", "uniform"}
        Law of every hidden weight (``HIDDEN_LAWS``, mean 0, variance 1). ``"gaussian"``
        draws the pre-activations directly (cost independent of :math:`d`); the other laws
        draw the first-layer weights as :math:`S\times N\times d` matrices (cost
        :math:`\propto d`), since the law of :math:`u = w\cdot x/\sqrt d` is then Gaussian
        only as :math:`d \to \infty` (:func:`hidden_law_cumulants` gives its exact cumulants).
    depth : int
        Number of hidden layers :math:`L` (the deeper layers are drawn as
        :math:`S\times N\times N` weight matrices, chunked).
    device, dtype
        Where to sample; float64 by default (cumulants need it). On a GPU, float32 is the
        fast path and is fine for histograms.
    chunk_size : int, optional
        Networks per chunk (memory bound); by default about :math:`2^{22}` (CPU) or
        :math:`2^{27}` (CUDA) elements in the largest buffer.

    Returns
    -------
    Tensor, shape (S, k)

    Raises
    ------
    TypeError, ValueError
        For a bad ``x`` (non-finite, or so large that ``x.x'/d`` overflows ``dtype``),
        activation, width, count, readout, depth, chunk size or device; or for an output, a
        chunk or a number of layer passes beyond the limits of
        the size limits (CONTRIBUTING.md) (naming ``n_samples``, ``width``, ``chunk_size``
        or ``depth``).

    Notes
    -----
    Same seed, same device and same ``chunk_size``: same numbers. Introduced in the book in
    chapter 02 (finite width); see :func:`mfteach.finite_width.output_cumulants` for the exact
    cumulants of the one-hidden-layer output.

    Examples
    --------
    >>> f = sample_outputs(torch.ones(1, 3), activation="relu", width=16, n_samples=1000,
    ...                    generator=0)
    >>> f.shape, f.dtype
    (torch.Size([1000, 1]), torch.float64)
    """
    fn = "mfteach.finite_width.sample_outputs"
    x, act, width, n_samples, depth, chunk_size, dev, dt = _check_common(
        fn, x, activation, width, n_samples, readout, depth, chunk_size, device, dtype)
    check_choice(hidden, "hidden", fn, HIDDEN_LAWS)
    k = x.shape[0]
    if hidden != "gaussian":
        return _sample_outputs_law(fn, x, act, width, n_samples, generator, readout, depth,
                                   chunk_size, hidden, dev, dt)
    per_net = width * (k + min(k, x.shape[1]) + (width if depth > 1 else 0))
    _check_sample_budget(fn, n_out=k, per_network=per_net, width=width, n_samples=n_samples,
                         chunk_size=chunk_size, depth=depth, dt=dt, dev=dev)
    g = as_generator(generator, dev, fn)
    L = _input_factor(x)  # (k, r)
    per_net = width * (k + L.shape[1] + (width if depth > 1 else 0))
    out = torch.empty(n_samples, k, dtype=dt, device=dev)
    start = 0
    with torch.no_grad():
        for m in _chunks(n_samples, per_net, chunk_size, dev):
            a = _draw_readout((m, 1, width), readout, g, dev, dt)
            feats = _hidden_features(L, act, m, width, depth, g)  # (m, N, k)
            if k == 1:  # a batched dot product: one fused multiply-reduce
                out[start:start + m, 0] = (a[:, 0] * feats[..., 0]).sum(1) / math.sqrt(width)
            else:
                out[start:start + m] = (a @ feats).squeeze(1) / math.sqrt(width)
            start += m
    return out


def _sample_outputs_law(fn, x, act, width, n_samples, generator, readout, depth, chunk_size,
                        hidden, dev, dt) -> Tensor:
    k, d = x.shape
    per_net = width * (k + d + (width if depth > 1 else 0))
    _check_sample_budget(fn, n_out=k, per_network=per_net, width=width, n_samples=n_samples,
                         chunk_size=chunk_size, depth=depth, dt=dt, dev=dev)
    g = as_generator(generator, dev, fn)
    out = torch.empty(n_samples, k, dtype=dt, device=dev)
    start = 0
    with torch.no_grad():
        for m in _chunks(n_samples, per_net, chunk_size, dev):
            a = _draw_readout((m, 1, width), readout, g, dev, dt)
            feats = _hidden_features_law(x, act, m, width, depth, g, hidden)  # (m, N, k)
            out[start:start + m] = (a @ feats).squeeze(1) / math.sqrt(width)
            start += m
    return out


def sample_ntk(x: Tensor, *, activation: str | Activation, width: int, n_samples: int,
               generator: int | torch.Generator, readout: str = "gaussian",
               device: torch.device | str | None = None, dtype: torch.dtype | None = None,
               chunk_size: int | None = None) -> Tensor:
    r"""Empirical NTK at initialisation of ``n_samples`` one-hidden-layer networks.

    .. math::

        \hat\Theta(x, x') = \sum_p \partial_p f(x)\,\partial_p f(x') = \frac1N\sum_{i=1}^N
        \Big[\phi(u_i)\phi(u_i') + \frac{x\cdot x'}{d}\,a_i^2\,\phi'(u_i)\phi'(u_i')\Big],

    both layers trained (the kernel of :meth:`mfteach.models.TwoLayer.ntk_matrix` under the
    ``"ntk"`` parametrization). Its mean is the analytic :func:`mfteach.kernels.ntk`
    (``depth=1``), its variance :math:`v(x, x')/N` with :math:`v` from
    :func:`mfteach.finite_width.ntk_variance_coefficient`.

    Parameters
    ----------
    x : Tensor, shape (k, d)
    activation, width, n_samples, generator, readout, device, dtype, chunk_size
        As :func:`sample_outputs` (one hidden layer).

    Returns
    -------
    Tensor, shape (S, k, k)

    Examples
    --------
    >>> K = sample_ntk(torch.eye(2), activation="relu", width=8, n_samples=5, generator=0)
    >>> K.shape
    torch.Size([5, 2, 2])
    """
    fn = "mfteach.finite_width.sample_ntk"
    x, act, width, n_samples, _, chunk_size, dev, dt = _check_common(
        fn, x, activation, width, n_samples, readout, 1, chunk_size, device, dtype, ndim=2)
    k = x.shape[0]
    _check_sample_budget(fn, n_out=k * k, per_network=width * (3 * k + min(k, x.shape[1])),
                         width=width, n_samples=n_samples, chunk_size=chunk_size, depth=1, dt=dt,
                         dev=dev)
    g = as_generator(generator, dev, fn)
    L = _input_factor(x)
    gram = x @ x.T / x.shape[1]  # (k, k)
    out = torch.empty(n_samples, k, k, dtype=dt, device=dev)
    start = 0
    with torch.no_grad():
        for m in _chunks(n_samples, width * (3 * k + L.shape[1]), chunk_size, dev):
            a = _draw_readout((m, width, 1), readout, g, dev, dt)
            z = torch.randn(m, width, L.shape[1], generator=g, device=dev, dtype=dt)
            u = z @ L.T  # (m, N, k)
            phi, dphi = act.fn(u), act.deriv(u) * a
            K = phi.transpose(1, 2) @ phi + gram * (dphi.transpose(1, 2) @ dphi)
            out[start:start + m] = K / width
            start += m
    return out
