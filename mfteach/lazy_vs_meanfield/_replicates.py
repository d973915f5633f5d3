r"""Width sweeps repeated over independent data sets, and the split of the NTK-scaling gap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import check_bool, check_budget, check_choice, check_int, fail
from ..stats import MCEstimate, SlopeSpread, mc_estimate, slope_spread
from ._sweep import INITS, PARAMETRIZATIONS, WidthSweep, _fn, width_sweep

__all__ = ["SweepReplicates", "replicate_sweeps", "dataset_seeds", "GapDecomposition",
           "gap_decomposition"]


def dataset_seeds(generator: int | torch.Generator, n_datasets: int, *,
                  fn: str = "mfteach.lazy_vs_meanfield.dataset_seeds") -> tuple[int, ...]:
    r"""One independent seed per data set, derived from ``generator``.

    An int seed ``s`` gives data set ``k`` the first word of
    ``numpy.random.SeedSequence([s, k]).generate_state(1)``, so data set ``k`` does not
    depend on how many others are run; a ``torch.Generator`` draws ``n_datasets`` seeds from
    its stream.

    Examples
    --------
    >>> dataset_seeds(0, 3)[:2] == dataset_seeds(0, 2)
    True
    """
    n_datasets = check_int(n_datasets, "n_datasets", fn, min=1)
    check_budget("n_datasets", fn, n_datasets, nbytes=64.0 * n_datasets)
    if isinstance(generator, torch.Generator):
        draw = torch.randint(0, 2**62, (n_datasets,), generator=generator,
                             device=generator.device)
        return tuple(int(v) for v in draw.tolist())
    if isinstance(generator, bool) or not isinstance(generator, (int, np.integer)):
        fail("generator", fn, "an int seed >= 0 or a torch.Generator", generator,
             exc=TypeError)
    seed = int(generator)
    if not 0 <= seed <= 2**64 - 1:
        fail("generator", fn, "an int seed in [0, 2**64 - 1] or a torch.Generator", generator)
    return tuple(int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0]
                     % 2**62) for k in range(n_datasets))


@dataclass(frozen=True)
class SweepReplicates:
    r"""The same :func:`~mfteach.lazy_vs_meanfield.width_sweep` on independent data sets.

    Attributes
    ----------
    sweeps : tuple of WidthSweep
        One per data set (its own training points, test points and initial networks).
    seeds : tuple of int
        The seed of each data set (:func:`dataset_seeds`).
    weight_slope, kernel_slope : SlopeSpread
        The per-data-set weighted slopes, their mean, spread and standard error.
    """

    sweeps: tuple[WidthSweep, ...]
    seeds: tuple[int, ...]
    weight_slope: SlopeSpread
    kernel_slope: SlopeSpread

    @property
    def widths(self) -> tuple[int, ...]:
        return self.sweeps[0].widths

    @property
    def parametrization(self) -> str:
        return self.sweeps[0].parametrization

    @property
    def activation(self) -> str:
        return self.sweeps[0].activation

    @property
    def init(self) -> str:
        return self.sweeps[0].init

    def test_loss(self) -> Tensor:
        """Final held-out loss, ensemble mean per data set and width, shape (n_datasets, W)."""
        return torch.stack([s.final_test_loss.mean(1) for s in self.sweeps])

    def train_loss(self) -> Tensor:
        """Final training loss, ensemble mean per data set and width, (n_datasets, W)."""
        return torch.stack([s.final_loss.mean(1) for s in self.sweeps])

    def summary(self, digits: int = 2) -> str:
        """Both slopes as mean ± standard error over the data sets, with the predictions."""
        from ._sweep import predicted_slope

        digits = check_int(digits, "digits", _fn("SweepReplicates.summary"), min=1, max=17)
        p, a = self.parametrization, self.activation
        out = []
        for q, sp in (("weights", self.weight_slope), ("kernel", self.kernel_slope)):
            out.append(f"{q} slope {sp.mean:+.{digits}f} ± {sp.stderr:.{digits}f} "
                       f"(sd {sp.sd:.{digits}f}; heuristic {predicted_slope(q, p, a):+.2f})")
        return f"{p:>3} {a}, {len(self.sweeps)} data sets: " + ", ".join(out)


def replicate_sweeps(widths: Sequence[int], parametrization: str, *, n_datasets: int = 5,
                     activation: str = "relu", lr: float = 0.5, steps: int = 200,
                     n_networks: int = 16, d: int = 4, n_samples: int = 20,
                     kind: str = "two_index", record_every: int = 4, n_test: int = 200,
                     init: str = "standard", generator: int | torch.Generator,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None,
                     progress: bool = False) -> SweepReplicates:
    r"""Run :func:`~mfteach.lazy_vs_meanfield.width_sweep` on ``n_datasets`` data sets.

    Each data set ``k`` is a full sweep with the seed ``dataset_seeds(generator,
    n_datasets)[k]``: new training points, test points and initial networks. A slope that a
    reader interprets is the mean over data sets with its standard error (the residual error
    of one data set's fit understates how much the slope moves from one data set to the next).

    Parameters
    ----------
    widths, parametrization
        As in :func:`~mfteach.lazy_vs_meanfield.width_sweep`.
    n_datasets : int
        At least 2 (the book uses 5).
    activation, lr, steps, n_networks, d, n_samples, kind, record_every, n_test, init
        As in :func:`~mfteach.lazy_vs_meanfield.width_sweep`, for every data set.
    generator : int or torch.Generator
        Gives the data-set seeds (:func:`dataset_seeds`).
    device, dtype
        As in :func:`~mfteach.lazy_vs_meanfield.width_sweep`.
    progress : bool
        tqdm bar over the data sets.

    Returns
    -------
    SweepReplicates

    Raises
    ------
    TypeError, ValueError
        As :func:`~mfteach.lazy_vs_meanfield.width_sweep` (named as that function's), and
        for ``n_datasets < 2``.

    Examples
    --------
    >>> r = replicate_sweeps([8, 16, 32], "ntk", n_datasets=2, steps=10, n_networks=2,
    ...                      generator=0)
    >>> len(r.sweeps), r.kernel_slope.n
    (2, 2)
    """
    fn = _fn("replicate_sweeps")
    n_datasets = check_int(n_datasets, "n_datasets", fn, min=2)
    check_bool(progress, "progress", fn)
    _check_count(fn, n_datasets, widths, steps)
    kwargs = dict(activation=activation, lr=lr, steps=steps, n_networks=n_networks, d=d,
                  n_samples=n_samples, kind=kind, record_every=record_every, n_test=n_test,
                  init=init, device=device, dtype=dtype)
    return _replicate(widths, parametrization, dataset_seeds(generator, n_datasets, fn=fn),
                      progress, kwargs)


def _check_count(fn: str, n_datasets: int, widths, steps, runs: int = 1) -> None:
    """Refuse a number of data sets whose sweeps would exceed the step limit."""
    n_steps = steps if isinstance(steps, int) and steps > 0 else 1
    n_widths = len(widths) if hasattr(widths, "__len__") else 1
    check_budget("steps", fn, steps, steps=float(runs) * n_steps * max(n_widths, 1))
    check_budget("n_datasets", fn, n_datasets, steps=float(n_datasets) * runs * n_steps
                 * max(n_widths, 1))


def _replicate(widths, parametrization, seeds, progress, kwargs) -> SweepReplicates:
    it = seeds
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(seeds, desc=f"data sets ({parametrization})")
    sweeps = tuple(width_sweep(widths, parametrization, generator=s, **kwargs) for s in it)
    return SweepReplicates(
        sweeps=sweeps, seeds=seeds,
        weight_slope=slope_spread([s.weight_fit for s in sweeps]),
        kernel_slope=slope_spread([s.kernel_fit for s in sweeps]))


@dataclass(frozen=True)
class GapDecomposition:
    r"""Held-out loss of the two scalings and the two initialisations, over data sets.

    ``replicates[(parametrization, init)]`` holds one :class:`SweepReplicates`; every entry
    uses the same data sets (the same seeds), so differences are paired.

    The split at width ``widths[i]`` (held-out loss :math:`E`, means over data sets):

    * ``"initial function"``: :math:`E_{\mathrm{ntk}}^{\mathrm{std}} -
      E_{\mathrm{ntk}}^{\mathrm{anti}}`, what the random :math:`f_0` costs the lazy network;
    * ``"feature learning"``: :math:`E_{\mathrm{ntk}}^{\mathrm{anti}} -
      E_{\mathrm{mf}}^{\mathrm{anti}}`, what moving the kernel gains with :math:`f_0 = 0` in
      both;
    * ``"mean-field f0"``: :math:`E_{\mathrm{mf}}^{\mathrm{std}} -
      E_{\mathrm{mf}}^{\mathrm{anti}}`, the :math:`O(N^{-1/2})` initial function of the
      mean-field network (small);

    and ``total`` = :math:`E_{\mathrm{ntk}}^{\mathrm{std}} - E_{\mathrm{mf}}^{\mathrm{std}}` is
    the first two minus the third, exactly.
    """

    replicates: dict
    widths: tuple[int, ...]

    def test_loss(self, parametrization: str, init: str) -> Tensor:
        """Final held-out loss per data set and width, shape (n_datasets, W)."""
        fn = _fn("GapDecomposition.test_loss")
        check_choice(parametrization, "parametrization", fn, PARAMETRIZATIONS)
        check_choice(init, "init", fn, INITS)
        return self.replicates[(parametrization, init)].test_loss()

    def parts(self, index: int = -1) -> dict[str, MCEstimate]:
        """The split at ``widths[index]``, each part a mean ± standard error over data sets
        (paired differences)."""
        fn = _fn("GapDecomposition.parts")
        W = len(self.widths)
        index = check_int(index, "index", fn, min=-W, max=W - 1)
        E = {key: r.test_loss()[:, index].to(torch.float64)
             for key, r in self.replicates.items()}
        diffs = {
            "total": E[("ntk", "standard")] - E[("mf", "standard")],
            "initial function": E[("ntk", "standard")] - E[("ntk", "antisymmetric")],
            "feature learning": E[("ntk", "antisymmetric")] - E[("mf", "antisymmetric")],
            "mean-field f0": E[("mf", "standard")] - E[("mf", "antisymmetric")],
        }
        return {k: mc_estimate(v) for k, v in diffs.items()}

    def summary(self, index: int = -1) -> str:
        """The split at one width as a few lines of text."""
        parts = self.parts(index)
        N = self.widths[index]
        n = next(iter(parts.values())).n_samples
        lines = [f"held-out loss gap NTK - mean-field at N = {N} ({n} data sets):"]
        for k, est in parts.items():
            lines.append(f"  {k:>16}: {float(est.mean):+.4f} ± {float(est.stderr):.4f}")
        return "\n".join(lines)


def gap_decomposition(widths: Sequence[int], *, n_datasets: int = 5,
                      activation: str = "relu", lr: float = 0.5, steps: int = 200,
                      n_networks: int = 16, d: int = 4, n_samples: int = 20,
                      kind: str = "two_index", record_every: int = 4, n_test: int = 200,
                      generator: int | torch.Generator,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None,
                      progress: bool = False) -> GapDecomposition:
    r"""Split the held-out-loss gap between the scalings into initial function and features.

    Runs :func:`replicate_sweeps` for both parametrizations and both initialisations
    (:func:`~mfteach.lazy_vs_meanfield.init_network`) on the same ``n_datasets`` data sets.
    At :math:`t = 0` both parametrizations have the same function-space kernel
    (:func:`~mfteach.lazy_vs_meanfield.function_space_kernel`); with the antisymmetric
    initialisation they also start from the same function, :math:`f_0 = 0`, so what is left
    of the gap is the mean-field kernel moving: feature learning.

    Parameters
    ----------
    widths : sequence of int
        Even widths (the antisymmetric initialisation pairs the neurons).
    n_datasets, activation, lr, steps, n_networks, d, n_samples, kind, record_every, n_test
        As in :func:`replicate_sweeps`.
    generator, device, dtype, progress
        As in :func:`replicate_sweeps`.

    Returns
    -------
    GapDecomposition

    Examples
    --------
    >>> dec = gap_decomposition([8, 16, 32], n_datasets=2, steps=10, n_networks=2,
    ...                         generator=0)
    >>> sorted(dec.parts())
    ['feature learning', 'initial function', 'mean-field f0', 'total']
    """
    fn = _fn("gap_decomposition")
    kwargs = dict(activation=activation, lr=lr, steps=steps, n_networks=n_networks, d=d,
                  n_samples=n_samples, kind=kind, record_every=record_every, n_test=n_test,
                  device=device, dtype=dtype)
    check_bool(progress, "progress", fn)
    n_datasets = check_int(n_datasets, "n_datasets", fn, min=2)
    _check_count(fn, n_datasets, widths, steps, runs=4)
    seeds = dataset_seeds(generator, n_datasets, fn=fn)  # the same data sets for all four
    reps = {}
    for p in PARAMETRIZATIONS:
        for init in INITS:
            reps[(p, init)] = _replicate(widths, p, seeds, progress, dict(kwargs, init=init))
    return GapDecomposition(replicates=reps, widths=next(iter(reps.values())).widths)
