r"""Gradient-descent training of :class:`~mfteach.models.TwoLayer` ensembles.

Every network :math:`b` of an ensemble minimises its own squared loss

.. math::

    L_b(\theta_b) = \frac{1}{2n}\sum_{i=1}^{n} \big(f_b(x_i) - y_{b,i}\big)^2

by plain (full-batch or minibatch) gradient descent,
:math:`\theta_b \leftarrow \theta_b - \eta\,\text{lr\_scale}\,\nabla L_b`, where :math:`\eta` is
the learning rate *in the theory's units* and ``model.lr_scale`` converts it to the raw step
(:math:`N` under the mean-field parametrization, 1 otherwise). The networks are independent, so
one backward pass through :math:`\sum_b L_b` gives every network its own gradient: the ensemble
trains as one batched program.

The update rule shown in the book is :func:`gd_step`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ._checks import (
    check_bool,
    check_budget,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from .device import as_generator
from .models import TwoLayer

__all__ = [
    "DivergenceError",
    "History",
    "gd_step",
    "max_stable_lr",
    "ntk_min_eigenvalue",
    "relative_change",
    "relative_ntk_change",
    "snapshot",
    "train",
]


class DivergenceError(RuntimeError):
    """Raised by :func:`train` when the loss becomes NaN/inf or grows far above its start."""


@dataclass(frozen=True)
class History:
    r"""What :func:`train` records.

    Attributes
    ----------
    step : Tensor, shape (T,), int64
        The recorded steps (0, every ``record_every``-th step, and the last).
    loss : Tensor, shape (T, B)
        :math:`L_b` of each network at those steps (before that step's update).
    diagnostics : dict[str, Tensor]
        Each diagnostic's values, shape (T, B, ...).
    lr : float
        Learning rate :math:`\eta` in the theory's units.
    raw_lr : float
        The raw step ``lr * model.lr_scale``.
    """

    step: Tensor
    loss: Tensor
    diagnostics: dict[str, Tensor] = field(default_factory=dict)
    lr: float = float("nan")
    raw_lr: float = float("nan")

    @property
    def t(self) -> Tensor:
        r"""Time in the theory's units, :math:`t = \text{step}\times\eta` (float64)."""
        return self.step.to(torch.float64) * self.lr


def _loss_per_network(model: TwoLayer, X: Tensor, y: Tensor) -> Tensor:
    """L_b = 0.5 * mean_i (f_b(x_i) - y_bi)^2, shape (B,)."""
    return 0.5 * (model._forward(X) - y).square().mean(-1)


def _loss_and_grads(model: TwoLayer, X: Tensor, y: Tensor) -> tuple[Tensor, list, tuple]:
    """Per-network losses (B,), the trainable parameters, and their gradients of sum_b L_b."""
    params = [p for p in (model.W, model.a) if p.requires_grad]
    with torch.enable_grad():
        loss = _loss_per_network(model, X, y)  # (B,)
        grads = torch.autograd.grad(loss.sum(), params)
    return loss.detach(), params, grads


def _apply(params: list, grads: tuple, raw_lr: float) -> None:
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.add_(g, alpha=-raw_lr)


def _check_lr(lr, fn: str, dtype: torch.dtype, lr_scale: float = 1.0,
              name: str = "lr") -> float:
    """``lr > 0`` finite, with a raw step ``lr * lr_scale`` representable in ``dtype``.

    A raw step above ``finfo(dtype).max`` cannot even be applied (torch refuses to convert
    it), and one below ``finfo(dtype).tiny`` rounds the update to nothing: both are refused
    here with the caller's parameter name.
    """
    lr = check_float(lr, name, fn, min=0.0, min_open=True)
    fi = torch.finfo(dtype)
    raw = lr * lr_scale
    if not fi.tiny <= raw <= fi.max:
        scale = f" * lr_scale ({lr_scale:g})" if lr_scale != 1 else ""
        fail(name, fn, f"such that the raw step lr{scale} is representable in {dtype} "
             f"(between {fi.tiny:.3g} and {fi.max:.3g})", lr)
    return lr


def _check_data(model, X, y, fn: str) -> tuple[int, int]:
    """Model, inputs ``X`` (n, d) with n >= 1 and targets ``y`` (n,) or (B, n); returns
    ``(n, B)``."""
    if not isinstance(model, TwoLayer):
        fail("model", fn, "an mfteach.models.TwoLayer", model, exc=TypeError)
    B, d = model.n_networks, model.d
    check_tensor(X, "X", fn, shape=(None, d))
    n = X.shape[0]
    if n < 1:
        fail("X", fn, f"a tensor of shape (n, {d}) with n >= 1 samples", X)
    check_tensor(y, "y", fn, ndim=(1, 2))
    if tuple(y.shape) not in {(n,), (B, n)}:
        fail("y", fn, f"a tensor of shape ({n},) or ({B}, {n}) matching X of shape "
             f"{tuple(X.shape)} and the model's {B} networks", y)
    check_same_device_dtype(fn, model=model.W, X=X)
    check_same_device_dtype(fn, X=X, y=y)
    return n, B


def _check_initial_loss(model: TwoLayer, X: Tensor, yb: Tensor, fn: str) -> Tensor:
    """The initial losses (B,), refusing inputs or targets that overflow before any step."""
    with torch.no_grad():
        out = model._forward(X)  # (B, n)
        if not bool(torch.isfinite(out.square()).all()):
            fail("X", fn, f"small enough that the model's squared outputs are finite in "
                 f"{X.dtype}", X, hint="Rescale the inputs.")
        loss0 = 0.5 * (out - yb).square().mean(-1)
    if not bool(torch.isfinite(loss0).all()):
        fail("y", fn, f"small enough that the squared error is finite in {X.dtype}", yb,
             hint="Rescale the targets.")
    return loss0


def _eigvalsh_max(K: Tensor, name: str, fn: str, value) -> Tensor:
    """Largest eigenvalue of each symmetric (B, n, n) matrix, robust to huge entries."""
    scale = K.abs().amax(dim=(-2, -1), keepdim=True)  # (B, 1, 1)
    if not bool(torch.isfinite(scale).all()):
        fail(name, fn, "small enough that the tangent kernel is finite", value)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    try:
        lam = torch.linalg.eigvalsh(K / scale)
    except RuntimeError:  # torch.linalg.LinAlgError: no convergence
        fail(name, fn, "inputs whose tangent kernel has computable eigenvalues", value)
    return lam * scale[..., 0]  # (B, n)


def _max_stable_lr(model: TwoLayer, X: Tensor, fn: str) -> Tensor:
    wrt = tuple(k for k in ("W", "a") if getattr(model, k).requires_grad) or ("W", "a")
    K = model.ntk_matrix(X, wrt=wrt)  # (B, n, n), kernel of the trainable parameters
    lam = _eigvalsh_max(K, "X", fn, X)[..., -1]
    bound = 2 * X.shape[0] / (model.lr_scale * lam)
    return torch.where(lam > 0, bound, torch.full_like(bound, math.inf))


def gd_step(model: TwoLayer, X: Tensor, y: Tensor, raw_lr: float) -> Tensor:
    r"""One gradient step on every network; returns the losses before the step, shape (B,).

    :math:`\theta_b \leftarrow \theta_b - \text{raw\_lr}\,\nabla_{\theta_b} L_b` for the
    parameters that require gradients, with
    :math:`L_b = \frac{1}{2n}\sum_i (f_b(x_i) - y_{b,i})^2`. One backward pass through
    :math:`\sum_b L_b`: the networks do not interact, so each gets its own gradient. The
    arguments are checked as in :func:`train` (``raw_lr`` must be representable in the
    model's dtype); no optimiser state, no divergence check.

    Examples
    --------
    >>> from mfteach.models import TwoLayer
    >>> m = TwoLayer(1, 4, generator=0, dtype=torch.float64)
    >>> X, y = torch.ones(2, 1, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    >>> before = gd_step(m, X, y, 0.1)
    >>> bool(gd_step(m, X, y, 0.1) < before)
    True
    """
    fn = "mfteach.training.gd_step"
    _check_data(model, X, y, fn)
    raw_lr = _check_lr(raw_lr, fn, model.W.dtype, name="raw_lr")
    if not (model.W.requires_grad or model.a.requires_grad):
        fail("model", fn, "a model with at least one trainable parameter (requires_grad)",
             model)
    loss, params, grads = _loss_and_grads(model, X, y)
    _apply(params, grads, raw_lr)
    return loss


def _divergence_message(model: TwoLayer, step: int, b: int, loss_now: float, loss0: float,
                        lr: float, raw_lr: float, bound: float | None) -> str:
    what = "is not finite" if not math.isfinite(loss_now) else (
        f"grew to {loss_now:.3g} from {loss0:.3g}")
    msg = (f"Training diverged in mfteach.training.train: at step {step} the loss of network "
           f"{b} {what} with lr={lr:g} (raw step lr * lr_scale = {raw_lr:g}), parametrization "
           f"{model.parametrization!r}, width {model.width}. ")
    if bound is not None and math.isfinite(bound) and bound > 0 and lr >= bound:
        msg += (f"Lower lr below {bound:.3g}: the linearised (NTK) dynamics at initialisation "
                f"is stable for lr < 2 n / (lr_scale * lambda_max(K_0)) = {bound:.3g}. ")
    elif bound is not None and math.isfinite(bound) and bound > 0:
        msg += (f"lr is below the linearised (NTK) stability bound {bound:.3g} at "
                f"initialisation, so the divergence is nonlinear: lower lr, e.g. to "
                f"{lr / 10:g}. ")
    else:
        msg += f"Lower lr, e.g. to {lr / 10:g}. "
    if model.parametrization == "standard":
        msg += ("Under 'standard' the tangent kernel grows like the width, so the stable lr "
                "shrinks like 1/width; 'ntk' or 'mf' keep it width-independent.")
    return msg


def _suggested_bound(model: TwoLayer, W0: Tensor, a0: Tensor, X: Tensor) -> float | None:
    """The stability bound of one network at initialisation, or None when it cannot be
    computed (too many samples, an overflowing kernel, no eigenvalue convergence, ...)."""
    if X.shape[0] > 4096:
        return None
    try:
        ref = TwoLayer.from_params(W0, a0, activation=model.activation,
                                   parametrization=model.parametrization)
        ref.W.requires_grad_(model.W.requires_grad)
        ref.a.requires_grad_(model.a.requires_grad)
        _check_kernel_budget(ref, X.shape[0], "X", "mfteach.training.train", X)
        bound = float(_max_stable_lr(ref, X, "mfteach.training.train")[0])
    except (RuntimeError, ValueError, TypeError):
        return None
    return bound if math.isfinite(bound) and bound > 0 else None


def max_stable_lr(model: TwoLayer, X: Tensor) -> Tensor:
    r"""Largest stable learning rate (theory units) of the linearised dynamics, per network.

    Gradient descent on :math:`L = \frac1{2n}|f - y|^2` linearised around the current
    parameters moves the residual by :math:`r \leftarrow (I - \eta\,\text{lr\_scale}\,K/n)\,r`,
    with :math:`K` the tangent kernel of the trainable parameters (those with
    ``requires_grad``) on the training inputs (:meth:`~mfteach.models.TwoLayer.ntk_matrix`).
    It is stable when :math:`\eta < 2n / (\text{lr\_scale}\,\lambda_{\max}(K))`.

    Parameters
    ----------
    model : TwoLayer
    X : Tensor, shape (n, d)

    Returns
    -------
    Tensor, shape (B,)
        ``inf`` for a network whose tangent kernel on ``X`` vanishes (e.g. ``X = 0``): every
        learning rate is then stable.

    Raises
    ------
    TypeError, ValueError
        For a bad model or ``X`` (``n >= 1`` samples, finite, the model's dtype and device),
        an ``X`` whose kernel overflows, or an ``n`` whose ``(B, n, n)`` kernels exceed the
        memory limit.

    Notes
    -----
    A guide for the introduction chapter's learning-rate choices; the full nonlinear dynamics
    can diverge slightly below it (the kernel moves) and converges above it only by luck.

    Examples
    --------
    >>> from mfteach.models import TwoLayer, teacher_data
    >>> X, y = teacher_data(32, 3, generator=0, dtype=torch.float64)
    >>> m = TwoLayer(3, 256, parametrization="mf", generator=1, dtype=torch.float64)
    >>> bool(max_stable_lr(m, X) > 1.0)
    True
    """
    fn = "mfteach.training.max_stable_lr"
    if not isinstance(model, TwoLayer):
        fail("model", fn, "an mfteach.models.TwoLayer", model, exc=TypeError)
    check_tensor(X, "X", fn, shape=(None, model.d))
    n = X.shape[0]
    if n < 1:
        fail("X", fn, f"a tensor of shape (n, {model.d}) with n >= 1 samples", X)
    check_same_device_dtype(fn, model=model.W, X=X)
    _check_kernel_budget(model, n, "X", fn, X)
    return _max_stable_lr(model, X, fn)


def _check_kernel_budget(model: TwoLayer, n: int, name: str, fn: str, value) -> None:
    """The (B, n, n) kernel, its terms and eigen-decomposition, and the (B, n, N) features."""
    B, N = model.n_networks, model.width
    check_budget(name, fn, value, nbytes=model.W.dtype.itemsize * B * (
        5.0 * n * n + 6.0 * n * N))


def train(model: TwoLayer, X: Tensor, y: Tensor, *, lr: float, steps: int,
          batch_size: int | None = None, record_every: int = 1,
          diagnostics: dict[str, Callable[[TwoLayer], Tensor]] | None = None,
          generator: int | torch.Generator | None = None, progress: bool = False,
          divergence_factor: float = 1e3) -> History:
    r"""Train every network of ``model`` in place by gradient descent; return the history.

    Each step updates :math:`\theta_b \leftarrow \theta_b - \eta\,\text{lr\_scale}\,
    \nabla L_b` (:func:`gd_step`) with :math:`L_b = \frac{1}{2n}\sum_i (f_b(x_i) - y_{b,i})^2`
    on the full batch, or on a minibatch of ``batch_size`` samples drawn without replacement
    (the same minibatch for every network) when ``batch_size`` is given.

    Parameters
    ----------
    model : TwoLayer
        Trained in place; parameters with ``requires_grad=False`` stay fixed (e.g. freeze
        ``model.a`` for a random-features model).
    X : Tensor, shape (n, d)
        Training inputs, on the model's device and dtype.
    y : Tensor, shape (n,) or (B, n)
        Targets, shared by all networks or one row per network.
    lr : float
        Learning rate :math:`\eta > 0` in the theory's units: the raw step is
        ``lr * model.lr_scale``; under ``"mf"`` the time :math:`t = \text{steps}\times\eta`
        is then width-independent.
    steps : int
        Number of gradient steps (0 records the initial state only).

    Other Parameters
    ----------------
    batch_size : int, optional
        Minibatch size for SGD; ``None`` (default) is full-batch gradient descent.
    record_every : int
        Record the loss and diagnostics at step 0, every ``record_every`` steps, and at the
        last step.
    diagnostics : dict[str, callable], optional
        ``name -> fn(model) -> Tensor`` of shape (B, ...), evaluated (without gradients) at
        the recorded steps, e.g. :func:`relative_change`, :func:`relative_ntk_change`,
        :func:`snapshot`.
    generator : int or torch.Generator, optional
        Randomness of the minibatches (required when ``batch_size`` is given), drawn on the
        model's device: same seed, same history.
    progress : bool
        Show a tqdm progress bar.
    divergence_factor : float
        Stop with :class:`DivergenceError` when a loss is NaN/inf or exceeds
        ``divergence_factor`` times its initial value (checked at recorded steps and at
        least every 100 steps).

    Returns
    -------
    History
        ``step`` (T,), ``loss`` (T, B), ``diagnostics`` (T, B, ...), on the model's device.

    Raises
    ------
    DivergenceError
        When training diverges; the message names ``lr``, the parametrization and width, and
        suggests a smaller ``lr`` (from :func:`max_stable_lr` at initialisation).
    TypeError, ValueError
        For bad arguments: shapes, dtypes, devices, empty or non-finite ``X`` and ``y``,
        inputs or targets whose initial loss overflows, an ``lr`` that is not positive or
        whose raw step ``lr * lr_scale`` is not representable in the model's dtype, more than
        ``MFTEACH_MAX_STEPS`` (1e9) ``steps``, or a run whose activations or records would
        exceed the memory limit (CONTRIBUTING.md, Errors).

    Notes
    -----
    Introduced in the introduction chapter (lazy versus mean-field training). No optimiser
    state and no Python loop over networks: the cost of a step is that of one batched
    forward and backward pass.

    Examples
    --------
    >>> from mfteach.models import TwoLayer, teacher_data
    >>> X, y = teacher_data(64, 2, generator=0)
    >>> model = TwoLayer(2, 128, parametrization="mf", n_networks=3, generator=1)
    >>> hist = train(model, X, y, lr=0.5, steps=200, record_every=50,
    ...              diagnostics={"dW": relative_change(model, "W")})
    >>> hist.step.tolist(), hist.loss.shape, hist.diagnostics["dW"].shape
    ([0, 50, 100, 150, 200], torch.Size([5, 3]), torch.Size([5, 3]))
    >>> bool((hist.loss[-1] < hist.loss[0]).all())
    True
    """
    fn = "mfteach.training.train"
    n, B = _check_data(model, X, y, fn)
    lr = _check_lr(lr, fn, model.W.dtype, model.lr_scale)
    steps = check_int(steps, "steps", fn, min=0)
    check_budget("steps", fn, steps, steps=steps)
    # activations, their derivatives and the gradients of one batched step
    check_budget("X", fn, X, nbytes=6.0 * B * n * model.width * X.dtype.itemsize)
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", fn, min=1, max=n)
    record_every = check_int(record_every, "record_every", fn, min=1)
    check_bool(progress, "progress", fn)
    divergence_factor = check_float(divergence_factor, "divergence_factor", fn, min=1.0,
                                    min_open=True)
    diagnostics = {} if diagnostics is None else diagnostics
    if not isinstance(diagnostics, dict) or not all(
            isinstance(k, str) and callable(v) for k, v in diagnostics.items()):
        fail("diagnostics", fn, "a dict mapping names (str) to callables fn(model) -> Tensor",
             diagnostics, exc=TypeError)
    if not (model.W.requires_grad or model.a.requires_grad):
        fail("model", fn, "a model with at least one trainable parameter (requires_grad)",
             model)
    dev = model.W.device
    g = None
    if batch_size is not None:
        if generator is None:
            fail("generator", fn, "an int seed or a torch.Generator when batch_size is given "
                 "(minibatches are random)", generator, exc=TypeError)
        g = as_generator(generator, dev, fn)
    elif generator is not None:
        as_generator(generator, dev, fn)  # validate anyway

    raw_lr = lr * model.lr_scale
    yb = y.expand(B, n)
    W0, a0 = model.W.detach().clone(), model.a.detach().clone()
    rec_steps: list[int] = []
    rec_loss: list[Tensor] = []
    rec_diag: dict[str, list[Tensor]] = {k: [] for k in diagnostics}
    loss0 = _check_initial_loss(model, X, yb, fn)  # (B,)
    limit = divergence_factor * loss0.clamp_min(1e-12)
    n_records = steps // record_every + 2

    def record(k: int, loss: Tensor) -> None:
        rec_steps.append(k)
        rec_loss.append(loss)
        with torch.no_grad():
            for name, f in diagnostics.items():
                v = f(model)
                if not isinstance(v, torch.Tensor) or v.ndim < 1 or v.shape[0] != B:
                    fail("diagnostics", fn, f"callables returning a tensor of shape ({B}, ...)"
                         f" (one row per network); {name!r} returned", v, exc=TypeError)
                rec_diag[name].append(v.detach().clone())
        if len(rec_steps) == 1:  # the first record tells the size of all of them
            per = loss.numel() * loss.element_size() + sum(
                r[0].numel() * r[0].element_size() for r in rec_diag.values())
            check_budget("record_every", fn, record_every, nbytes=float(n_records) * per)

    def check(k: int, loss: Tensor) -> None:
        bad = ~torch.isfinite(loss) | (loss > limit)
        if bool(bad.any()):
            b = int(torch.nonzero(bad)[0, 0])
            raise DivergenceError(_divergence_message(
                model, k, b, float(loss[b]), float(loss0[b]), lr, raw_lr,
                _suggested_bound(model, W0[b], a0[b], X)))

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"train ({model.parametrization}, N={model.width})")
    try:
        for k in range(steps + 1):
            is_record = k % record_every == 0 or k == steps
            full = batch_size is None or k == steps
            if k == steps:
                with torch.no_grad():
                    loss = _loss_per_network(model, X, yb)
            else:
                if full:
                    Xk, yk = X, yb
                else:
                    idx = torch.randperm(n, generator=g, device=dev)[:batch_size]
                    Xk, yk = X[idx], yb[:, idx]
                loss, params, grads = _loss_and_grads(model, Xk, yk)
            if is_record and not full:  # record the full-batch loss, not the minibatch's
                with torch.no_grad():
                    loss = _loss_per_network(model, X, yb)
            if is_record or k % 100 == 0:
                check(k, loss)
            if is_record:
                record(k, loss)  # diagnostics see the parameters before this step's update
            if k < steps:
                _apply(params, grads, raw_lr)
                if bar is not None:
                    bar.update(1)
                    if is_record:
                        bar.set_postfix(loss=f"{float(loss.mean()):.4g}")
    finally:
        if bar is not None:
            bar.close()
    return History(
        step=torch.tensor(rec_steps, dtype=torch.long, device=dev),
        loss=torch.stack(rec_loss),
        diagnostics={k: torch.stack(v) for k, v in rec_diag.items()},
        lr=lr,
        raw_lr=raw_lr,
    )


