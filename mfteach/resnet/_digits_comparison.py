r"""The digits comparison: RKHS against SHL residual classifiers, per depth and seed, on one
split of scikit-learn's 8x8 digits (the model and its training are in
``mfteach/resnet/_digits.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import (
    check_bool,
    check_budget,
    check_choice,
    check_float,
    check_int,
    fail,
)
from ..device import resolve_device, resolve_dtype, spawn_generators
from ._digits import (
    DIGITS_N,
    N_CLASSES,
    N_PIXELS,
    digits_data,
    init_digits_net,
    train_digits,
)
from ._features import _draw_generator
from ._model import MODELS

__all__ = ["DigitsComparison", "digits_comparison"]


@dataclass(frozen=True)
class DigitsComparison:
    r"""RKHS against SHL residual classifiers on the digits, per model, depth and seed.

    Attributes
    ----------
    models : tuple of str
    depths : tuple of int
    train_loss : Tensor, shape (n_models, n_depths, epochs + 1, n_seeds)
        Cross-entropy on the training set at the start and after every epoch.
    test_error_curve : Tensor, shape (n_models, n_depths, epochs + 1, n_seeds)
    train_error, test_error : Tensor, shape (n_models, n_depths, n_seeds)
        Final classification errors (fractions).
    n_parameters : Tensor, shape (n_models, n_depths), int64
        Trained parameters per network.
    n_train, n_test, q, n_features, epochs, batch_size : int
    lr : float
    """

    models: tuple[str, ...]
    depths: tuple[int, ...]
    train_loss: Tensor
    test_error_curve: Tensor
    train_error: Tensor
    test_error: Tensor
    n_parameters: Tensor
    n_train: int
    n_test: int
    q: int
    n_features: int
    epochs: int
    batch_size: int
    lr: float

    def summary(self) -> str:
        """A table: model, depth, parameters, train and test error in percent (mean ± sd
        over the seeds)."""
        n = self.test_error.shape[-1]
        lines = [f"{'model':>5} {'L':>3} {'params':>8}  train error (%)   test error (%)"
                 f"   [{n} seeds, {self.n_train} train / {self.n_test} test]"]
        for i, m in enumerate(self.models):
            for j, L in enumerate(self.depths):
                tr, te = 100 * self.train_error[i, j], 100 * self.test_error[i, j]
                lines.append(f"{m:>5} {L:>3} {int(self.n_parameters[i, j]):>8}  "
                             f"{float(tr.mean()):6.2f} ± {_sd(tr):4.2f}    "
                             f"{float(te.mean()):6.2f} ± {_sd(te):4.2f}")
        return "\n".join(lines)


def _sd(t: Tensor) -> float:
    return float(t.std()) if t.numel() > 1 else 0.0


def digits_comparison(*, n_train: int = 500, n_test: int = 500, q: int = 32,
                      n_features: int = 64, depths: tuple[int, ...] = (5, 10),
                      models: tuple[str, ...] = MODELS, epochs: int = 30, lr: float = 50.0,
                      batch_size: int | None = 50, lr_features: float | None = None,
                      n_seeds: int = 5, family: str = "relu",
                      bandwidth: float | None = None, scheme: str = "midpoint",
                      generator: int | torch.Generator,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None,
                      progress: bool = False) -> DigitsComparison:
    r"""Train RKHS and SHL residual classifiers on one split of the digits, for each depth,
    ``n_seeds`` networks at a time, and report their errors.

    For each depth the two models start from the same draws (features, :math:`A`, :math:`R`)
    and see the same minibatches, so that their difference is the training of the features.

    Parameters
    ----------
    n_train, n_test : int
        Split sizes (:func:`digits_data`).
    q, n_features : int
        State width :math:`q` and features per block :math:`M`.
    depths : tuple of int
    models : tuple of {"rkhs", "shl"}
    epochs : int
    lr : float
        Step size of :math:`U` (large because the blocks carry :math:`1/L` and the features
        :math:`M^{-1/2}`).
    batch_size : int or None
        ``None``: full-batch gradient descent.
    lr_features : float, optional
        SHL features' multiplier of ``lr`` (:func:`train_digits`; default :math:`1/M`).
    n_seeds : int
        Networks per model and depth (the batch axis).

    Other Parameters
    ----------------
    family, bandwidth, scheme
        See :func:`init_digits_net`.
    generator : int or torch.Generator
        Draws the split, then one initialisation seed and one shuffle seed per depth.
    device, dtype
        CPU and float64 by default; on a GPU ``dtype=torch.float32`` is the fast path.
    progress : bool
        A tqdm bar over the (model, depth) runs.

    Returns
    -------
    DigitsComparison

    Notes
    -----
    The defaults run in about 15 s on one CPU thread (chapter 6, section "Real data"), with
    test errors of roughly 12-15 % (RKHS) and 8-10 % (SHL). ``DIGITS_FULL`` is the larger
    run; compare with ``MNIST_REFERENCE``.

    Examples
    --------
    >>> r = digits_comparison(n_train=100, n_test=100, q=8, n_features=8, depths=(2,),
    ...                       epochs=1, n_seeds=2, generator=0)
    >>> tuple(r.test_error.shape), r.n_parameters.tolist()
    ((2, 1, 2), [[128], [256]])
    """
    fn = "mfteach.resnet.digits_comparison"
    if not isinstance(depths, (tuple, list)) or not depths:
        fail("depths", fn, "a non-empty tuple of ints >= 1", depths, exc=TypeError)
    depths = tuple(check_int(L, "depths", fn, min=1) for L in depths)
    if not isinstance(models, (tuple, list)) or not models:
        fail("models", fn, f"a non-empty tuple of {MODELS}", models, exc=TypeError)
    models = tuple(check_choice(m, "models", fn, MODELS) for m in models)
    n_train = check_int(n_train, "n_train", fn, min=1, max=DIGITS_N - 1)
    n_test = check_int(n_test, "n_test", fn, min=1, max=DIGITS_N - n_train)
    q = check_int(q, "q", fn, min=1)
    n_features = check_int(n_features, "n_features", fn, min=1)
    epochs = check_int(epochs, "epochs", fn, min=0)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    if batch_size is not None:
        batch_size = min(check_int(batch_size, "batch_size", fn, min=1), n_train)
    n_seeds = check_int(n_seeds, "n_seeds", fn, min=1)
    check_bool(progress, "progress", fn)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    sizes = {"depths": max(depths), "n_seeds": n_seeds, "q": q, "n_features": n_features}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=dt.itemsize * n_seeds * (
        12.0 * max(depths) * q * n_features + q * (N_PIXELS + N_CLASSES)))
    g_data, g_nets = spawn_generators(_draw_generator(generator, dev, fn), 2, fn=fn)
    data = digits_data(n_train, n_test, generator=g_data, device=dev, dtype=dt)
    seeds = torch.randint(0, 2**62, (len(depths), 2), generator=g_nets).tolist()
    shape = (len(models), len(depths))
    out: dict[str, list] = {k: [] for k in ("loss", "curve", "train", "test", "params")}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(models) * len(depths), desc="digits comparison")
    try:
        for m in models:
            for j, L in enumerate(depths):
                net = init_digits_net(q, n_features, L, model=m, family=family,
                                      bandwidth=bandwidth, scheme=scheme, n_networks=n_seeds,
                                      generator=seeds[j][0], device=dev, dtype=dt)
                h = train_digits(net, data.X_train, data.y_train, lr=lr, epochs=epochs,
                                 batch_size=batch_size, X_test=data.X_test,
                                 lr_features=lr_features if m == "shl" else None,
                                 y_test=data.y_test, generator=seeds[j][1])
                out["loss"].append(h.train_loss)
                out["curve"].append(h.test_error)
                out["train"].append(h.train_error[-1])
                out["test"].append(h.test_error[-1])
                out["params"].append(net.n_trainable)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    def stack(k):
        t = torch.stack(out[k])
        return t.reshape(*shape, *t.shape[1:])

    return DigitsComparison(
        models=models, depths=depths, train_loss=stack("loss"),
        test_error_curve=stack("curve"), train_error=stack("train"), test_error=stack("test"),
        n_parameters=torch.tensor(out["params"], dtype=torch.int64).reshape(shape),
        n_train=n_train, n_test=n_test, q=q, n_features=n_features, epochs=epochs,
        batch_size=n_train if batch_size is None else batch_size, lr=lr)
