"""Devices, dtypes and random generators.

The library never touches global state: no ``torch.manual_seed``, no
``torch.set_default_dtype``. Functions that create tensors take keyword-only ``generator``,
``device`` and ``dtype``; this module turns those arguments into concrete objects.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from ._checks import check_floating_dtype, check_int, fail

__all__ = ["default_device", "resolve_device", "resolve_dtype", "as_generator",
           "spawn_generators", "disable_tf32"]

#: Seeds are 64-bit (``torch.Generator.manual_seed`` takes an unsigned 64-bit integer).
MAX_SEED = 2**64 - 1


def default_device() -> torch.device:
    """Return ``cuda`` when a CUDA device is available, else ``cpu``.

    Notebooks call this once (``device = mfteach.default_device()``); the library itself
    defaults to the CPU so that results do not depend on the machine silently.

    Examples
    --------
    >>> default_device().type in {"cpu", "cuda"}
    True
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: torch.device | str | None, fn: str = "mfteach") -> torch.device:
    """Normalise ``device`` (``None`` means CPU) and check that it exists on this machine."""
    if device is None:
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        fail("device", fn, "a torch.device, a string such as 'cpu' or 'cuda', or None", device,
             exc=TypeError)
    try:
        dev = torch.device(device)
    except RuntimeError:
        fail("device", fn, "a valid device string such as 'cpu' or 'cuda'", device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        fail("device", fn, "an available device", device,
             hint="No CUDA device is visible: install a CUDA build of torch, or use "
                  "device='cpu'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        fail("device", fn, f"an available device (cuda:0 to cuda:{torch.cuda.device_count() - 1})",
             device)
    if dev.type not in {"cpu", "cuda"}:
        fail("device", fn, "'cpu' or 'cuda'", device)
    return dev


def resolve_dtype(dtype: torch.dtype | None, fn: str = "mfteach",
                  default: torch.dtype = torch.float64) -> torch.dtype:
    """Normalise ``dtype`` (``None`` means ``default``), which must be floating point."""
    if dtype is None:
        return default
    return check_floating_dtype(dtype, "dtype", fn)


def as_generator(seed_or_generator: int | torch.Generator | None,
                 device: torch.device | str | None = None,
                 fn: str = "mfteach.as_generator") -> torch.Generator:
    """Return a ``torch.Generator`` on ``device`` from an int seed or a generator.

    The PyTorch analogue of scikit-learn's ``check_random_state``. A generator is tied to a
    device: a generator given for another device is an error, not a silent copy.

    Parameters
    ----------
    seed_or_generator : int or torch.Generator
        A seed in ``[0, 2**64 - 1]``, or an existing generator (returned as is, so draws
        continue).
    device : torch.device or str, optional
        Where the random numbers are drawn; CPU by default.

    Raises
    ------
    TypeError
        When given anything other than an int or a generator (``None`` included: randomness is
        never hidden in mfteach).
    ValueError
        For a seed outside ``[0, 2**64 - 1]``, or a generator on another device.

    Examples
    --------
    >>> g = as_generator(0)
    >>> float(torch.randn(1, generator=g)) == float(torch.randn(1, generator=as_generator(0)))
    True
    """
    dev = resolve_device(device, fn)
    if isinstance(seed_or_generator, torch.Generator):
        if seed_or_generator.device.type != dev.type:
            fail("generator", fn, f"a generator on the {dev.type} device", seed_or_generator,
                 hint=f"It lives on {seed_or_generator.device}; create one with "
                      f"torch.Generator(device={dev.type!r}) or pass an int seed.")
        return seed_or_generator
    if isinstance(seed_or_generator, bool) or not isinstance(seed_or_generator,
                                                             numbers.Integral):
        fail("generator", fn, "an int seed or a torch.Generator", seed_or_generator,
             exc=TypeError)
    if not 0 <= seed_or_generator <= MAX_SEED:
        fail("generator", fn, "an int seed in [0, 2**64 - 1]", seed_or_generator)
    g = torch.Generator(device=dev)
    g.manual_seed(int(seed_or_generator))
    return g


def spawn_generators(generator: int | torch.Generator, n: int,
                     device: torch.device | str | None = None,
                     fn: str = "mfteach.spawn_generators") -> list[torch.Generator]:
    """Derive ``n`` independent generators from one seed or generator.

    Streams are derived with :class:`numpy.random.SeedSequence`, never by arithmetic on a seed
    (``seed + 1`` would make seed ``s + 1``'s first stream equal seed ``s``'s second). An int
    seed is the entropy of the sequence; a ``torch.Generator`` contributes one 64-bit draw
    (so it advances, and the same generator state gives the same children).

    Parameters
    ----------
    generator : int or torch.Generator
        The parent seed or generator.
    n : int
        How many children (1 to 10**7: each child is a generator object).
    device : torch.device or str, optional
        Device of the children (CPU by default). A parent generator may live on any device.

    Returns
    -------
    list of torch.Generator
        ``n`` generators on ``device``; child ``i`` depends only on the parent and ``i``.

    Examples
    --------
    >>> a, b = spawn_generators(0, 2)
    >>> float(torch.rand(1, generator=a)) != float(torch.rand(1, generator=b))
    True
    >>> c, d = spawn_generators(0, 2), spawn_generators(0, 2)  # same parent, same children
    >>> float(torch.rand(1, generator=c[0])) == float(torch.rand(1, generator=d[0]))
    True
    """
    n = check_int(n, "n", fn, min=1, max=10**7)
    dev = resolve_device(device, fn)
    if isinstance(generator, torch.Generator):
        entropy = int(torch.randint(0, 2**62, (1,), generator=generator,
                                    device=generator.device).item())
    else:
        entropy = as_generator(generator, None, fn).initial_seed()
    out = []
    for child in np.random.SeedSequence(entropy).spawn(n):
        g = torch.Generator(device=dev)
        g.manual_seed(int(child.generate_state(1, np.uint64)[0]))
        out.append(g)
    return out


def disable_tf32() -> None:
    """Turn TF32 off for matmuls and convolutions (tests compare CUDA with float64 CPU)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