# Ready diagnostics ------------------------------------------------------------------------
def relative_change(model: TwoLayer, name: str = "W") -> Callable[[TwoLayer], Tensor]:
    r"""Diagnostic :math:`\|\theta_t - \theta_0\|_F / \|\theta_0\|_F` of a parameter, per network.

    Captures the current value of ``model.<name>`` (``"W"`` or ``"a"``) as
    :math:`\theta_0` and returns ``fn(model) -> Tensor (B,)``. Under ``"ntk"`` it falls like
    :math:`N^{-1/2}` for a fixed training time (lazy training); under ``"mf"`` it stays
    :math:`O(1)` (introduction chapter).

    Examples
    --------
    >>> from mfteach.models import TwoLayer
    >>> m = TwoLayer(2, 8, n_networks=2, generator=0)
    >>> relative_change(m, "W")(m)
    tensor([0., 0.])
    """
    fn = "mfteach.training.relative_change"
    if not isinstance(model, TwoLayer):
        fail("model", fn, "an mfteach.models.TwoLayer", model, exc=TypeError)
    if name not in ("W", "a"):
        fail("name", fn, "one of 'W', 'a'", name)
    p0 = getattr(model, name).detach().clone()
    dims = tuple(range(1, p0.ndim))
    norm0 = torch.linalg.vector_norm(p0, dim=dims)
    if not bool((norm0 > 0).all()) or not bool(torch.isfinite(norm0).all()):
        fail("model", fn, f"a model whose {name!r} has a non-zero, finite norm in every "
             f"network (the change is relative to it)", model)

    def relative_change_fn(m: TwoLayer) -> Tensor:
        p = getattr(m, name).detach() if isinstance(m, TwoLayer) else None
        if p is None or p.shape != p0.shape:
            fail("model", fn, f"the model it was created from: a TwoLayer whose {name!r} "
                 f"has shape {tuple(p0.shape)}", m)
        return torch.linalg.vector_norm(p - p0, dim=dims) / norm0

    return relative_change_fn


