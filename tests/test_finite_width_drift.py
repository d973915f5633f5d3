"""Tests of the NTK drift during the whole training and of the hidden weights' law.

Theory against computation: the sup-in-time drift exponent (heuristics: -1 smooth, between
-1/2 and -1 for ReLU) over 5 independent data sets with the spread's standard error; the
fraction of converged networks rising with the width (Carvalho et al. 2023, corollary); exact
cumulants for non-Gaussian hidden weights against Monte Carlo (k-statistic standard errors),
against the closed forms for ReLU, and against the Edgeworth (CLT) rate 1/d.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

import mfteach.finite_width as fw
from mfteach.activations import get_activation
from mfteach.gaussian import gauss_hermite_expectation_1d
from mfteach.stats import bonferroni_z

F64 = torch.float64


# ------------------------------------------------------------------------------------------
# The drift during the whole training
# ------------------------------------------------------------------------------------------

@functools.cache
def _book_study(activation: str) -> fw.DriftStudy:
    """The chapter's call (defaults: widths 32..2048, 5 data sets, 4 networks)."""
    return fw.ntk_drift_study(activation, [32, 128, 512, 2048], generator=0)


def test_sup_drift_slopes_over_datasets():
    # Heuristic exponents: tanh -1, ReLU between -1/2 and -1; both are steeper than the
    # rigorous n^{-1/2}, and tanh steeper than ReLU. Margins: z standard errors of the spread
    # over 5 data sets (Bonferroni over the 5 comparisons below).
    z = bonferroni_z(5)
    tanh, relu = _book_study("tanh").spread, _book_study("relu").spread
    for sp in (tanh, relu):
        assert sp.n >= 5
        assert sp.mean + z * sp.stderr < -0.5, sp  # steeper than the CLT bound
        assert sp.mean + z * sp.stderr > -1.0, sp  # not steeper than the smooth heuristic
    both = math.hypot(tanh.stderr, relu.stderr)
    assert tanh.mean < relu.mean - z * both, (tanh, relu)


def test_sup_drift_is_at_least_final_drift_and_starts_at_zero():
    for act in ("tanh", "relu"):
        st = _book_study(act)
        assert bool((st.sup_drift >= st.final_drift).all())
        assert bool((st.sup_drift > 0).all())
        for r in st.datasets:
            for s, dr, loss in zip(r.step, r.drift, r.loss):
                assert int(s[0]) == 0 and bool((dr[0] == 0).all())
                # training stopped at the first record where every network had been below
                # the threshold, or at max_steps
                ever = (loss < st.loss_threshold).any(0)
                assert bool(ever.all()) or int(s[-1]) == st.max_steps
                assert not bool((loss[:-1] < st.loss_threshold).any(0).all())
        # the book-size networks all converge: the corollary at large width
        assert bool(st.reached.all())


def test_fraction_reaching_threshold_rises_with_width():
    # ReLU on 20 points: width 2 (12 parameters) cannot interpolate 20 generic points, so
    # the loss stays above the threshold; wider networks reach it (global minimum).
    st = fw.ntk_drift_study("relu", [2, 4, 8, 64], n_datasets=5, n_networks=8,
                            fit_min_width=8, generator=1)
    p, se = st.fraction, st.fraction_stderr
    z = bonferroni_z(len(p) - 1)
    for j in range(len(p) - 1):
        assert float(p[j + 1]) >= float(p[j]) - z * math.hypot(float(se[j]), float(se[j + 1])), p
    assert float(p[-1]) == 1.0, p
    assert float(p[0]) < 0.5, p  # the corollary is tested: small networks do fail
    # steps_to_threshold is inf exactly where the threshold was not reached
    for r in st.datasets:
        assert bool((torch.isinf(r.steps_to_threshold) == ~r.reached).all())
        assert bool((r.threshold_step[r.reached] <= r.steps_run.unsqueeze(1).expand_as(
            r.reached)[r.reached]).all())


