r"""RKHS against SHL residuals on real data: scikit-learn's 8x8 digits.

The authors' MNIST experiment (Barboni, Peyré & Vialard 2022, arXiv:2112.05531, Section 5;
``rbarboni/FlowResNets``, ``MNIST_experiments.py`` and ``RKHS_NODE.py``), scaled down to the
1,797 digits images that scikit-learn ships (no download). The classifier is

.. math::

    z_0 = A x, \qquad z_{l+1} = z_l + \tfrac1L\,v_l(z_l), \qquad
    \mathrm{logits}(x) = R\,z_L ,

with a fixed random embedding :math:`A \in \mathbb{R}^{q\times 64}`,
:math:`A_{ij} \sim N(0, 1/64)`, a fixed random readout :math:`R \in \mathbb{R}^{10\times q}`,
:math:`R_{ij} \sim N(0, 1/q)` (the authors' "random embeddings" variant: :math:`A` and
:math:`R` are frozen), and the residual blocks of :mod:`mfteach.resnet` (Euler or midpoint):
``"rkhs"``, :math:`v_l = U_l\phi` with fixed features shared by the blocks and only
:math:`U` trained; ``"shl"``, :math:`v_l = U_l\sigma(W_l z + b_l)` with both layers trained.
Both start at :math:`U = 0` from the same draw, hence as the same function. The loss is the
cross-entropy, minimised by minibatch SGD (one step size for all trained parameters, as the
authors' single optimiser) or full-batch gradient descent; all seeds train as one batched
program (leading axis :math:`B`).

Differences from the authors' setting: dense features instead of :math:`3\times 3`
convolutions on :math:`5\times 5` feature maps, one parameter block per layer instead of
:math:`L + 1` nodes interpolated in depth, no learning-rate decay, 8x8 digits instead of
MNIST. Their parameter count for :math:`L = 10`, :math:`q = 32` is
:math:`11\cdot 32\cdot 32\cdot 9 = 101{,}376` (RKHS) and twice that (SHL); ours is
:math:`LqM` and :math:`2LqM` (``"relu"`` features have no phase, like their bias-free SHL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
from ..device import resolve_device, resolve_dtype
from ..training import DivergenceError
from ._features import FAMILIES, _draw_generator
from ._model import MODELS, SCHEMES, ResNet, _flow, _params, _with_params, init_resnet

__all__ = ["DIGITS_N", "DIGITS_FULL", "MNIST_REFERENCE", "DigitsData", "digits_data",
           "DigitsNet", "init_digits_net", "digits_logits", "DigitsHistory", "train_digits"]

DIGITS_N = 1797
"""Number of images in ``sklearn.datasets.load_digits`` (8x8 pixels, 10 classes)."""
N_PIXELS = 64
N_CLASSES = 10

MNIST_REFERENCE: dict[tuple[str, int], float] = {
    ("rkhs", 5): 2.14, ("rkhs", 10): 2.41, ("rkhs", 20): 3.09,
    ("shl", 5): 1.53, ("shl", 10): 1.60, ("shl", 20): 1.70,
}
"""The authors' final MNIST test errors in percent (random embeddings, :math:`q = 32`, mean
of 20 seeds after 40 epochs, stored runs of ``rbarboni/FlowResNets``), by (model, depth);
101,376 (RKHS) and 202,752 (SHL) trainable parameters at :math:`L = 10`."""

DIGITS_FULL: dict = dict(n_train=1297, n_test=500, n_features=256, depths=(5, 10, 20),
                         epochs=40, n_seeds=20)
"""The "run it bigger" size of :func:`digits_comparison`: all 1,797 images, 256 features,
the authors' depths, epochs and number of seeds, e.g.
``digits_comparison(**DIGITS_FULL, generator=0, device="cuda")``."""


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DigitsData:
    r"""A train/test split of the digits.

    Attributes
    ----------
    X_train : Tensor, shape (n_train, 64)
        Pixels standardised with the training set's mean and standard deviation (pixels
        constant on the training set are only centred).
    y_train : Tensor, shape (n_train,), int64
        Labels in 0..9.
    X_test : Tensor, shape (n_test, 64)
        Standardised with the training statistics.
    y_test : Tensor, shape (n_test,), int64
    """

    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor


def _load_digits_arrays():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("mfteach.resnet.digits_data needs scikit-learn, which ships the "
                          "digits images: pip install scikit-learn") from None
    bunch = load_digits()
    return bunch.data, bunch.target


def _stratified_order(y: Tensor, g: torch.Generator) -> Tensor:
    """A random order of the indices whose every prefix holds each class in proportion to
    its size (within one image): a uniform permutation, then the i-th image of a class of
    size n_c is keyed (i + 1/2) / n_c, and a stable sort on the keys."""
    n = y.numel()
    perm = torch.randperm(n, generator=g, device=g.device).to(y.device)
    yp = y[perm]
    counts = torch.bincount(yp, minlength=N_CLASSES).to(torch.float64)
    onehot = F.one_hot(yp, N_CLASSES).to(torch.float64)
    rank = (onehot.cumsum(0) * onehot).sum(-1) - 1  # rank of each image within its class
    key = (rank + 0.5) / counts[yp]
    return perm[torch.sort(key, stable=True).indices]


def digits_data(n_train: int = 500, n_test: int = 500, *, generator: int | torch.Generator,
                device: torch.device | str | None = None,
                dtype: torch.dtype | None = None) -> DigitsData:
    r"""A stratified random train/test split of scikit-learn's digits, standardised.

    Parameters
    ----------
    n_train, n_test : int
        Sizes, with ``n_train + n_test <= 1797``.

    Other Parameters
    ----------------
    generator : int or torch.Generator
        Draws the split (an int seed draws on the CPU: the same split on every device).
    device, dtype
        CPU and float64 by default; labels are int64.

    Returns
    -------
    DigitsData

    Raises
    ------
    ImportError
        Without scikit-learn.
    TypeError, ValueError
        For bad arguments (one line naming the argument).

    Notes
    -----
    Stratified: every class takes its share of each set to within one image. Chapter 6,
    section "Real data: RKHS against SHL".

    Examples
    --------
    >>> data = digits_data(100, 50, generator=0)
    >>> tuple(data.X_train.shape), data.y_test.dtype, torch.bincount(data.y_train).tolist()
    ((100, 64), torch.int64, [10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
    """
    fn = "mfteach.resnet.digits_data"
    n_train = check_int(n_train, "n_train", fn, min=1, max=DIGITS_N - 1)
    n_test = check_int(n_test, "n_test", fn, min=1, max=DIGITS_N - n_train)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    g = _draw_generator(generator, dev, fn)
    pixels, target = _load_digits_arrays()
    X = torch.as_tensor(pixels, dtype=torch.float64)
    y = torch.as_tensor(target, dtype=torch.int64)
    order = _stratified_order(y, g).cpu()
    tr, te = order[:n_train], order[n_train:n_train + n_test]
    mean = X[tr].mean(0)
    sd = X[tr].std(0) if n_train > 1 else torch.zeros_like(mean)
    sd = torch.where(sd > 0, sd, torch.ones_like(sd))
    Xs = (X - mean) / sd
    return DigitsData(Xs[tr].to(dev, dt), y[tr].to(dev), Xs[te].to(dev, dt), y[te].to(dev))


# ------------------------------------------------------------------------------------------
# The classifier
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DigitsNet:
    r"""An ensemble of :math:`B` residual classifiers ``logits = R flow(A x)``.

    Attributes
    ----------
    embed : Tensor, shape (B, q, P)
        The fixed embedding :math:`A` (:math:`P = 64` pixels).
    core : ResNet
        The residual blocks on :math:`\mathbb{R}^q` (``d = q``, so its own lifting and
        projection are the identity); ``core.model`` is ``"rkhs"`` or ``"shl"``.
    readout : Tensor, shape (B, C, q)
        The fixed readout :math:`R` (:math:`C = 10` classes).
    """

    embed: Tensor
    core: ResNet
    readout: Tensor

    @property
    def model(self) -> str:
        return self.core.model

    @property
    def n_networks(self) -> int:
        return self.core.n_networks

    @property
    def depth(self) -> int:
        return self.core.depth

    @property
    def n_trainable(self) -> int:
        """Trained parameters per network (:attr:`ResNet.n_trainable`; A and R are fixed)."""
        return self.core.n_trainable

    def replace(self, **changes) -> DigitsNet:
        from dataclasses import replace

        return replace(self, **changes)


def init_digits_net(q: int = 32, n_features: int = 64, depth: int = 10, *,
                    model: str = "rkhs", family: str = "relu", bandwidth: float | None = None,
                    nu: float = 3.0, scheme: str = "midpoint", n_networks: int = 1,
                    n_inputs: int = N_PIXELS, n_classes: int = N_CLASSES,
                    generator: int | torch.Generator,
                    device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> DigitsNet:
    r"""Residual classifiers at initialisation: :math:`U = 0`, random :math:`A`, :math:`R`.

    Parameters
    ----------
    q : int
        Width of the state :math:`z \in \mathbb{R}^q`.
    n_features : int
        :math:`M`, hidden units per block.
    depth : int
        :math:`L`.
    model : {"rkhs", "shl"}
    family : {"relu", "gaussian", "matern"}
        ``"relu"`` by default, the authors' nonlinearity.
    bandwidth : float, optional
        :math:`\sigma`; default :math:`\sqrt q`, so that the pre-activations
        :math:`\omega^\top z_0` have unit variance (standardised pixels and
        :math:`A_{ij} \sim N(0, 1/P)` give unit-variance states).

    Other Parameters
    ----------------
    nu, scheme
        See :func:`mfteach.resnet.init_resnet`.
    n_networks : int
        :math:`B`.
    n_inputs, n_classes : int
        :math:`P = 64` and :math:`C = 10` for the digits.
    generator : int or torch.Generator
        Draws the features, then :math:`A`, then :math:`R` (an int seed draws on the CPU, so
        that a device run starts from the same networks).
    device, dtype
        CPU and float64 by default.

    Returns
    -------
    DigitsNet

    Examples
    --------
    >>> net = init_digits_net(8, 16, 3, model="shl", n_networks=2, generator=0)
    >>> tuple(net.embed.shape), tuple(net.readout.shape), net.n_trainable  # 2 L q M
    ((2, 8, 64), (2, 10, 8), 768)
    """
    fn = "mfteach.resnet.init_digits_net"
    q = check_int(q, "q", fn, min=1)
    M = check_int(n_features, "n_features", fn, min=1)
    L = check_int(depth, "depth", fn, min=1)
    check_choice(model, "model", fn, MODELS)
    check_choice(family, "family", fn, FAMILIES)
    check_choice(scheme, "scheme", fn, SCHEMES)
    bandwidth = (math.sqrt(q) if bandwidth is None else
                 check_float(bandwidth, "bandwidth", fn, min=0.0, min_open=True))
    B = check_int(n_networks, "n_networks", fn, min=1)
    P = check_int(n_inputs, "n_inputs", fn, min=1)
    C = check_int(n_classes, "n_classes", fn, min=2)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    sizes = {"n_networks": B, "q": q, "n_inputs": P, "n_classes": C}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=B * q * (P + C) * dt.itemsize)
    g = _draw_generator(generator, dev, fn)
    core = init_resnet(q, q, M, L, family=family, bandwidth=bandwidth, nu=nu, scheme=scheme,
                       model=model, n_networks=B, generator=g, device=dev, dtype=dt)
    A = torch.randn(B, q, P, generator=g, device=g.device, dtype=dt) / math.sqrt(P)
    R = torch.randn(B, C, q, generator=g, device=g.device, dtype=dt) / math.sqrt(q)
    return DigitsNet(A.to(dev), core, R.to(dev))


def _check_digits_net(net, fn: str) -> DigitsNet:
    if not isinstance(net, DigitsNet):
        fail("net", fn, "an mfteach.resnet.DigitsNet (from init_digits_net)", net,
             exc=TypeError)
    return net


def _check_images(X, net: DigitsNet, name: str, fn: str) -> Tensor:
    check_tensor(X, name, fn, ndim=2)
    P = net.embed.shape[-1]
    if X.shape[1] != P:
        fail(name, fn, f"a tensor of shape (n, {P}) (flattened images)", X)
    check_same_device_dtype(fn, net=net.embed, **{name: X})
    return X


def _check_labels(y, n: int, C: int, name: str, fn: str, device: torch.device) -> Tensor:
    check_tensor(y, name, fn, ndim=1, floating=False)
    if y.dtype != torch.int64:
        fail(name, fn, "an int64 tensor of class labels", y, exc=TypeError)
    if y.shape[0] != n:
        fail(name, fn, f"a tensor of shape ({n},) matching the images", y)
    if y.device != device:
        fail(name, fn, f"on the images' device {device}", y)
    if n and bool(((y < 0) | (y >= C)).any()):
        fail(name, fn, f"labels in 0..{C - 1}", y)
    return y


def _logits(net: DigitsNet, z0: Tensor) -> Tensor:
    """z0 (B, n, q) embedded inputs -> logits (B, n, C), unchecked."""
    return _flow(net.core, z0) @ net.readout.transpose(-1, -2)


def digits_logits(net: DigitsNet, X: Tensor) -> Tensor:
    r"""The class scores :math:`R\,z_L(Ax)` of each network.

    Parameters
    ----------
    net : DigitsNet
    X : Tensor, shape (n, P)

    Returns
    -------
    Tensor, shape (B, n, C)

    Examples
    --------
    >>> net = init_digits_net(8, 16, 3, n_networks=2, generator=0)
    >>> X = torch.zeros(5, 64, dtype=torch.float64)
    >>> digits_logits(net, X).shape
    torch.Size([2, 5, 10])
    """
    fn = "mfteach.resnet.digits_logits"
    _check_digits_net(net, fn)
    X = _check_images(X, net, "X", fn)
    return _logits(net, X @ net.embed.transpose(-1, -2))


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DigitsHistory:
    r"""What :func:`train_digits` records, at the start and after every epoch.

    Attributes
    ----------
    epoch : Tensor, shape (E + 1,), int64
    train_loss : Tensor, shape (E + 1, B)
        Cross-entropy on the whole training set.
    train_error, test_error : Tensor, shape (E + 1, B)
        Classification error (fraction of wrong argmax); ``test_error`` is NaN without a
        test set.
    final : DigitsNet
    lr, lr_features : float
    batch_size : int
    """

    epoch: Tensor
    train_loss: Tensor
    train_error: Tensor
    test_error: Tensor
    final: DigitsNet
    lr: float
    lr_features: float
    batch_size: int


def _evaluate(net: DigitsNet, z0: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy and error of each network on embedded inputs z0 (B, n, q)."""
    logits = _logits(net, z0)  # (B, n, C)
    B, n, C = logits.shape
    ce = F.cross_entropy(logits.reshape(B * n, C), y.repeat(B), reduction="none")
    err = (logits.argmax(-1) != y).to(logits.dtype).mean(-1)
    return ce.reshape(B, n).mean(-1), err


def train_digits(net: DigitsNet, X: Tensor, y: Tensor, *, lr: float = 50.0, epochs: int = 30,
                 batch_size: int | None = 50, lr_features: float | None = None,
                 X_test: Tensor | None = None, y_test: Tensor | None = None,
                 generator: int | torch.Generator | None = None,
                 progress: bool = False) -> DigitsHistory:
    r"""Minibatch SGD (or full-batch gradient descent) on the cross-entropy of each network.

    Parameters
    ----------
    net : DigitsNet
        The initial classifiers (not modified).
    X : Tensor, shape (N, P)
    y : Tensor, shape (N,), int64
    lr : float
        Step size :math:`\eta` of :math:`U` (and of the features of an SHL network, times
        ``lr_features``).
    epochs : int
    batch_size : int or None
        Minibatch size (at most ``N``: a larger one is full-batch); ``None`` for full-batch
        gradient descent (one step per epoch). Each
        network draws its own reshuffle every epoch; a last incomplete batch is kept.

    Other Parameters
    ----------------
    lr_features : float, optional
        SHL only: multiplier of ``lr`` for the features; default :math:`1/M`, the authors'
        single SGD step size. Their blocks are :math:`U'\sigma(Wz)` with
        :math:`U' = U/\sqrt M` here (the features carry :math:`M^{-1/2}`), so one step
        :math:`\eta` on :math:`U` is a step :math:`\eta/M` on :math:`U'`, and the same step
        on :math:`W = \omega` is ``lr_features = 1/M``.
    X_test, y_test : Tensor, optional
        A test set, evaluated after every epoch.
    generator : int or torch.Generator
        Draws the reshuffles (on the CPU for an int seed, so that every device sees the same
        batches); needed unless ``batch_size`` is ``None``.
    progress : bool
        A tqdm bar over the epochs.

    Returns
    -------
    DigitsHistory

    Raises
    ------
    DivergenceError
        When a minibatch loss, or the training loss after an epoch, becomes NaN or
        infinite.
    TypeError, ValueError
        For bad arguments (one line naming the argument).

    Examples
    --------
    Any flattened images will do (here random ones, so the example needs no scikit-learn;
    :func:`digits_data` gives the real ones):

    >>> X = torch.randn(100, 64, generator=torch.Generator().manual_seed(0),
    ...                 dtype=torch.float64)
    >>> y = torch.arange(100) % 10
    >>> net = init_digits_net(16, 32, 4, n_networks=2, generator=1)
    >>> h = train_digits(net, X, y, lr=20.0, epochs=3, batch_size=25, generator=2)
    >>> h.epoch.tolist(), bool((h.train_loss[-1] < h.train_loss[0]).all())
    ([0, 1, 2, 3], True)
    """
    fn = "mfteach.resnet.train_digits"
    _check_digits_net(net, fn)
    X = _check_images(X, net, "X", fn)
    N = X.shape[0]
    if N < 1:
        fail("X", fn, "a tensor with at least one image", X)
    C = net.readout.shape[1]
    y = _check_labels(y, N, C, "y", fn, X.device)
    if (X_test is None) != (y_test is None):
        fail("y_test" if y_test is None else "X_test", fn, "given together with the other "
             "test tensor, or both None", y_test if y_test is None else X_test)
    if X_test is not None:
        X_test = _check_images(X_test, net, "X_test", fn)
        y_test = _check_labels(y_test, X_test.shape[0], C, "y_test", fn, X.device)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    epochs = check_int(epochs, "epochs", fn, min=0)
    bs = N if batch_size is None else min(check_int(batch_size, "batch_size", fn, min=1), N)
    shl = net.model == "shl"
    if lr_features is not None and not shl:
        fail("lr_features", fn, "None for an RKHS network (its features are fixed; use "
             "init_digits_net(..., model='shl') to train them)", lr_features)
    B, L, q, M = net.n_networks, net.depth, net.core.q, net.core.n_features
    lr_f = 1.0 / M if lr_features is None else check_float(lr_features, "lr_features", fn,
                                                             min=0.0)
    lr_f = lr_f if shl else 0.0
    check_bool(progress, "progress", fn)
    g = None
    if bs < N:
        if generator is None:
            fail("generator", fn, "an int seed or a torch.Generator for the reshuffles of "
                 "minibatch SGD (or use batch_size=None)", generator, exc=TypeError)
        g = _draw_generator(generator, X.device, fn)
    n_eval = N + (0 if X_test is None else X_test.shape[0])
    check_budget("batch_size", fn, bs, nbytes=X.dtype.itemsize * B * (
        12.0 * L * q * M + 6.0 * L * bs * (M + q) + 2.0 * n_eval * (q + M + C)))
    n_batches = -(-N // bs)
    check_budget("epochs", fn, epochs, steps=epochs * n_batches * L)

    AT = net.embed.transpose(-1, -2)
    z0 = X @ AT  # (B, N, q): the embedding is fixed, so embed once
    z0_test = None if X_test is None else X_test @ AT
    params = [p.detach().clone() for p in _params(net.core)]
    rates = [lr] + [lr * lr_f] * (len(params) - 1)
    nan = torch.full((B,), float("nan"), dtype=X.dtype, device=X.device)
    rec: dict[str, list[Tensor]] = {"loss": [], "train": [], "test": []}

    def record(core: ResNet) -> None:
        cur = net.replace(core=core)
        with torch.no_grad():
            loss, err = _evaluate(cur, z0, y)
        if not bool(torch.isfinite(loss).all()):
            k = int(torch.nonzero(~torch.isfinite(loss))[0, 0])
            raise DivergenceError(
                f"Training diverged for network {k} ({net.model}, L={L}, M={M}): training "
                f"loss {float(loss[k]):.4g} after {len(rec['loss'])} epochs. The step "
                f"lr={lr:g} is too large; divide it by 10.")
        with torch.no_grad():
            rec["loss"].append(loss)
            rec["train"].append(err)
            rec["test"].append(nan if z0_test is None else _evaluate(cur, z0_test, y_test)[1])

    record(net.core)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=f"train digits ({net.model}, L={L}, M={M})")
    rows = torch.arange(B, device=X.device).unsqueeze(-1)
    try:
        for ep in range(epochs):
            if g is None:
                order = torch.arange(N, device=X.device).expand(B, N)
            else:
                u = torch.rand(B, N, generator=g, device=g.device, dtype=torch.float64)
                order = u.argsort(-1).to(X.device)  # (B, N): one reshuffle per network
            for s in range(0, N, bs):
                idx = order[:, s:s + bs]  # (B, b)
                core = _with_params(net.core, [p.requires_grad_(True) for p in params])
                with torch.enable_grad():
                    logits = _logits(net.replace(core=core), z0[rows, idx])  # (B, b, C)
                    b = idx.shape[1]
                    ce = F.cross_entropy(logits.reshape(B * b, C), y[idx].reshape(-1),
                                         reduction="none").reshape(B, b).mean(-1)
                    grads = torch.autograd.grad(ce.sum(), params)
                params = [p.detach() for p in params]
                if not bool(torch.isfinite(ce).all()):
                    k = int(torch.nonzero(~torch.isfinite(ce))[0, 0])
                    raise DivergenceError(
                        f"Training diverged in epoch {ep + 1} for network {k} ({net.model}, "
                        f"L={L}, M={M}): minibatch loss {float(ce[k].detach()):.4g}. The step "
                        f"lr={lr:g} is too large; divide it by 10.")
                params = [p - a * gr for p, a, gr in zip(params, rates, grads)]
            record(_with_params(net.core, params))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return DigitsHistory(epoch=torch.arange(epochs + 1, dtype=torch.int64),
                         train_loss=torch.stack(rec["loss"]),
                         train_error=torch.stack(rec["train"]),
                         test_error=torch.stack(rec["test"]),
                         final=net.replace(core=_with_params(net.core, params)), lr=lr,
                         lr_features=lr_f, batch_size=bs)
