r"""Two-layer networks in three parametrizations, batched into ensembles.

The network of the book's first chapters is

.. math::

    f(x) = s_N \sum_{j=1}^{N} a_j\, \sigma\!\Big(\frac{w_j \cdot x}{\sqrt d}\Big),
    \qquad x \in \mathbb{R}^d,

with ``width`` :math:`N` hidden neurons :math:`(a_j, w_j)`. The three parametrizations differ in
the output scale :math:`s_N` and the variance of :math:`a` at initialisation:

* ``"ntk"``: :math:`s_N = 1/\sqrt N`, :math:`a_j, w_{ji} \sim N(0, 1)`, learning-rate factor 1;
* ``"standard"``: :math:`s_N = 1`, :math:`a_j \sim N(0, 1/N)`, :math:`w_{ji} \sim N(0, 1)`,
  factor 1;
* ``"mf"`` (mean-field): :math:`s_N = 1/N`, :math:`a_j, w_{ji} \sim N(0, 1)`, factor :math:`N`
  (see :attr:`TwoLayer.lr_scale`).

``"ntk"`` and ``"standard"`` give the same function at initialisation (a Gaussian process as
:math:`N \to \infty`) but different training dynamics; ``"mf"`` (mean-field) gives an output of
size :math:`N^{-1/2}` at initialisation and neurons that move by :math:`O(1)` during training,
which is the "lazy versus mean-field" contrast of the introduction chapter.

An *ensemble* of ``n_networks`` independent networks is one module whose parameters carry a
leading batch axis: ``W`` has shape ``(B, N, d)`` and ``a`` shape ``(B, N)``, so that ``B``
networks run as one batched matmul, never as a Python loop.

References
----------
Jacot, Gabriel & Hongler (2018), "Neural Tangent Kernel", NeurIPS, arXiv:1806.07572 (NTK
parametrization, Sec. 2). Mei, Montanari & Nguyen (2018), "A mean field view of the landscape of
two-layer neural networks", PNAS, arXiv:1804.06561, Eq. (1) (the :math:`1/N` mean-field scaling).
Chizat, Oyallon & Bach (2019), "On lazy training in differentiable programming", NeurIPS,
arXiv:1812.07956 (lazy versus mean-field).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._checks import (
    check_budget,
    check_choice,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from .activations import ACTIVATIONS, get_activation
from .device import as_generator, resolve_device, resolve_dtype

__all__ = ["PARAMETRIZATIONS", "TEACHER_KINDS", "TwoLayer", "teacher_data"]

PARAMETRIZATIONS = ("ntk", "standard", "mf")
"""Names of the parametrizations of :class:`TwoLayer`."""

TEACHER_KINDS = ("single_index", "two_index", "linear")
"""Names of the synthetic regression tasks of :func:`teacher_data`."""


def _draw_generator(generator, device: torch.device, fn: str) -> torch.Generator:
    """The generator to draw with: an int seed draws on the CPU (same numbers on every device)."""
    if isinstance(generator, torch.Generator):
        if generator.device.type not in ("cpu", device.type):
            fail("generator", fn, f"a generator on the cpu or on {device.type}", generator,
                 hint=f"It lives on {generator.device}; pass an int seed instead.")
        return generator
    return as_generator(generator, "cpu", fn)


def _largest(fn: str, nbytes: float, **sizes: int) -> None:
    """``check_budget`` naming the largest of the size arguments that multiply to ``nbytes``."""
    name = max(sizes, key=lambda k: sizes[k])
    check_budget(name, fn, sizes[name], nbytes=nbytes)


class TwoLayer(nn.Module):
    r"""An ensemble of two-layer networks :math:`f(x) = s_N\sum_j a_j\sigma(w_j\cdot x/\sqrt d)`.

    Parameters
    ----------
    d : int
        Input dimension :math:`d \ge 1`.
    width : int
        Number :math:`N \ge 1` of hidden neurons.

    Other Parameters
    ----------------
    activation : str
        Name of the activation :math:`\sigma`, from :func:`mfteach.activations.get_activation`
        (``"relu"``, ``"erf"``, ``"tanh"``, ``"erf_sqrt2"``, ``"square"``, ``"linear"``).
    parametrization : {"ntk", "standard", "mf"}
        Output scale and initialisation (see the list in :mod:`mfteach.models`).
    n_networks : int
        Number :math:`B` of independent networks held as one batched module.
    generator : int or torch.Generator
        Randomness of the initialisation (required). An int seed draws on the CPU and moves the
        parameters to ``device``, so the same seed gives the same networks on every device; a
        generator draws on its own device. Network ``b`` does not depend on ``n_networks``
        (an ensemble of 8 starts with the ensemble of 4).
    device : torch.device or str, optional
        Where the parameters live (CPU by default).
    dtype : torch.dtype, optional
        Floating dtype of the parameters; ``float32`` by default (training is a performance
        path); use ``float64`` for exact comparisons.

    Attributes
    ----------
    W : nn.Parameter, shape (B, N, d)
        Input weights :math:`w_j` of each network.
    a : nn.Parameter, shape (B, N)
        Output weights :math:`a_j` of each network.
    scale : float
        The output scale :math:`s_N`.

    Raises
    ------
    TypeError, ValueError
        For a non-integer or non-positive ``d``, ``width`` or ``n_networks``, an unknown
        ``activation`` or ``parametrization``, or a bad ``generator``, ``device`` or ``dtype``;
        also for sizes whose parameters would exceed the memory limit
        (CONTRIBUTING.md, Errors: 32 GiB unless ``MFTEACH_MAX_BYTES`` says
        otherwise), naming the largest of ``d``, ``width`` and ``n_networks``.

    Notes
    -----
    Introduced in the introduction chapter ("lazy versus mean-field"), used by the finite-width
    chapter. At initialisation :math:`\mathbb{E} f(x)^2 = N s_N^2\,\mathbb{E}[a^2]\,
    \mathbb{E}[\sigma(z)^2]` with :math:`z \sim N(0, |x|^2/d)`: equal to
    :math:`\mathbb{E}[\sigma(z)^2]` under ``"ntk"`` and ``"standard"`` and to
    :math:`\mathbb{E}[\sigma(z)^2]/N` under ``"mf"``.

    Examples
    --------
    >>> model = TwoLayer(3, 100, n_networks=5, generator=0)
    >>> model.W.shape, model.a.shape
    (torch.Size([5, 100, 3]), torch.Size([5, 100]))
    >>> model(torch.ones(7, 3)).shape
    torch.Size([5, 7])
    """

    W: nn.Parameter
    a: nn.Parameter

    def __init__(self, d: int, width: int, *, activation: str = "relu",
                 parametrization: str = "ntk", n_networks: int = 1,
                 generator: int | torch.Generator, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        fn = "mfteach.models.TwoLayer"
        super().__init__()
        d = check_int(d, "d", fn, min=1)
        width = check_int(width, "width", fn, min=1)
        n_networks = check_int(n_networks, "n_networks", fn, min=1)
        dev = resolve_device(device, fn)
        dt = resolve_dtype(dtype, fn, default=torch.float32)
        self._configure(activation, parametrization, fn)
        # the draw, its copy on the device, and the gradients of training
        _largest(fn, 3.0 * n_networks * width * (d + 1) * dt.itemsize, d=d, width=width,
                 n_networks=n_networks)
        g = _draw_generator(generator, dev, fn)
        # One draw per network, row b = (W_b, a_b): network b does not depend on n_networks.
        z = torch.randn(n_networks, width * (d + 1), generator=g, device=g.device, dtype=dt)
        W = z[:, : width * d].reshape(n_networks, width, d)
        a = z[:, width * d:]
        if parametrization == "standard":
            a = a / math.sqrt(width)
        self.W = nn.Parameter(W.to(dev).contiguous())
        self.a = nn.Parameter(a.to(dev).contiguous())

    def _configure(self, activation: str, parametrization: str, fn: str) -> None:
        check_choice(parametrization, "parametrization", fn, PARAMETRIZATIONS)
        check_choice(activation, "activation", fn, ACTIVATIONS)
        act = get_activation(activation)
        self.activation = activation
        self.parametrization = parametrization
        self._act = act

    @classmethod
    def from_params(cls, W: Tensor, a: Tensor, *, activation: str = "relu",
                    parametrization: str = "ntk") -> TwoLayer:
        """Build a model holding copies of given weights.

        Parameters
        ----------
        W : Tensor, shape (B, N, d) or (N, d)
        a : Tensor, shape (B, N) or (N,)
            A single network's ``(N, d)``, ``(N,)`` pair (as returned by :meth:`params_of`)
            gives ``n_networks=1``. The model lives on their device and dtype.

        Examples
        --------
        >>> big = TwoLayer(2, 8, n_networks=3, generator=0, dtype=torch.float64)
        >>> one = TwoLayer.from_params(**big.params_of(1))
        >>> x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        >>> torch.equal(one(x)[0], big(x)[1])
        True
        """
        fn = "mfteach.models.TwoLayer.from_params"
        check_tensor(W, "W", fn, ndim=(2, 3))
        if W.ndim == 2:
            W = W.unsqueeze(0)
        B, N, _ = W.shape
        check_tensor(a, "a", fn, ndim=(1, 2))
        if a.ndim == 1:
            a = a.unsqueeze(0)
        if N < 1 or W.shape[2] < 1:
            fail("W", fn, "a tensor of shape (B, N, d) or (N, d) with N, d >= 1", W)
        if tuple(a.shape) != (B, N):
            fail("a", fn, f"a tensor of shape ({B}, {N}) matching W of shape "
                 f"{tuple(W.shape)}", a)
        check_same_device_dtype(fn, W=W, a=a)
        obj = cls.__new__(cls)
        nn.Module.__init__(obj)
        obj._configure(activation, parametrization, fn)
        obj.W = nn.Parameter(W.detach().clone().contiguous())
        obj.a = nn.Parameter(a.detach().clone().contiguous())
        return obj

    # Shapes and scales -------------------------------------------------------------------
    @property
    def d(self) -> int:
        """Input dimension :math:`d`."""
        return self.W.shape[2]

    @property
    def width(self) -> int:
        """Number of hidden neurons :math:`N`."""
        return self.W.shape[1]

    @property
    def n_networks(self) -> int:
        """Number :math:`B` of networks in the ensemble."""
        return self.W.shape[0]

    @property
    def scale(self) -> float:
        r"""Output scale :math:`s_N`: :math:`1/\sqrt N` (ntk), 1 (standard), :math:`1/N` (mf)."""
        N = self.width
        return {"ntk": 1.0 / math.sqrt(N), "standard": 1.0, "mf": 1.0 / N}[self.parametrization]

    @property
    def lr_scale(self) -> float:
        r"""Factor turning the theory's learning rate :math:`\eta` into the raw step.

        Gradient descent updates each parameter by ``lr * lr_scale * gradient``:

        * ``"ntk"`` and ``"standard"``: 1. Under ``"ntk"`` the tangent kernel
          :math:`K = \sum_p \partial_p f\,\partial_p f` is :math:`O(1)`, so the function moves
          at a width-independent rate (the lazy limit). Under ``"standard"`` the raw learning
          rate *is* the theory's; its kernel grows like :math:`N` through the output layer,
          so stable learning rates shrink like :math:`1/N`.
        * ``"mf"``: :math:`N`. Each neuron's gradient carries the output scale :math:`1/N`
          (:math:`\partial f/\partial a_j = \sigma(w_j\cdot x/\sqrt d)/N`), so a raw step of
          :math:`\eta N` moves every neuron by :math:`O(\eta)`: the particles
          :math:`(a_j, w_j)` then follow the mean-field (Wasserstein gradient-flow) dynamics
          in time :math:`t = \text{steps}\times\eta`, independently of the width.

        Examples
        --------
        >>> TwoLayer(2, 64, parametrization="mf", generator=0).lr_scale
        64.0
        """
        return float(self.width) if self.parametrization == "mf" else 1.0

    def extra_repr(self) -> str:
        return (f"d={self.d}, width={self.width}, activation={self.activation!r}, "
                f"parametrization={self.parametrization!r}, n_networks={self.n_networks}, "
                f"dtype={self.W.dtype}, device={self.W.device}")

    # Forward passes ----------------------------------------------------------------------
    def _check_x(self, x: Tensor, name: str, fn: str) -> Tensor:
        check_tensor(x, name, fn, ndim=(2, 3))
        if x.shape[-1] != self.d:
            fail(name, fn, f"a tensor whose last axis is the input dimension d={self.d}", x)
        if x.ndim == 3 and x.shape[0] != self.n_networks:
            fail(name, fn, f"a tensor of shape (n, {self.d}) or ({self.n_networks}, n, "
                 f"{self.d}) (one batch of inputs per network)", x)
        check_same_device_dtype(fn, W=self.W, **{name: x})
        return x

    def _preact(self, x: Tensor) -> Tensor:
        """Pre-activations :math:`w_j\\cdot x/\\sqrt d`, shape (B, n, N), without checks."""
        return torch.matmul(x, self.W.transpose(1, 2)) / math.sqrt(self.d)

    def _forward(self, x: Tensor) -> Tensor:
        phi = self._act.fn(self._preact(x))  # (B, n, N)
        return torch.matmul(phi, self.a.unsqueeze(-1)).squeeze(-1) * self.scale  # (B, n)

    def forward(self, x: Tensor) -> Tensor:
        r"""Outputs :math:`f_b(x_i)` of every network on every input.

        Parameters
        ----------
        x : Tensor, shape (n, d) or (B, n, d)
            Inputs shared by all networks, or one batch per network; same device and dtype
            as the parameters.

        Returns
        -------
        Tensor, shape (B, n)

        Raises
        ------
        TypeError, ValueError
            When ``x`` is not a floating tensor of a matching shape, device and dtype.
        """
        self._check_x(x, "x", "mfteach.models.TwoLayer.forward")
        return self._forward(x)

    def functional_forward(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        r"""Output of ONE network with the given parameters, for ``torch.func``.

        Parameters
        ----------
        params : dict with ``"W"`` of shape (N, d) and ``"a"`` of shape (N,)
            One network's parameters, e.g. from :meth:`params_of`.
        x : Tensor, shape (n, d)

        Returns
        -------
        Tensor, shape (n,)
            :math:`s_N\sum_j a_j\sigma(w_j\cdot x_i/\sqrt d)`, with this model's activation
            and parametrization (the scale uses ``N = params["W"].shape[0]``).

        Notes
        -----
        A pure function of ``params`` (shapes are checked, values are not, so that it runs
        under ``torch.func`` transforms). Used with :func:`mfteach.kernels.empirical_ntk`.

        Examples
        --------
        >>> model = TwoLayer(2, 16, n_networks=2, generator=0, dtype=torch.float64)
        >>> x = torch.ones(3, 2, dtype=torch.float64)
        >>> torch.allclose(model.functional_forward(model.params_of(1), x), model(x)[1])
        True
        """
        fn = "mfteach.models.TwoLayer.functional_forward"
        if not isinstance(params, dict) or not {"W", "a"} <= set(params):
            fail("params", fn, "a dict with keys 'W' (N, d) and 'a' (N,)", params,
                 exc=TypeError)
        W, a = params["W"], params["a"]
        if not (isinstance(W, torch.Tensor) and isinstance(a, torch.Tensor)):
            fail("params", fn, "a dict of tensors 'W' (N, d) and 'a' (N,)",
                 {k: type(v).__name__ for k, v in params.items()}, exc=TypeError)
        if W.ndim != 2 or W.shape[1] != self.d or a.ndim != 1 or a.shape[0] != W.shape[0]:
            fail("params", fn, f"a dict with 'W' of shape (N, {self.d}) and 'a' of shape (N,)",
                 {k: tuple(v.shape) for k, v in params.items()})
        # Values are checked only outside torch.func transforms (no data-dependent branch there).
        plain = not (isinstance(x, torch.Tensor)
                     and torch._C._functorch.is_functorch_wrapped_tensor(x))
        check_tensor(x, "x", fn, shape=(None, self.d), finite=plain)
        N = W.shape[0]
        scale = {"ntk": 1.0 / math.sqrt(N), "standard": 1.0, "mf": 1.0 / N}[self.parametrization]
        phi = self._act.fn(x @ W.T / math.sqrt(self.d))  # (n, N)
        return (phi @ a) * scale

    def params_of(self, b: int) -> dict[str, Tensor]:
        """Network ``b``'s parameters ``{"W": (N, d), "a": (N,)}``, detached copies."""
        b = check_int(b, "b", "mfteach.models.TwoLayer.params_of", min=0,
                      max=self.n_networks - 1)
        return {"W": self.W[b].detach().clone(), "a": self.a[b].detach().clone()}

    # Tangent kernel ----------------------------------------------------------------------
    def ntk_matrix(self, x1: Tensor, x2: Tensor | None = None, *,
                   wrt: tuple[str, ...] = ("W", "a")) -> Tensor:
        r"""Empirical neural tangent kernel of every network, in closed form.

        .. math::

            K(x, x') = \sum_p \partial_p f(x)\,\partial_p f(x') = s_N^2 \sum_{j=1}^N \Big[
            \sigma(h_j)\sigma(h_j') + \frac{x\cdot x'}{d}\, a_j^2\, \sigma'(h_j)\sigma'(h_j')
            \Big],\qquad h_j = \frac{w_j\cdot x}{\sqrt d},

        the first term from the output weights :math:`a`, the second from the input weights
        :math:`W`. It is the kernel of the raw parameters: gradient descent on
        :math:`L = \frac1{2n}\sum_i (f(x_i) - y_i)^2` moves the outputs by
        :math:`-\eta\,\text{lr\_scale}\,K (f - y)/n` per step to first order.

        Parameters
        ----------
        x1 : Tensor, shape (n1, d) or (B, n1, d)
        x2 : Tensor, shape (n2, d) or (B, n2, d), optional
            Defaults to ``x1``.
        wrt : tuple of str, keyword-only
            The parameters differentiated: both by default; ``("a",)`` gives the
            random-features kernel (first term), ``("W",)`` the second term.

        Returns
        -------
        Tensor, shape (B, n1, n2)
            Detached (the kernel is a diagnostic, not part of a training graph).

        Notes
        -----
        Introduced in the introduction chapter, where its relative change during training
        separates the lazy (``"ntk"``) from the mean-field (``"mf"``) regime. Checked against
        the autograd Jacobian (:func:`mfteach.kernels.empirical_ntk`) in the tests.

        Examples
        --------
        >>> model = TwoLayer(3, 50, n_networks=2, generator=0, dtype=torch.float64)
        >>> K = model.ntk_matrix(torch.eye(3, dtype=torch.float64))
        >>> K.shape, bool(torch.allclose(K, K.transpose(1, 2)))
        (torch.Size([2, 3, 3]), True)
        """
        fn = "mfteach.models.TwoLayer.ntk_matrix"
        if not isinstance(wrt, (tuple, list)) or not wrt or not set(wrt) <= {"W", "a"}:
            fail("wrt", fn, "a non-empty tuple of parameter names from ('W', 'a')", wrt)
        self._check_x(x1, "x1", fn)
        if x2 is None:
            x2 = x1
        else:
            self._check_x(x2, "x2", fn)
        n1, n2 = x1.shape[-2], x2.shape[-2]
        B, N = self.n_networks, self.width
        # the kernel and its two terms, and the pre-activations with their derivatives
        check_budget("x1", fn, x1, nbytes=self.W.dtype.itemsize * B * (
            3.0 * n1 * n2 + 3.0 * (n1 + n2) * N))
        with torch.no_grad():
            h1, h2 = self._preact(x1), self._preact(x2)  # (B, n1, N), (B, n2, N)
            K = torch.zeros(h1.shape[0], h1.shape[1], h2.shape[1], dtype=h1.dtype,
                            device=h1.device)
            if "a" in wrt:
                K += torch.matmul(self._act.fn(h1), self._act.fn(h2).transpose(1, 2))
            if "W" in wrt:
                d1 = self._act.deriv(h1) * self.a.unsqueeze(1)  # (B, n1, N)
                d2 = self._act.deriv(h2) * self.a.unsqueeze(1)
                K += torch.matmul(d1, d2.transpose(1, 2)) * (
                    torch.matmul(x1, x2.transpose(-1, -2)) / self.d)
            return K * self.scale**2


