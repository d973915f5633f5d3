"""Initialisations of the introduction chapter and the function-space kernel."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_choice, check_int, check_same_device_dtype, check_tensor, fail
from ..device import resolve_device, resolve_dtype
from ..models import TwoLayer
from ._sweep import ACTIVATIONS, INITS, PARAMETRIZATIONS, _fn, _generator, _init_network

__all__ = ["init_network", "function_space_kernel"]


def init_network(d: int, width: int, parametrization: str, *, init: str = "standard",
                 activation: str = "relu", n_networks: int = 1,
                 generator: int | torch.Generator, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> TwoLayer:
    r"""A :class:`~mfteach.models.TwoLayer` ensemble with the chapter's two initialisations.

    ``"standard"``: :math:`a_j, w_{ji} \sim N(0, 1)` i.i.d. ``"antisymmetric"``: draw
    :math:`N/2` neurons, then append their copies with the output weight negated,
    :math:`(a_j, w_j) \mapsto (-a_j, w_j)`. The function at initialisation is then zero (up to
    rounding), while the tangent kernel :math:`\frac1N\sum_j \nabla_\theta\phi_j\nabla_\theta
    \phi_j^\top` has the same mean (each neuron's term is even in :math:`a_j`) and the
    same infinite-width limit. Comparing the two separates what the random initial function
    :math:`f_0` (of size :math:`O(1)` under ``"ntk"``) costs from what feature learning gains
    (Chizat, Oyallon & Bach 2019, Sec. 2).

    Parameters
    ----------
    d, width : int
        Input dimension and number of neurons (even under ``"antisymmetric"``).
    parametrization : {"ntk", "mf"}
    init : {"standard", "antisymmetric"}
    activation : {"relu", "tanh", "erf"}
    n_networks : int
    generator : int or torch.Generator
    device, dtype
        ``float64`` on the CPU by default.

    Returns
    -------
    TwoLayer

    Examples
    --------
    >>> m = init_network(3, 8, "ntk", init="antisymmetric", generator=0)
    >>> x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    >>> eps = torch.finfo(torch.float64).eps  # the pairs cancel up to rounding
    >>> bool(m(x).detach().abs().max() < 8 * 8 * eps)
    True
    """
    fn = _fn("init_network")
    d = check_int(d, "d", fn, min=1)
    width = check_int(width, "width", fn, min=1)
    check_choice(parametrization, "parametrization", fn, PARAMETRIZATIONS)
    check_choice(init, "init", fn, INITS)
    check_choice(activation, "activation", fn, ACTIVATIONS)
    n_networks = check_int(n_networks, "n_networks", fn, min=1)
    if init == "antisymmetric" and width % 2:
        fail("width", fn, "an even number (the antisymmetric initialisation pairs the "
             "neurons)", width)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    g = _generator(generator, dev, fn)
    return _init_network(d, width, activation, parametrization, n_networks, init, g, dev, dt)


def function_space_kernel(model: TwoLayer, X: Tensor) -> Tensor:
    r"""The kernel that moves the outputs in the theory's time :math:`t`, per network.

    Gradient flow in :math:`t` moves the outputs on the training set by
    :math:`\dot f = -\frac1n \Theta\,(f - y)` with
    :math:`\Theta = \lambda_N K = \lambda_N s_N^2\sum_j \nabla_\theta\phi_j\nabla_\theta
    \phi_j^\top` (``model.lr_scale * model.ntk_matrix(X)``). Both scalings have
    :math:`\lambda_N s_N^2 = 1/N`, so **for the same draw of weights the two parametrizations
    start with the same function-space kernel**; they differ at :math:`t = 0` only by the
    initial function :math:`f_0`, and later because the mean-field kernel moves by
    :math:`O(1)`.

    Parameters
    ----------
    model : TwoLayer
    X : Tensor, shape (n, d)

    Returns
    -------
    Tensor, shape (B, n, n)

    Examples
    --------
    >>> X = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    >>> Ks = [function_space_kernel(init_network(3, 16, p, generator=0), X)
    ...       for p in PARAMETRIZATIONS]
    >>> bool(torch.allclose(Ks[0], Ks[1], rtol=1e-13, atol=0))
    True
    """
    fn = _fn("function_space_kernel")
    if not isinstance(model, TwoLayer):
        fail("model", fn, "an mfteach.models.TwoLayer", model, exc=TypeError)
    check_tensor(X, "X", fn, shape=(None, model.d))
    check_same_device_dtype(fn, model=model.W, X=X)
    return model.lr_scale * model.ntk_matrix(X)