def test_one_dataset_recomputed_alone():
    args = dict(n_networks=2, max_steps=30, record_every=10, n_train=6, d=3)
    st = fw.ntk_drift_study("tanh", [16, 64], n_datasets=3, generator=7, **args)
    alone = fw.ntk_drift_dataset("tanh", [16, 64], generator=st.seeds[2], **args)
    assert torch.equal(alone.sup_drift, st.datasets[2].sup_drift)
    assert torch.equal(alone.final_drift, st.final_drift[2])
    # the width-64 networks do not depend on the other widths
    wider = fw.ntk_drift_dataset("tanh", [64, 128], generator=st.seeds[2], **args)
    assert torch.equal(wider.sup_drift[0], st.datasets[2].sup_drift[1])
    # fewer data sets: a prefix of the same seeds; distinct data sets get distinct seeds
    st2 = fw.ntk_drift_study("tanh", [16, 64], n_datasets=2, generator=7, **args)
    assert st2.seeds == st.seeds[:2] and len(set(st.seeds)) == 3
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = fw.ntk_drift_study("tanh", [16, 64], n_datasets=2, generator=g1, **args)
    b = fw.ntk_drift_study("tanh", [16, 64], n_datasets=2, generator=g2, **args)
    assert a.seeds == b.seeds


def test_plot_drift_study_draws_theory_and_measurement():
    st = fw.ntk_drift_study("relu", [8, 32], n_datasets=2, n_networks=2, max_steps=20,
                            generator=0)
    fig, (ax1, ax2) = fw.plot_drift_study([st], fraction=st)
    labels = [ln.get_label() for ln in ax1.get_lines()]
    assert "theory: slope -0.5" in labels and "theory: slope -1" in labels
    assert ax1.get_xlabel() == "width N" and ax2.get_xlabel() == "width N"
    assert ax1.get_legend() is not None and ax2.get_legend() is not None
    with pytest.raises(TypeError, match="'study' parameter"):
        fw.plot_drift_study("not a study")


# ------------------------------------------------------------------------------------------
# The hidden weights' law
# ------------------------------------------------------------------------------------------

E1 = torch.tensor([2.0, 0.0, 0.0, 0.0], dtype=F64)  # sqrt(d) e_1, d = 4: u = w_1
DELOC = torch.ones(6, dtype=F64)  # all coordinates equal, |x|^2/d = 1

MC_CASES = [(act, hidden, name, readout)
            for act in ("relu", "tanh") for hidden in ("rademacher", "uniform")
            for name in ("e1", "deloc") for readout in ("gaussian",)]
MC_CASES += [("relu", "uniform", "deloc", "exponential"), ("tanh", "rademacher", "e1",
                                                            "exponential")]


@pytest.mark.parametrize("act,hidden,name,readout", MC_CASES)
def test_sampled_cumulants_match_the_exact_hidden_law(act, hidden, name, readout, generator):
    x = E1 if name == "e1" else DELOC
    n, S = 2, 300_000
    f = fw.sample_outputs(x, activation=act, width=n, n_samples=S, generator=generator,
                          readout=readout, hidden=hidden)[:, 0]
    c = fw.k_statistics(f)
    theory = fw.hidden_law_cumulants(act, x, readout=readout, hidden=hidden)
    z = bonferroni_z(3 * len(MC_CASES))
    for r in (2, 3, 4):
        est, se = float(c.kappa[r - 1]), float(c.stderr[r - 1])
        assert abs(est - theory.kappa(n)[r - 1]) <= z * se, (r, est, se, theory.kappa(n))
    if name == "e1" and readout == "gaussian":
        # the Gaussian-hidden value is rejected: the law of the weights shows at x = e_1
        gauss = fw.hidden_law_cumulants(act, x, readout=readout)
        kurt, kse = float(c.excess_kurtosis), float(c.excess_kurtosis_stderr)
        assert abs(kurt - theory.excess_kurtosis(n)) <= z * kse
        assert abs(kurt - gauss.excess_kurtosis(n)) > z * kse, (kurt, kse, gauss)


@pytest.mark.parametrize("act", ["relu", "tanh", "erf"])
@pytest.mark.parametrize("x", [E1, DELOC, torch.tensor([0.3, -1.2, 2.0], dtype=F64)])
@pytest.mark.parametrize("readout", fw.READOUTS)
def test_gaussian_hidden_is_output_cumulants(act, x, readout):
    q = float((x**2).sum()) / x.numel()
    a = fw.hidden_law_cumulants(act, x, readout=readout)
    b = fw.output_cumulants(act, readout=readout, q=q)
    assert a.hidden == "gaussian" and a.q == pytest.approx(b.q, rel=1e-15)
    for u, v in zip((*a.kappa_neuron, a.kurtosis_coef), (*b.kappa_neuron, b.kurtosis_coef)):
        assert u == pytest.approx(v, rel=1e-12, abs=1e-15)


