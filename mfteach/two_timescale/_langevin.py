r"""Mean-field Langevin dynamics of the first layer, with the second layer solved at every step.

The continuous dynamics :math:`dw_t = -\nabla_w\frac{\delta G}{\delta\mu}(\mu_t)(w_t)\,dt +
\sqrt{2\lambda}\,dB_t` minimise :math:`G(\mu) + \lambda\,\mathrm{Ent}(\mu)`; the same
:math:`\lambda` multiplies the regulariser (:math:`\bar\lambda_a = \lambda\lambda_a`,
:math:`\bar\lambda_w = \lambda\lambda_w`) and sets the temperature, so that the objective is
:math:`U(\mu) + \lambda\,\mathrm{KL}(\mu\,\|\,\nu) + \text{const}` with the prior
:math:`\nu = N(0, I/\lambda_w)` (Takakura & Suzuki 2024, §2.3 and Thm 3.1). With :math:`N`
particles and step :math:`\eta` (their discrete scheme, Thm 3.7):

.. math::

    w_i \leftarrow w_i + \eta\big(\bar\lambda_a\,a_\mu(w_i)\nabla_w a_\mu(w_i)
    - \bar\lambda_w w_i\big) + \sqrt{2\eta\lambda}\,\xi_i, \qquad \xi_i \sim N(0, I),

since :math:`-\nabla_w\frac{\delta G}{\delta\mu}(w) = \bar\lambda_a a_\mu(w)\nabla_w a_\mu(w) -
\bar\lambda_w w` with :math:`a_\mu(w) = h(X; w)^\top R_\mu Y` (:math:`R_\mu` held fixed).
Time is reported in the paper's units, :math:`t = k\eta`. :func:`train` can decouple the
temperature from the regulariser: with ``temperature`` :math:`\tau` the noise is
:math:`\sqrt{2\eta\tau}\,\xi` and the dynamics minimise :math:`G + \tau\,\mathrm{Ent}`
(the paper's choice is :math:`\tau = \lambda`; :math:`\tau = 0` is gradient flow).

Label noise (§5.2, Thm 5.5). At every step a fresh :math:`\tilde\varepsilon \sim
\mathrm{Unif}([-\tilde\sigma, \tilde\sigma]^n)` is drawn, the second layer is fitted on the noisy
labels, :math:`\tilde a(w) = h(X; w)^\top R_\mu(Y + \tilde\varepsilon)`, and the first layer
follows the gradient of the objective with the *clean* labels,
:math:`J(\mu; \tilde\varepsilon) = \frac1{2n}\sum_j (f(x_j; \tilde a_\mu, \mu) - y_j)^2 +
\frac{\bar\lambda_a}{2}\|\tilde a_\mu\|^2_{L^2(\mu)}`, differentiated through
:math:`\tilde a_\mu` (as autograd would). Our derivation: :math:`J = \text{const} -
\bar\lambda_a\tilde\varepsilon^\top R_\mu(Y + \tilde\varepsilon) + \frac{\bar\lambda_a}{2}(Y +
\tilde\varepsilon)^\top R_\mu(Y + \tilde\varepsilon)`, whose first variation gives the drift

.. math::

    -\nabla_w\frac{\delta J}{\delta\mu}(w) = \bar\lambda_a\big(a_\mu(w)\nabla\tilde a(w)
    - \tilde a(w)\nabla\tilde e(w)\big) - \bar\lambda_w w, \qquad
    \tilde e(w) = h(X; w)^\top R_\mu\tilde\varepsilon,

and, exactly, :math:`\mathbb{E}_{\tilde\varepsilon}J = U(\mu) + \frac{\tilde\sigma^2}{6n}
d_{\bar\lambda_a}(\mu)`: in expectation the procedure is MFLD on
:math:`G + \lambda\,\mathrm{Ent} + \frac{\tilde\sigma^2}{6n}d_{\bar\lambda_a}`, a penalty on
the degrees of freedom (checked by Monte Carlo in
:func:`mfteach.two_timescale.label_noise_identity`). ``dof_penalty`` adds the exact gradient
of :math:`c\,d_{\bar\lambda_a}(\mu)` instead, using
:math:`\frac{\delta d_{\bar\lambda_a}}{\delta\mu}(w) = n\bar\lambda_a\,h(X; w)^\top R_\mu^2
h(X; w)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import (
    check_bool,
    check_budget,
    check_choice,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from ..device import as_generator
from ..training import DivergenceError
from ._model import (
    METHODS,
    _check_vec,
    _check_XW,
    _features,
    _kernel_alignment,
    _parameter_alignment,
    _Solver,
)

__all__ = ["History", "langevin_drift", "langevin_step", "train"]


@dataclass(frozen=True)
class History:
    r"""What :func:`train` records at steps ``step`` (times :attr:`t` in the paper's units).

    Attributes
    ----------
    eta, lam, lambda_a, lambda_w, label_noise, dof_penalty : float
        The constants of the run.
    temperature : float
        The Langevin temperature :math:`\tau` of the noise :math:`\sqrt{2\eta\tau}\,\xi`
        (equal to ``lam`` unless :func:`train` was given another one).
    n_particles, n_train : int
    step : Tensor, shape (T,), int64
    U : Tensor, shape (T, B)
        :math:`U(\mu_t)` with the training labels.
    G : Tensor, shape (T, B)
        :math:`G(\mu_t) = U + \frac{\bar\lambda_w}{2}\mathbb{E}_{\mu_t}\|w\|^2` (the free energy
        adds :math:`\lambda\,\mathrm{Ent}`, not computable from particles).
    dof : Tensor, shape (T, B)
        :math:`d_{\bar\lambda_a}(\mu_t)`.
    alignment : Tensor, shape (T, B)
        :math:`\hat A(\mu_t)` with the clean target values.
    param_alignment : Tensor, shape (T, B) or None
        :math:`P(\mu_t)` when ``directions`` were given.
    test_loss : Tensor, shape (T, B) or None
        :math:`\frac12\,\mathrm{mean}(f(x; a_{\mu_t}, \mu_t) - f^\circ(x))^2` on the test set.
    particles : Tensor, shape (T, B, N, d') or None
        Snapshots, when ``store_particles=True``.
    W0, W : Tensor, shape (B, N, d')
        Initial and final particles.
    bias : bool
    n_chains : int
        Independent chains per data set along the batch axis (entry ``r * n_chains + c``
        is chain ``c`` of data set ``r``; 1 unless set by
        :func:`mfteach.two_timescale.run`).
    """

    eta: float
    lam: float
    temperature: float
    lambda_a: float
    lambda_w: float
    label_noise: float
    dof_penalty: float
    n_particles: int
    n_train: int
    step: Tensor
    U: Tensor
    G: Tensor
    dof: Tensor
    alignment: Tensor
    param_alignment: Tensor | None
    test_loss: Tensor | None
    particles: Tensor | None
    W0: Tensor
    W: Tensor
    bias: bool
    n_chains: int = 1

    @property
    def t(self) -> Tensor:
        """Recorded times :math:`t = k\\eta` (float64), shape (T,)."""
        return self.step.to(torch.float64) * self.eta


def _grad_coeffs(X: Tensor, W: Tensor, D: Tensor, Q: Tensor, bias: bool) -> Tensor:
    """sum_j Q_ji D_ji grad_w (u.x_j + b) for every particle i: (B, N, d')."""
    QD = Q * D  # (B, n, N)
    gu = QD.mT @ X  # (B, N, d)
    if bias:
        return torch.cat([gu, QD.sum(-2).unsqueeze(-1)], -1)
    return gu


def _drift(X: Tensor, Y: Tensor, W: Tensor, eps: Tensor | None, lam: float, lambda_a: float,
           lambda_w: float, bias: bool, dof_penalty: float, method: str):
    """-grad of the first variation at every particle, and the clean ridge. No validation."""
    lab = lam * lambda_a
    H = _features(X, W, bias)  # (B, n, N)
    D = 1 - H.square()  # tanh'
    s = _Solver(H, lab, None, method)
    rhs = Y.unsqueeze(-1) if eps is None else torch.stack([Y, eps], -1)
    coef = s.apply(rhs)  # (B, n, 1 or 2): R Y, R eps
    c = coef[..., 0]
    a = (H.mT @ c.unsqueeze(-1))[..., 0]  # a_mu(w_i), clean labels, (B, N)
    if eps is None:
        Q = c.unsqueeze(-1) * a.unsqueeze(-2)  # c_j a_i
    else:
        e = coef[..., 1]
        ct = c + e  # R (Y + eps)
        at = (H.mT @ ct.unsqueeze(-1))[..., 0]
        Q = ct.unsqueeze(-1) * a.unsqueeze(-2) - e.unsqueeze(-1) * at.unsqueeze(-2)
    Q = lab * Q
    if dof_penalty:
        R2H = s.apply(s.apply(H))  # R^2 h(X; w_i) per column
        Q = Q - 2 * dof_penalty * s.beta * R2H
    drift = _grad_coeffs(X, W, D, Q, bias) - lam * lambda_w * W
    U = 0.5 * lab * (Y * c).sum(-1)
    return drift, H, s, c, U


def langevin_drift(X: Tensor, y: Tensor, W: Tensor, *, lam: float = 0.004,
                   lambda_a: float = 0.25, lambda_w: float = 0.25, bias: bool = True,
                   label_noise: Tensor | None = None, dof_penalty: float = 0.0,
                   method: str = "auto") -> Tensor:
    r"""The drift :math:`-\nabla_w\frac{\delta G}{\delta\mu}(\mu_W)(w_i)` of every particle
    (the discrete particle update of Takakura & Suzuki 2024, Thm 3.7), optionally for the
    label-noise objective or with a degrees-of-freedom penalty.

    Parameters
    ----------
    X : Tensor, shape (n, d) or (B, n, d)
    y : Tensor, shape (n,) or (B, n)
        The (clean) training labels :math:`Y`.
    W : Tensor, shape (N, d + bias) or (B, N, d + bias)
    lam, lambda_a, lambda_w : float
        :math:`\lambda`, :math:`\lambda_a`, :math:`\lambda_w` (all positive).
    bias : bool
    label_noise : Tensor, shape (n,) or (B, n), optional
        A draw :math:`\tilde\varepsilon`: the second layer is fitted on ``y + label_noise``
        and the gradient is that of the clean-label objective :math:`J(\mu; \tilde
        \varepsilon)` (module docstring).
    dof_penalty : float
        :math:`c \ge 0`: add the exact drift of :math:`c\,d_{\bar\lambda_a}(\mu)`.
    method : {"auto", "samples", "particles"}

    Returns
    -------
    Tensor, shape (B, N, d + bias)

    Notes
    -----
    The particle gradient of the objective is :math:`\partial G(\mu_W)/\partial w_i =
    -\mathrm{drift}_i/N`: the :math:`N`-particle system is a Langevin diffusion with
    potential :math:`N\,G(\mu_W)/\lambda`.

    Examples
    --------
    >>> from mfteach.two_timescale import make_data, init_particles
    >>> data = make_data(20, 3, generator=0)
    >>> langevin_drift(data.X, data.y, init_particles(3, 10, generator=1)).shape
    torch.Size([1, 10, 4])
    """
    fn = "mfteach.two_timescale.langevin_drift"
    Xb, Wb = _check_XW(X, W, bias, fn)
    B, n, N = Xb.shape[0], Xb.shape[1], Wb.shape[1]
    yb = _check_vec(y, "y", B, n, Wb, fn)
    eps = None if label_noise is None else _check_vec(label_noise, "label_noise", B, n, Wb,
                                                      fn)
    lam, lambda_a, lambda_w = _check_constants(lam, lambda_a, lambda_w, fn)
    dof_penalty = check_float(dof_penalty, "dof_penalty", fn, min=0.0)
    check_choice(method, "method", fn, METHODS)
    m = min(n, N)
    check_budget("W" if N >= n else "X", fn, W if N >= n else X,
                 nbytes=Xb.dtype.itemsize * B * (6.0 * n * N + 3.0 * m * m))
    return _drift(Xb, yb, Wb, eps, lam, lambda_a, lambda_w, bias, dof_penalty, method)[0]


def _check_constants(lam, lambda_a, lambda_w, fn):
    lam = check_float(lam, "lam", fn, min=0.0, min_open=True)
    lambda_a = check_float(lambda_a, "lambda_a", fn, min=0.0, min_open=True)
    lambda_w = check_float(lambda_w, "lambda_w", fn, min=0.0, min_open=True)
    return lam, lambda_a, lambda_w


def langevin_step(W: Tensor, drift: Tensor, noise: Tensor, *, eta: float,
                  lam: float) -> Tensor:
    r"""One Euler-Maruyama step :math:`w \leftarrow w + \eta\,\mathrm{drift} +
    \sqrt{2\eta\lambda}\,\xi` (Takakura & Suzuki 2024, Thm 3.7's discrete scheme).

    Parameters
    ----------
    W, drift, noise : Tensor, same shape
        Particles, their drift (:func:`langevin_drift`) and a standard Gaussian draw.
    eta : float
        Step size :math:`\eta > 0`.
    lam : float
        Temperature :math:`\lambda > 0`.

    Returns
    -------
    Tensor
        The new particles.

    Examples
    --------
    >>> W = torch.zeros(2, 3, dtype=torch.float64)
    >>> langevin_step(W, torch.ones_like(W), torch.zeros_like(W), eta=0.5, lam=0.1)[0].tolist()
    [0.5, 0.5, 0.5]
    """
    fn = "mfteach.two_timescale.langevin_step"
    check_tensor(W, "W", fn, ndim=(2, 3))
    check_tensor(drift, "drift", fn)
    check_tensor(noise, "noise", fn)
    check_same_device_dtype(fn, W=W, drift=drift, noise=noise)
    if drift.shape != W.shape:
        fail("drift", fn, f"a tensor of the shape of 'W' {tuple(W.shape)}", drift)
    if noise.shape != W.shape:
        fail("noise", fn, f"a tensor of the shape of 'W' {tuple(W.shape)}", noise)
    eta = check_float(eta, "eta", fn, min=0.0, min_open=True)
    lam = check_float(lam, "lam", fn, min=0.0, min_open=True)
    return W + eta * drift + math.sqrt(2 * eta * lam) * noise


def train(X: Tensor, y: Tensor, W: Tensor, *, lam: float = 0.004, lambda_a: float = 0.25,
          lambda_w: float = 0.25, eta: float = 0.2, steps: int = 200, bias: bool = True,
          f: Tensor | None = None, label_noise: float = 0.0, dof_penalty: float = 0.0,
          X_test: Tensor | None = None, f_test: Tensor | None = None,
          directions: Tensor | None = None, record_every: int = 10,
          store_particles: bool = False, divergence_factor: float = 1e3,
          method: str = "auto", temperature: float | None = None,
          generator: int | torch.Generator, progress: bool = False) -> History:
    r"""Run mean-field Langevin dynamics (the discrete particle update of Takakura & Suzuki
    2024, Thm 3.7) of ``B`` independent particle
    systems and record :math:`U`, :math:`G`, :math:`d_{\bar\lambda_a}`, :math:`\hat A`,
    :math:`P` and the test loss.

    Parameters
    ----------
    X : Tensor, shape (n, d) or (B, n, d)
    y : Tensor, shape (n,) or (B, n)
        Training labels (possibly with intrinsic noise).
    W : Tensor, shape (N, d + bias) or (B, N, d + bias)
        Initial particles (:func:`mfteach.two_timescale.init_particles`); not modified.
    lam, lambda_a, lambda_w : float
        :math:`\lambda` (regulariser multiplier and, unless ``temperature`` is given, the
        temperature), :math:`\lambda_a`, :math:`\lambda_w`. The paper's §6: 0.004, 0.25,
        0.25.
    eta : float
        Step size (the paper's 0.2); time is :math:`t = k\eta`.
    steps : int
        Number of steps (the paper's 10 000).

    Other Parameters
    ----------------
    bias : bool
    f : Tensor, shape (n,) or (B, n), optional
        Clean target values for the alignment (default ``y``).
    label_noise : float
        :math:`\tilde\sigma \ge 0`: the paper's label-noise procedure (module docstring),
        fresh noise at every step.
    dof_penalty : float
        Add the exact gradient of ``dof_penalty`` :math:`\cdot\,d_{\bar\lambda_a}(\mu)`.
    X_test, f_test : Tensor, shapes (P, d) or (B, P, d) and (P,) or (B, P), optional
        Test inputs and clean target values.
    directions : Tensor, shape (k, d), optional
        Relevant directions for :math:`P(\mu)` (:func:`relevant_directions`).
    record_every : int
        Record every ``record_every`` steps (and the last).
    store_particles : bool
        Keep the particles at the recorded steps.
    divergence_factor : float
        Stop with :class:`mfteach.training.DivergenceError` when :math:`G` is NaN/inf or
        exceeds ``divergence_factor`` times its initial value.
    method : {"auto", "samples", "particles"}
        Which Gram to factor at every step.
    temperature : float, optional
        The Langevin temperature :math:`\tau \ge 0`: the noise is
        :math:`\sqrt{2\eta\tau}\,\xi`. ``None`` (the default) is the paper's choice
        :math:`\tau = \lambda` (then the run is that of ``temperature=lam``, to the bit),
        which makes the dynamics minimise :math:`G + \lambda\,\mathrm{Ent}`; another
        :math:`\tau` minimises :math:`G + \tau\,\mathrm{Ent}` (the regulariser keeps
        :math:`\lambda`). ``0`` is noise-free gradient flow (deterministic: no noise is
        drawn; with ``label_noise > 0`` only the label noise is random).
    generator : int or torch.Generator
        The Langevin noise (and the label noise), drawn on the particles' device.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    History

    Raises
    ------
    DivergenceError
        When the objective blows up (step size too large for the drift).
    TypeError, ValueError
        For bad arguments (one line naming the argument).

    Examples
    --------
    >>> from mfteach.two_timescale import make_data, init_particles
    >>> data = make_data(40, 3, n_sets=2, generator=0)
    >>> W = init_particles(3, 30, n_runs=2, generator=1)
    >>> h = train(data.X, data.y, W, lam=0.02, eta=0.5, steps=20, record_every=10,
    ...           generator=2)
    >>> h.step.tolist(), tuple(h.U.shape)
    ([0, 10, 20], (3, 2))
    """
    fn = "mfteach.two_timescale.train"
    Xb, Wb = _check_XW(X, W, bias, fn)
    B, n, N = Xb.shape[0], Xb.shape[1], Wb.shape[1]
    yb = _check_vec(y, "y", B, n, Wb, fn)
    fb = yb if f is None else _check_vec(f, "f", B, n, Wb, fn)
    if not bool((fb.square().sum(-1) > 0).all()):
        fail("f" if f is not None else "y", fn, "not identically zero (the alignment divides "
             "by its norm)", fb)
    lam, lambda_a, lambda_w = _check_constants(lam, lambda_a, lambda_w, fn)
    eta = check_float(eta, "eta", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=0)
    label_noise = check_float(label_noise, "label_noise", fn, min=0.0)
    dof_penalty = check_float(dof_penalty, "dof_penalty", fn, min=0.0)
    record_every = check_int(record_every, "record_every", fn, min=1, max=10**9)
    check_bool(store_particles, "store_particles", fn)
    divergence_factor = check_float(divergence_factor, "divergence_factor", fn, min=1.0,
                                    min_open=True)
    check_choice(method, "method", fn, METHODS)
    tau = lam if temperature is None else check_float(temperature, "temperature", fn,
                                                      min=0.0)
    check_bool(progress, "progress", fn)
    if (X_test is None) != (f_test is None):
        fail("f_test", fn, "given together with X_test (both or neither)", f_test,
             exc=TypeError)
    Xt = ft = None
    if X_test is not None:
        Xt, _ = _check_XW(X_test, Wb, bias, fn, "X_test")
        ft = _check_vec(f_test, "f_test", B, Xt.shape[1], Wb, fn)
    if directions is not None:
        check_tensor(directions, "directions", fn, ndim=2)
        check_same_device_dtype(fn, W=Wb, directions=directions)
        if directions.shape[-1] != Xb.shape[-1] or directions.shape[0] < 1:
            fail("directions", fn, f"a tensor of shape (k, {Xb.shape[-1]}) with k >= 1",
                 directions)
    T = steps // record_every + 2
    P = 0 if Xt is None else Xt.shape[1]
    m = min(n, N)
    sizes = {"W": N, "X": n, "X_test": P}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, {"W": W, "X": X, "X_test": X_test}[big],
                 nbytes=Xb.dtype.itemsize * B * (
                     8.0 * n * N + 4.0 * m * m + 2.0 * P * N
                     + (T * N * Wb.shape[-1] if store_particles else 0.0)))
    check_budget("steps", fn, steps, steps=steps)
    g = as_generator(generator, Wb.device, fn)
    law = lam * lambda_w
    noise_scale = math.sqrt(2 * eta * tau)

    W0 = Wb.clone()
    Wc = Wb.clone()
    rec: dict[str, list[Tensor]] = {k: [] for k in ("U", "G", "dof", "A", "P", "test", "W")}
    rec_steps: list[int] = []
    G0 = limit = None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"MFLD (N={N}, n={n}, eta={eta:g}, lambda={lam:g}, "
                                     f"tau={tau:g})")
    try:
        for k in range(steps + 1):
            eps = None
            if label_noise > 0 and k < steps:
                eps = (2 * torch.rand(B, n, generator=g, device=Wc.device, dtype=Wc.dtype)
                       - 1) * label_noise
            try:
                drift, H, s, c, U = _drift(Xb, yb, Wc, eps, lam, lambda_a, lambda_w, bias,
                                           dof_penalty, method)
            except torch.linalg.LinAlgError:
                U = torch.full((B,), math.nan, dtype=Wc.dtype, device=Wc.device)
            G = U + 0.5 * law * Wc.square().sum(-1).mean(-1)
            if G0 is None:
                G0 = G
                limit = divergence_factor * G0.abs().clamp_min(torch.finfo(G.dtype).tiny)
            bad = ~torch.isfinite(G) | (G > limit)
            if bool(bad.any()):
                b = int(torch.nonzero(bad)[0, 0])
                raise DivergenceError(
                    f"Langevin dynamics diverged at step {k} (t = {k * eta:.4g}) for run {b}: "
                    f"G = {float(G[b]):.4g} from {float(G0[b]):.4g}. The step eta={eta:g} "
                    f"(lam={lam:g}, temperature {tau:g}) is too large; try "
                    f"eta={eta / 10:g}.")
            if k % record_every == 0 or k == steps:
                rec_steps.append(k)
                rec["U"].append(U)
                rec["G"].append(G)
                rec["dof"].append(s.dof())
                rec["A"].append(_kernel_alignment(H, fb, None))
                if directions is not None:
                    rec["P"].append(_parameter_alignment(Wc, directions, bias, None))
                if Xt is not None:
                    a = (H.mT @ c.unsqueeze(-1))[..., 0]  # (B, N)
                    pred = (_features(Xt, Wc, bias) @ a.unsqueeze(-1))[..., 0] / N
                    rec["test"].append(0.5 * (pred - ft).square().mean(-1))
                if store_particles:
                    rec["W"].append(Wc.clone())
            if k == steps:
                break
            if tau > 0:
                xi = torch.randn(Wc.shape, generator=g, device=Wc.device, dtype=Wc.dtype)
                Wc = Wc + eta * drift + noise_scale * xi
            else:  # gradient flow: nothing is drawn, the run is deterministic
                Wc = Wc + eta * drift
            if bar is not None:
                bar.update(1)
                if k % record_every == 0:
                    bar.set_postfix(U=f"{float(U.mean()):.3g}")
    finally:
        if bar is not None:
            bar.close()

    def stack(key: str) -> Tensor | None:
        return torch.stack(rec[key]) if rec[key] else None

    return History(eta=eta, lam=lam, temperature=tau, lambda_a=lambda_a, lambda_w=lambda_w,
                   label_noise=label_noise, dof_penalty=dof_penalty, n_particles=N,
                   n_train=n, step=torch.tensor(rec_steps, dtype=torch.long,
                                                device=Wc.device),
                   U=stack("U"), G=stack("G"), dof=stack("dof"), alignment=stack("A"),
                   param_alignment=stack("P"), test_loss=stack("test"),
                   particles=stack("W"), W0=W0, W=Wc, bias=bias)