def teacher_data(n: int, d: int, *, kind: str = "single_index", noise: float = 0.0,
                 generator: int | torch.Generator, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    r"""A small synthetic regression task: Gaussian inputs, labels from a fixed teacher.

    Inputs :math:`x_i \sim N(0, I_d)`; labels :math:`y_i = g(x_i) + \text{noise}\,\xi_i`,
    :math:`\xi_i \sim N(0, 1)`, with the teacher :math:`g` chosen by ``kind``:

    * ``"single_index"``: :math:`g(x) = \tanh(2 x_1)` (one relevant direction
      :math:`e_1`);
    * ``"two_index"``: :math:`g(x) = \mathrm{relu}(x_1) - \mathrm{relu}(x_2)` (two relevant
      directions, ``d >= 2``); in a 2-D input space the student's neurons gather along
      :math:`+e_1` and :math:`+e_2` in the mean-field regime;
    * ``"linear"``: :math:`g(x) = x_1`.

    The teacher directions are the first coordinate axes, so the task is the same for every
    seed; only the sample changes.

    Parameters
    ----------
    n, d : int
        Number of samples and input dimension (``d = 2`` for the particle pictures).
    kind : {"single_index", "two_index", "linear"}
    noise : float
        Standard deviation of the additive label noise (0 by default).
    generator : int or torch.Generator
        Randomness of the sample. An int seed draws on the CPU (the same data on every
        device); a generator draws on its own device.
    device, dtype
        Where the data live; ``float32`` by default, like :class:`TwoLayer`.

    Returns
    -------
    X : Tensor, shape (n, d)
    y : Tensor, shape (n,)

    Raises
    ------
    TypeError, ValueError
        For bad ``n``, ``d`` (``d >= 2`` for ``"two_index"``), ``kind`` or ``noise`` (at most
        ``finfo(dtype).max / 1000`` so that the labels stay finite), or sizes beyond the memory
        limit.

    Notes
    -----
    Used by the introduction chapter's lazy-versus-mean-field experiments.

    Examples
    --------
    >>> X, y = teacher_data(5, 2, generator=0)
    >>> X.shape, y.shape
    (torch.Size([5, 2]), torch.Size([5]))
    >>> bool(torch.allclose(y, torch.tanh(2 * X[:, 0])))
    True
    """
    fn = "mfteach.models.teacher_data"
    n = check_int(n, "n", fn, min=1)
    d = check_int(d, "d", fn, min=1)
    check_choice(kind, "kind", fn, TEACHER_KINDS)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn, default=torch.float32)
    # |xi| < 40 for every standard normal draw a float can hold: labels stay finite in dt.
    noise = check_float(noise, "noise", fn, min=0.0, max=float(torch.finfo(dt).max) / 1e3)
    if kind == "two_index" and d < 2:
        fail("d", fn, "an int >= 2 for kind='two_index'", d)
    _largest(fn, 3.0 * n * (d + 1) * dt.itemsize, n=n, d=d)
    g = _draw_generator(generator, dev, fn)
    X = torch.randn(n, d, generator=g, device=g.device, dtype=dt)
    if kind == "single_index":
        y = torch.tanh(2 * X[:, 0])
    elif kind == "two_index":
        y = torch.relu(X[:, 0]) - torch.relu(X[:, 1])
    else:
        y = X[:, 0].clone()
    if noise > 0:
        y = y + noise * torch.randn(n, generator=g, device=g.device, dtype=dt)
    return X.to(dev), y.to(dev)