def _check_kernel_inputs(model: TwoLayer | None, X, fn: str) -> None:
    """``X`` of shape (n, d) or (B, n, d), n >= 1, finite, matching the model if given."""
    check_tensor(X, "X", fn, ndim=(2, 3))
    if X.shape[-2] < 1:
        fail("X", fn, "a tensor of shape (n, d) or (B, n, d) with n >= 1", X)
    if model is not None:
        if X.shape[-1] != model.d or (X.ndim == 3 and X.shape[0] != model.n_networks):
            fail("X", fn, f"a tensor of shape (n, {model.d}) or ({model.n_networks}, n, "
                 f"{model.d})", X)
        check_same_device_dtype(fn, model=model.W, X=X)


def relative_ntk_change(model: TwoLayer, X: Tensor) -> Callable[[TwoLayer], Tensor]:
    r"""Diagnostic :math:`\|K_t - K_0\|_F / \|K_0\|_F` of the tangent kernel on ``X``, per net.

    Captures :math:`K_0` = ``model.ntk_matrix(X)`` now and returns ``fn(model) -> (B,)``.

    Examples
    --------
    >>> from mfteach.models import TwoLayer
    >>> m = TwoLayer(2, 8, generator=0)
    >>> relative_ntk_change(m, torch.ones(3, 2))(m)
    tensor([0.])
    """
    fn = "mfteach.training.relative_ntk_change"
    if not isinstance(model, TwoLayer):
        fail("model", fn, "an mfteach.models.TwoLayer", model, exc=TypeError)
    _check_kernel_inputs(model, X, fn)
    K0 = model.ntk_matrix(X)
    norm0 = torch.linalg.matrix_norm(K0)
    if not bool((norm0 > 0).all()) or not bool(torch.isfinite(norm0).all()):
        fail("X", fn, "inputs on which every network's tangent kernel is non-zero and finite "
             "(the change is relative to it)", X)

    def relative_ntk_change_fn(m: TwoLayer) -> Tensor:
        return torch.linalg.matrix_norm(m.ntk_matrix(X) - K0) / norm0

    return relative_ntk_change_fn