def test_exact_values_at_e1():
    # u = w_1: ReLU E phi^m = E (w_+)^m; Rademacher 1/2, uniform 3^{m/2}/(2(m+1)).
    k = {h: fw.hidden_law_cumulants("relu", E1, hidden=h).kurtosis_coef
         for h in fw.HIDDEN_LAWS}
    assert k["gaussian"] == pytest.approx(15.0, rel=1e-12)
    assert k["rademacher"] == pytest.approx(3.0, rel=1e-12)  # 3*(1/2)/(1/4) - 3
    assert k["uniform"] == pytest.approx(7.8, rel=1e-12)  # 3*(9/10)/(1/4) - 3
    # tanh, Rademacher: phi(u)^2 = tanh(1)^2 is constant, kappa_4(Z) = 3 t^4 - 3 t^4 = 0
    t = fw.hidden_law_cumulants("tanh", E1, hidden="rademacher")
    assert abs(t.kurtosis_coef) < 100 * np.finfo(float).eps
    # tanh, uniform: against an independent composite Simpson rule on [0, sqrt 3]
    u = torch.linspace(0, math.sqrt(3), 20001, dtype=F64)
    w = torch.ones_like(u)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    h = (u[1] - u[0]) / 3

    def moment(m):
        return float((w * torch.tanh(u) ** m).sum() * h) / math.sqrt(3)  # even m

    exact = 3 * moment(4) / moment(2) ** 2 - 3
    got = fw.hidden_law_cumulants("tanh", E1, hidden="uniform").kurtosis_coef
    assert got == pytest.approx(exact, rel=1e-10)


@pytest.mark.parametrize("hidden", ["rademacher", "uniform"])
@pytest.mark.parametrize("d", [1, 3, 10, 100, 400])
def test_relu_delocalised_closed_form(hidden, d):
    # E relu(u)^2 = q/2, E relu(u)^4 = E u^4 / 2 = (3 + kappa_4(w)/d)/2: exactly 1/d.
    x = torch.ones(d, dtype=F64)
    c = fw.hidden_law_cumulants("relu", x, hidden=hidden)
    k4w = fw.HIDDEN_KAPPA4[hidden]
    tol = 64 * d * np.finfo(float).eps * 15  # sums of O(d) to O(2 d^2) terms
    assert c.kurtosis_coef == pytest.approx(15 + 6 * k4w / d, abs=tol)
    r = fw.hidden_law_cumulants("relu", x, hidden=hidden, readout="rademacher")
    assert r.kurtosis_coef == pytest.approx(2 * (3 + k4w / d) - 3, abs=tol)


@pytest.mark.parametrize("hidden", ["rademacher", "uniform"])
def test_delocalised_tanh_tends_to_gaussian_at_rate_one_over_d(hidden):
    # Edgeworth: E g(u) - E g(z) = kappa_4(u)/24 E g''''(z) + O(d^-2), kappa_4(u) =
    # kappa_4(w)/d, and E g''''(z) = E[g(z) He_4(z)] (Gaussian integration by parts). So
    # d * (coef_d - coef_gauss) -> C with a remainder O(1/d): it halves as d doubles.
    act = get_activation("tanh")

    def he4_moment(m):
        return float(gauss_hermite_expectation_1d(
            lambda z: act.fn(z) ** m * (z**4 - 6 * z**2 + 3), 1.0, degree=200))

    g = fw.hidden_law_cumulants("tanh", DELOC)
    mu2, mu4 = g.phi_moments[1], g.phi_moments[3]
    k4w = fw.HIDDEN_KAPPA4[hidden]
    d2, d4 = k4w / 24 * he4_moment(2), k4w / 24 * he4_moment(4)
    C = 3.0 * (d4 / mu2**2 - 2 * mu4 * d2 / mu2**3)  # Gaussian readout: coef = 3 mu4/mu2^2 - 3
    ds = [32, 64, 128, 256]
    err = [d * (fw.hidden_law_cumulants("tanh", torch.ones(d, dtype=F64),
                                        hidden=hidden).kurtosis_coef - g.kurtosis_coef) - C
           for d in ds]
    assert abs(err[0]) < 0.05 * abs(C), (err, C)
    for a, b in zip(err, err[1:]):
        assert 0.4 <= b / a <= 0.6, err  # O(1/d): ratio 1/2 + O(1/d)


