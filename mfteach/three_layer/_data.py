r"""Data for the three-layer chapter: inputs on the unit sphere, a fixed teacher, a 1-D slice.

Inputs are uniform on :math:`S^{d-1}` (so :math:`\theta^\top x \sim N(0, 1)` for
:math:`\theta \sim N(0, I_d)` and :math:`k_1(x, x) = 1/2` for ReLU features). The teachers, in
the rescaled coordinate :math:`u = \sqrt d\,x` (each :math:`u_k` of variance 1):

* ``"single_index"``: :math:`y = \tanh(2 u_1)`;
* ``"two_index"``: :math:`y = u_1 u_2` (``d >= 2``);
* ``"linear"``: :math:`y = u_1`.

The slice for the pictures is the great circle :math:`x(s) = \cos s\,e_1 + \sin s\,e_2`,
:math:`s \in [-\pi, \pi]`, which crosses the teacher's relevant directions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import check_budget, check_choice, check_int, check_tensor, fail
from ..device import resolve_device, resolve_dtype
from ._model import _draw_generator

__all__ = ["TARGETS", "target_function", "sphere_data", "great_circle"]

TARGETS: tuple[str, ...] = ("single_index", "two_index", "linear")
"""The teachers of :func:`sphere_data`."""


def target_function(X: Tensor, target: str = "single_index") -> Tensor:
    r"""The teacher :math:`y(x)` on inputs ``X`` of shape (n, d) or (B, n, d) (the shapes of
    :func:`sphere_data`); see ``TARGETS``.

    Examples
    --------
    >>> target_function(torch.tensor([[1.0, 0.0]], dtype=torch.float64), "linear")
    tensor([1.4142], dtype=torch.float64)
    """
    fn = "mfteach.three_layer.target_function"
    check_tensor(X, "X", fn, ndim=(2, 3))
    check_choice(target, "target", fn, TARGETS)
    if X.shape[-1] < 1:
        fail("X", fn, "a tensor of shape (n, d) or (B, n, d) with d >= 1", X)
    if target == "two_index" and X.shape[-1] < 2:
        fail("X", fn, "a tensor of shape (n, d) or (B, n, d) with d >= 2 for "
             "target='two_index'", X)
    u = X * math.sqrt(X.shape[-1])
    if target == "single_index":
        return torch.tanh(2 * u[..., 0])
    if target == "two_index":
        return u[..., 0] * u[..., 1]
    return u[..., 0]


def sphere_data(n: int, d: int, *, n_sets: int | None = None, target: str = "single_index",
                generator: int | torch.Generator, device: torch.device | str | None = None,
                dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    r"""Inputs uniform on :math:`S^{d-1}` with the labels of a fixed teacher.

    Parameters
    ----------
    n, d : int
        Number of points and input dimension.

    Other Parameters
    ----------------
    n_sets : int, optional
        Draw ``n_sets`` independent data sets at once (one per network of an ensemble).
    target : {"single_index", "two_index", "linear"}
    generator : int or torch.Generator
        An int seed draws on the CPU (the same data on every device).
    device, dtype
        CPU and ``float64`` by default.

    Returns
    -------
    X : Tensor, shape (n, d), or (n_sets, n, d)
    y : Tensor, shape (n,), or (n_sets, n)

    Examples
    --------
    >>> X, y = sphere_data(5, 3, generator=0)
    >>> X.shape, [round(v, 12) for v in X.norm(dim=1).tolist()]
    (torch.Size([5, 3]), [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    fn = "mfteach.three_layer.sphere_data"
    n = check_int(n, "n", fn, min=1)
    d = check_int(d, "d", fn, min=1)
    check_choice(target, "target", fn, TARGETS)
    if target == "two_index" and d < 2:
        fail("d", fn, "an int >= 2 for target='two_index'", d)
    B = 1 if n_sets is None else check_int(n_sets, "n_sets", fn, min=1)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    sizes = {"n": n, "d": d, "n_sets": B}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=3.0 * B * n * (d + 1) * dt.itemsize)
    g = _draw_generator(generator, dev, fn)
    G = torch.randn(B, n, d, generator=g, device=g.device, dtype=dt).to(dev)
    norm = G.norm(dim=-1, keepdim=True)
    if not bool((norm > 0).all()):  # probability zero
        fail("generator", fn, "a seed whose Gaussian draws are non-zero", generator)
    X = G / norm
    y = target_function(X, target)
    if n_sets is None:
        return X[0], y[0]
    return X, y


def great_circle(n_points: int, d: int, *, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    r"""The slice :math:`x(s) = \cos s\,e_1 + \sin s\,e_2` of :math:`S^{d-1}`, :math:`s \in
    [-\pi, \pi]`.

    Returns
    -------
    s : Tensor, shape (n_points,)
    X : Tensor, shape (n_points, d)

    Examples
    --------
    >>> s, X = great_circle(5, 3)
    >>> X[2].tolist()
    [1.0, 0.0, 0.0]
    """
    fn = "mfteach.three_layer.great_circle"
    n_points = check_int(n_points, "n_points", fn, min=2)
    d = check_int(d, "d", fn, min=2)
    big = "n_points" if n_points >= d else "d"
    check_budget(big, fn, max(n_points, d), nbytes=2.0 * n_points * d * 8)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    s = torch.linspace(-math.pi, math.pi, n_points, dtype=dt, device=dev)
    X = torch.zeros(n_points, d, dtype=dt, device=dev)
    X[:, 0] = torch.cos(s)
    X[:, 1] = torch.sin(s)
    return s, X