def ntk_min_eigenvalue(X: Tensor) -> Callable[[TwoLayer], Tensor]:
    r"""Diagnostic :math:`\lambda_{\min}(K_t)` of the tangent kernel on ``X``, per network (B,).

    It controls the linear convergence rate of the lazy regime.
    """
    fn = "mfteach.training.ntk_min_eigenvalue"
    _check_kernel_inputs(None, X, fn)

    def ntk_min_eigenvalue_fn(m: TwoLayer) -> Tensor:
        if not isinstance(m, TwoLayer):
            fail("model", fn, "an mfteach.models.TwoLayer", m, exc=TypeError)
        K = m.ntk_matrix(X)
        scale = K.abs().amax(dim=(-2, -1), keepdim=True)
        if not bool(torch.isfinite(scale).all()):
            fail("X", fn, "small enough that the tangent kernel is finite", X)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return torch.linalg.eigvalsh(K / scale)[..., 0] * scale[..., 0, 0]

    return ntk_min_eigenvalue_fn


def snapshot(name: str = "W") -> Callable[[TwoLayer], Tensor]:
    """Diagnostic copying a parameter (``"W"`` (B, N, d) or ``"a"`` (B, N)) at each record.

    For the particle pictures of the mean-field regime (neurons as points).
    """
    if name not in ("W", "a"):
        fail("name", "mfteach.training.snapshot", "one of 'W', 'a'", name)

    def snapshot_fn(m: TwoLayer) -> Tensor:
        return getattr(m, name).detach().clone()

    return snapshot_fn