def test_hidden_law_sampling_moments(generator):
    # The weights themselves: mean 0, variance 1, fourth cumulant HIDDEN_KAPPA4.
    x = torch.tensor([math.sqrt(3.0), 0.0, 0.0], dtype=F64)  # u = w_1
    for h in fw.HIDDEN_LAWS:
        f = fw.sample_outputs(x, activation="linear", width=1, n_samples=200_000,
                              generator=generator, readout="rademacher", hidden=h)[:, 0]
        # a * w with a = +-1 independent: same law as w for a symmetric w
        c = fw.k_statistics(f)
        z = bonferroni_z(6)
        assert abs(float(c.kappa[1]) - 1.0) <= z * float(c.stderr[1])
        assert abs(float(c.kappa[3]) - fw.HIDDEN_KAPPA4[h]) <= z * float(c.stderr[3])


def test_gaussian_hidden_sampling_unchanged():
    x = torch.ones(2, 3, dtype=F64)
    a = fw.sample_outputs(x, activation="tanh", width=5, n_samples=40, generator=3)
    b = fw.sample_outputs(x, activation="tanh", width=5, n_samples=40, generator=3,
                          hidden="gaussian")
    assert torch.equal(a, b)


def test_hidden_law_and_drift_study_on_device(device):
    x = DELOC.to(device)
    g = torch.Generator(device=device).manual_seed(0)
    f = fw.sample_outputs(x, activation="relu", width=3, n_samples=100_000, generator=g,
                          hidden="uniform", device=device)
    assert f.device.type == torch.device(device).type and f.dtype == F64
    c = fw.k_statistics(f[:, 0])
    th = fw.hidden_law_cumulants("relu", x, hidden="uniform")
    z = bonferroni_z(2)
    for r in (2, 4):
        assert abs(float(c.kappa[r - 1]) - th.kappa(3)[r - 1]) <= z * float(c.stderr[r - 1])
    st = fw.ntk_drift_study("tanh", [16, 64], n_datasets=2, n_networks=2, max_steps=20,
                            generator=0, device=device)
    assert bool((st.sup_drift >= st.final_drift).all()) and bool((st.sup_drift > 0).all())


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------

BAD = [
    (lambda: fw.sample_outputs(E1, activation="relu", width=2, n_samples=4, generator=0,
                               hidden="laplace"), "hidden"),
    (lambda: fw.hidden_law_cumulants("relu", E1, hidden="laplace"), "hidden"),
    (lambda: fw.hidden_law_cumulants("relu", torch.zeros(3, dtype=F64)), "x"),
    (lambda: fw.hidden_law_cumulants("relu", torch.ones(2, 3, dtype=F64)), "x"),
    (lambda: fw.hidden_law_cumulants("relu", torch.tensor([1.0, 2.0], dtype=F64),
                                     hidden="uniform"), "x"),
    (lambda: fw.hidden_law_cumulants("relu", torch.arange(1.0, 40.0, dtype=F64),
                                     hidden="rademacher"), "x"),
    (lambda: fw.ntk_drift_study("tanh", [8, 16], n_datasets=1, generator=0), "n_datasets"),
    (lambda: fw.ntk_drift_study("tanh", [8, 16], fit_min_width=16, generator=0),
     "fit_min_width"),
    (lambda: fw.ntk_drift_study("tanh", [8, 16], loss_threshold=0.0, generator=0),
     "loss_threshold"),
    (lambda: fw.ntk_drift_study("tanh", [8], generator=0), "widths"),
    (lambda: fw.ntk_drift_study("tanh", [8, 16], max_steps=10**12, generator=0),
     "max_steps"),
    (lambda: fw.ntk_drift_dataset("nope", [8, 16], generator=0), "activation"),
    (lambda: fw.ntk_drift_dataset("tanh", [8, 16], n_networks=1, generator=0), "n_networks"),
]


@pytest.mark.parametrize("call,name", BAD)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=f"'{name}' parameter") as e:
        call()
    assert "\n" not in str(e.value)
