"""Tests of mfteach.training: GD/SGD on ensembles, divergence, lazy versus mean-field scaling."""

from __future__ import annotations

import pytest
import torch

from mfteach.models import TwoLayer, teacher_data
from mfteach.stats import fit_loglog_slope
from mfteach.testing import assert_slope_close
from mfteach.training import (
    DivergenceError,
    History,
    gd_step,
    max_stable_lr,
    ntk_min_eigenvalue,
    relative_change,
    relative_ntk_change,
    snapshot,
    train,
)
from tests.conftest import TOL

F64 = torch.float64


def _problem(n=24, d=3, width=32, B=3, parametrization="ntk", activation="tanh", seed=0,
             device="cpu", dtype=F64):
    X, y = teacher_data(n, d, generator=seed, device=device, dtype=dtype)
    model = TwoLayer(d, width, activation=activation, parametrization=parametrization,
                     n_networks=B, generator=seed + 1, device=device, dtype=dtype)
    return model, X, y


# Gradient descent -------------------------------------------------------------------------
@pytest.mark.parametrize("parametrization", ["ntk", "standard", "mf"])
def test_small_lr_gd_decreases_loss_monotonically(parametrization):
    # For a smooth loss, GD with a step well below 2/lambda_max of the Hessian descends at
    # every step; a sign error in the update would make the loss grow.
    model, X, y = _problem(parametrization=parametrization)
    lr = 0.2 * float(max_stable_lr(model, X).min())
    hist = train(model, X, y, lr=lr, steps=60)
    diffs = hist.loss[1:] - hist.loss[:-1]
    assert bool((diffs <= 0).all()), diffs.max()
    assert bool((hist.loss[-1] < 0.9 * hist.loss[0]).all())


def test_one_step_matches_hand_written_gradient():
    # dL/da_j = s/n sum_i r_i sigma(h_ij); dL/dw_j = s/n a_j sum_i r_i sigma'(h_ij) x_i/sqrt(d)
    model, X, y = _problem(B=1, activation="tanh", parametrization="mf")
    W, a = model.W[0].detach().clone(), model.a[0].detach().clone()
    s, n, d = model.scale, 24, 3
    h = X @ W.T / d**0.5
    r = s * torch.tanh(h) @ a - y
    ga = s / n * torch.tanh(h).T @ r
    gW = s / n * (a[:, None] * ((1 - torch.tanh(h) ** 2) * r[:, None]).T @ X) / d**0.5
    raw = 0.3
    gd_step(model, X, y, raw)
    # Only the step raw * g is rounded differently (autograd's products vs these, of length
    # n = 24 and N): within ~(n + N + d) eps raw |g|_abs ~ 1e-16 of O(1) parameters.
    torch.testing.assert_close(model.a[0].detach(), a - raw * ga, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(model.W[0].detach(), W - raw * gW, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("per_network_targets", [False, True])
def test_batched_ensemble_training_equals_separate_training(per_network_targets, generator):
    model, X, y = _problem(B=3, parametrization="mf", activation="relu")
    if per_network_targets:
        y = y + 0.1 * torch.randn(3, y.shape[0], generator=generator, dtype=F64)
    singles = [TwoLayer.from_params(**model.params_of(b), activation="relu",
                                    parametrization="mf") for b in range(3)]
    hist = train(model, X, y, lr=0.2, steps=40, record_every=10)
    for b, single in enumerate(singles):
        yb = y[b] if per_network_targets else y
        h1 = train(single, X, yb, lr=0.2, steps=40, record_every=10)
        # Batched vs single products: (n + N + d) eps relative per step, accumulated at most
        # linearly by 40 stable steps (the loss decreases): ~5e-13 worst case, measured
        # 100x below; not bit-identity of the two BLAS calls.
        torch.testing.assert_close(h1.loss[:, 0], hist.loss[:, b], rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(single.W[0], model.W[b], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(single.a[0], model.a[b], rtol=1e-12, atol=1e-14)


def test_frozen_output_layer_stays_fixed():
    model, X, y = _problem()
    model.a.requires_grad_(False)
    a0 = model.a.clone()
    W0 = model.W.detach().clone()
    train(model, X, y, lr=0.5, steps=5)
    assert torch.equal(model.a, a0) and not torch.equal(model.W.detach(), W0)


def test_max_stable_lr_is_the_exact_threshold_for_a_random_features_model():
    # With W frozen the model is linear in a: the linearised dynamics is exact, so GD
    # converges below 2 n / (lr_scale lambda_max) and diverges above it.
    model, X, y = _problem(B=1, width=16, n=12)
    model.W.requires_grad_(False)
    bound = float(max_stable_lr(model, X)[0])
    below = TwoLayer.from_params(model.W, model.a, activation="tanh")
    below.W.requires_grad_(False)
    hist = train(below, X, y, lr=0.95 * bound, steps=400, record_every=400)
    assert bool(hist.loss[-1, 0] < hist.loss[0, 0])
    above = TwoLayer.from_params(model.W, model.a, activation="tanh")
    above.W.requires_grad_(False)
    with pytest.raises(DivergenceError, match=f"Lower lr below {bound:.3g}"):
        train(above, X, y, lr=1.05 * bound, steps=3000)


@pytest.mark.parametrize("parametrization", ["ntk", "standard", "mf"])
def test_huge_lr_raises_divergence_error_naming_lr(parametrization):
    model, X, y = _problem(parametrization=parametrization, activation="relu")
    with pytest.raises(DivergenceError, match=r"lr=1e\+06.*"
                       f"parametrization '{parametrization}', width 32.*Lower lr") as info:
        train(model, X, y, lr=1e6, steps=50)
    if parametrization == "standard":
        assert "shrinks like 1/width" in str(info.value)


# Stochastic gradient descent --------------------------------------------------------------
def test_sgd_same_seed_same_history_other_seed_other_history():
    runs = []
    for seed in (5, 5, 6):
        model, X, y = _problem()
        runs.append(train(model, X, y, lr=0.3, steps=30, batch_size=4, generator=seed,
                          record_every=10))
    # Same seed, same code path: identical bits by construction.
    torch.testing.assert_close(runs[0].loss, runs[1].loss, rtol=0, atol=0)
    assert not torch.allclose(runs[0].loss[1:], runs[2].loss[1:])


def test_sgd_with_the_full_batch_is_gradient_descent():
    m1, X, y = _problem()
    m2, _, _ = _problem()
    h_gd = train(m1, X, y, lr=0.3, steps=20)
    h_sgd = train(m2, X, y, lr=0.3, steps=20, batch_size=X.shape[0], generator=0)
    # The full batch in permuted order: sums over n samples in another order, n eps relative
    # per step, accumulated linearly over 20 stable steps (~1e-13 worst case).
    torch.testing.assert_close(h_sgd.loss, h_gd.loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(m2.W, m1.W, rtol=1e-12, atol=1e-14)


def test_sgd_records_the_full_batch_loss():
    model, X, y = _problem()
    hist = train(model, X, y, lr=0.3, steps=7, batch_size=5, generator=0, record_every=7)
    with torch.no_grad():
        full = 0.5 * ((model(X) - y) ** 2).mean(-1)
    # The recorded loss is this full-batch expression on the same parameters: a few ulps.
    torch.testing.assert_close(hist.loss[-1], full, rtol=1e-14, atol=0)


# History and diagnostics ------------------------------------------------------------------
def test_history_records_requested_steps_and_diagnostics():
    model, X, y = _problem(B=2, width=10, d=2)
    W_init = model.W.detach().clone()
    hist = train(model, X, y, lr=0.1, steps=25, record_every=10, diagnostics={
        "dW": relative_change(model, "W"), "da": relative_change(model, "a"),
        "dK": relative_ntk_change(model, X), "lam": ntk_min_eigenvalue(X),
        "W": snapshot("W")})
    assert isinstance(hist, History)
    assert hist.step.tolist() == [0, 10, 20, 25] and hist.step.dtype == torch.long
    assert hist.loss.shape == (4, 2)
    assert hist.diagnostics["W"].shape == (4, 2, 10, 2)
    for k in ("dW", "da", "dK", "lam"):
        assert hist.diagnostics[k].shape == (4, 2)
    assert torch.equal(hist.diagnostics["W"][0], W_init)
    assert torch.equal(hist.diagnostics["W"][-1], model.W.detach())
    assert float(hist.diagnostics["dW"][0].abs().max()) == 0.0
    assert bool((hist.diagnostics["dW"][-1] > 0).all())
    want = torch.linalg.matrix_norm(W_init - model.W.detach()) / torch.linalg.matrix_norm(W_init)
    # Two Frobenius norms of 20 entries and a ratio: within ~50 eps relative.
    torch.testing.assert_close(hist.diagnostics["dW"][-1], want, rtol=1e-12, atol=0)
    assert bool((hist.diagnostics["lam"] > 0).all())
    torch.testing.assert_close(hist.t, hist.step.to(F64) * 0.1)
    assert hist.lr == 0.1 and hist.raw_lr == 0.1


def test_zero_steps_records_the_initial_state_and_changes_nothing():
    model, X, y = _problem()
    W0 = model.W.detach().clone()
    hist = train(model, X, y, lr=0.1, steps=0)
    assert hist.step.tolist() == [0] and torch.equal(model.W.detach(), W0)


def test_mf_raw_step_is_lr_times_width():
    model, X, y = _problem(parametrization="mf", width=64)
    assert train(model, X, y, lr=0.25, steps=1).raw_lr == pytest.approx(16.0)


def test_progress_bar_runs(capsys):
    model, X, y = _problem()
    hist = train(model, X, y, lr=0.1, steps=3, progress=True)
    assert hist.loss.shape == (4, 3)
    assert "train (ntk, N=32)" in capsys.readouterr().err


def test_training_on_device_keeps_device_and_dtype(device, dtype):
    model, X, y = _problem(device=device, dtype=dtype)
    hist = train(model, X, y, lr=0.1, steps=5, batch_size=8, generator=0)
    assert hist.loss.device.type == device and hist.loss.dtype == dtype
    assert model.W.device.type == device


@pytest.mark.gpu
def test_cuda_training_matches_cpu(dtype):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    m_cpu, X, y = _problem(dtype=dtype)
    m_gpu, Xg, yg = _problem(dtype=dtype, device="cuda")
    h_cpu = train(m_cpu, X, y, lr=0.3, steps=50, record_every=10)
    h_gpu = train(m_gpu, Xg, yg, lr=0.3, steps=50, record_every=10)
    tol = TOL[dtype]
    torch.testing.assert_close(h_gpu.loss.cpu(), h_cpu.loss, rtol=tol, atol=tol)
    torch.testing.assert_close(m_gpu.W.detach().cpu(), m_cpu.W.detach(), rtol=tol, atol=tol)


# Lazy versus mean-field: the introduction chapter's scaling law ---------------------------
def _relative_weight_change(parametrization: str, widths, B=8, steps=100, lr=0.5):
    X, y = teacher_data(16, 4, generator=0, dtype=F64)
    means = []
    for N in widths:
        model = TwoLayer(4, N, activation="tanh", parametrization=parametrization,
                         n_networks=B, generator=N, dtype=F64)
        hist = train(model, X, y, lr=lr, steps=steps, record_every=steps,
                     diagnostics={"dW": relative_change(model, "W")})
        means.append(float(hist.diagnostics["dW"][-1].mean()))
    return fit_loglog_slope(widths, means)


WIDTHS = [128, 256, 512, 1024, 2048]


def test_ntk_relative_weight_change_falls_like_inverse_sqrt_width():
    # Lazy regime: each neuron moves by O(N^{-1/2}) in theory time t = 50, |W_0|_F ~ sqrt(N d).
    fit = _relative_weight_change("ntk", WIDTHS)
    assert_slope_close(fit, -0.5)
    assert abs(fit.slope) > 4 * fit.stderr  # and clearly not the mean-field slope 0


def test_mf_relative_weight_change_is_width_independent():
    # Mean-field regime with lr in theory units (raw step lr * N): neurons move by O(1).
    fit = _relative_weight_change("mf", WIDTHS)
    assert_slope_close(fit, 0.0)
    assert abs(fit.slope + 0.5) > 4 * fit.stderr  # and clearly not the lazy slope -1/2


# Validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("change,exc,match", [
    ({"model": "net"}, TypeError, "'model' parameter of mfteach.training.train"),
    ({"X": torch.ones(24, 5, dtype=F64)}, ValueError, r"'X' parameter .* shape \(\*, 3\)"),
    ({"X": torch.ones(24, 3)}, TypeError, "'X' parameter .* same dtype as 'model'"),
    ({"y": torch.ones(23, dtype=F64)}, ValueError, r"'y' parameter .* \(24,\) or \(3, 24\)"),
    ({"y": torch.ones(2, 24, dtype=F64)}, ValueError, "'y' parameter"),
    ({"y": torch.ones(24)}, TypeError, "'y' parameter .* same dtype as 'X'"),
    ({"lr": 0.0}, ValueError, "'lr' parameter .* > 0"),
    ({"lr": float("nan")}, ValueError, "'lr' parameter"),
    ({"lr": "0.1"}, TypeError, "'lr' parameter"),
    ({"steps": -1}, ValueError, "'steps' parameter"),
    ({"steps": 2.5}, TypeError, "'steps' parameter"),
    ({"batch_size": 0, "generator": 0}, ValueError, "'batch_size' parameter"),
    ({"batch_size": 25, "generator": 0}, ValueError, "'batch_size' parameter .* <= 24"),
    ({"batch_size": 4}, TypeError, "'generator' parameter .* when batch_size is given"),
    ({"batch_size": 4, "generator": "seed"}, TypeError, "'generator' parameter"),
    ({"record_every": 0}, ValueError, "'record_every' parameter"),
    ({"diagnostics": [len]}, TypeError, "'diagnostics' parameter"),
    ({"diagnostics": {"bad": lambda m: m.W.sum()}}, TypeError, "'diagnostics' parameter"),
    ({"progress": 1}, TypeError, "'progress' parameter"),
    ({"divergence_factor": 1.0}, ValueError, "'divergence_factor' parameter"),
])
def test_train_rejects_bad_arguments(change, exc, match):
    model, X, y = _problem()
    args = {"model": model, "X": X, "y": y, "lr": 0.1, "steps": 2} | change
    with pytest.raises(exc, match=match):
        train(args.pop("model"), args.pop("X"), args.pop("y"), **args)


def test_train_rejects_a_model_without_trainable_parameters():
    model, X, y = _problem()
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="'model' parameter .* trainable"):
        train(model, X, y, lr=0.1, steps=1)


def test_diagnostic_helpers_reject_bad_names():
    model, _, _ = _problem()
    with pytest.raises(ValueError, match="'name' parameter"):
        relative_change(model, "b")
    with pytest.raises(ValueError, match="'name' parameter"):
        snapshot("scale")
    with pytest.raises(TypeError, match="'model' parameter"):
        relative_change("model")


# Nothing silent: bad data, absurd rates and sizes, a robust divergence handler ------------
def test_train_refuses_a_raw_step_that_the_dtype_cannot_hold():
    # float32 holds steps up to 3.4e38: 1e39 used to fail deep inside torch (RuntimeError).
    model, X, y = _problem(dtype=torch.float32)
    with pytest.raises(ValueError, match="'lr' parameter .* representable in torch.float32"):
        train(model, X, y, lr=1e39, steps=2)
    with pytest.raises(ValueError, match="'lr' parameter .* representable"):
        train(model, X, y, lr=1e-300, steps=2)  # rounds every update to nothing
    mf, X, y = _problem(parametrization="mf", width=64, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"'lr' parameter .* lr \* lr_scale \(64\)"):
        train(mf, X, y, lr=1e37, steps=2)  # raw step 6.4e38


@pytest.mark.parametrize("change, match", [
    (lambda X, y: (X[:0], y[:0]), "'X' parameter .* n >= 1"),
    (lambda X, y: (X * 1e200, y), "'X' parameter .* squared outputs are finite"),
    (lambda X, y: (X, y * 1e200), "'y' parameter .* squared error is finite"),
])
def test_train_refuses_empty_or_overflowing_data_before_any_step(change, match):
    # Such data used to end in an IndexError or in a DivergenceError at step 0 suggesting a
    # smaller lr, which cannot help.
    model, X, y = _problem(activation="relu")  # unbounded outputs
    X, y = change(X, y)
    with pytest.raises(ValueError, match=match):
        train(model, X, y, lr=0.1, steps=2)


def test_train_refuses_absurd_step_counts_at_once():
    model, X, y = _problem()
    with pytest.raises(ValueError, match="'steps' parameter .* at most 1e\\+09 steps"):
        train(model, X, y, lr=0.1, steps=10**12)


def test_divergence_handler_raises_divergence_error_when_no_bound_can_be_computed(
        monkeypatch):
    # The suggested lr comes from an eigenvalue problem; when it fails (it used to escape as
    # LinAlgError), the run still stops with DivergenceError and a plain suggestion.
    model, X, y = _problem()

    def broken(*args, **kwargs):
        raise torch.linalg.LinAlgError("no convergence")

    monkeypatch.setattr(torch.linalg, "eigvalsh", broken)
    with pytest.raises(DivergenceError, match=r"Lower lr, e\.g\. to 100000\."):
        train(model, X, y, lr=1e6, steps=50)


def test_divergence_on_huge_inputs_gives_a_finite_bound():
    # Inputs of size 1e150, a kernel of size 1e300 (eigh runs on it rescaled): the bound is
    # tiny but finite and positive, and the divergence message quotes it.
    model, X, y = _problem(activation="relu")
    X = X * 1e150
    bound = float(max_stable_lr(model, X)[0])  # before training moves the weights
    assert 0 < bound < 1e-100
    with pytest.raises(DivergenceError, match="Lower lr below") as info:
        train(model, X, y, lr=1.0, steps=5)
    assert f"{bound:.3g}" in str(info.value)


def test_max_stable_lr_is_robust_and_exact_at_the_edges():
    model, X, _ = _problem(activation="relu")
    with pytest.raises(ValueError, match="'X' parameter .* n >= 1"):
        max_stable_lr(model, X[:0])
    # ReLU(0) = 0 and relu'(0) = 0: the kernel of X = 0 vanishes, every lr is stable.
    assert bool(torch.isinf(max_stable_lr(model, torch.zeros_like(X))).all())
    # Scaling X by s scales this ReLU kernel by s^2 (positive homogeneity): the bound by 1/s^2.
    s = 2.0**80
    torch.testing.assert_close(max_stable_lr(model, X * s) * s**2, max_stable_lr(model, X),
                               rtol=1e-10, atol=0)


def test_gd_step_and_diagnostics_check_their_arguments():
    model, X, y = _problem()
    with pytest.raises(TypeError, match="'X' parameter of mfteach.training.gd_step"):
        gd_step(model, X.numpy(), y, 0.1)
    with pytest.raises(TypeError, match="'raw_lr' parameter"):
        gd_step(model, X, y, "0.1")
    with pytest.raises(ValueError, match="'X' parameter of mfteach.training.relative_ntk"):
        relative_ntk_change(model, torch.zeros_like(X))  # K_0 = 0 for tanh at 0: no ratio
    with pytest.raises(TypeError, match="'model' parameter of mfteach.training.relative_ntk"):
        relative_ntk_change("model", X)
    zero = TwoLayer.from_params(torch.zeros(3, 2, dtype=F64), torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="'model' parameter .* non-zero"):
        relative_change(zero, "W")
    fn = relative_change(model, "W")
    with pytest.raises(ValueError, match="'model' parameter .* shape"):
        fn(TwoLayer(3, 8, generator=0, dtype=F64))
    with pytest.raises(TypeError, match="'X' parameter of mfteach.training.ntk_min"):
        ntk_min_eigenvalue(X.numpy())


@pytest.mark.parametrize("make", [lambda: 2**64 - 1, lambda: torch.Generator().manual_seed(5)])
def test_sgd_accepts_any_64_bit_seed_and_generators(make):
    runs = []
    for _ in range(2):
        model, X, y = _problem()
        runs.append(train(model, X, y, lr=0.1, steps=5, batch_size=4, generator=make()).loss)
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)  # same seed and code path
