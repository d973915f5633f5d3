"""Uniform argument validation for the public API.

Every check raises ``ValueError`` (bad value) or ``TypeError`` (bad type) with one message
template, adapted from scikit-learn's ``_param_validation``::

    The 'width' parameter of mfteach.models.TwoLayer must be an int >= 1. Got 0 instead.

The message names the parameter, the function, the rule, and the value received, so that a
reader sees one clear line instead of a traceback from deep inside torch.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from typing import Any

import torch

__all__ = [
    "check_choice",
    "check_float",
    "check_int",
    "check_bool",
    "check_tensor",
    "check_same_device_dtype",
    "check_floating_dtype",
    "check_budget",
    "max_bytes",
    "fail",
]

#: Largest allocation (bytes) a public routine attempts before refusing, unless the
#: environment variable ``MFTEACH_MAX_BYTES`` says otherwise (e.g. ``4e11`` on a large GPU).
DEFAULT_MAX_BYTES = 32 * 2**30
#: Largest number of elementary steps (SGD steps, ODE steps, training steps) a public routine
#: runs before refusing, unless ``MFTEACH_MAX_STEPS`` says otherwise.
DEFAULT_MAX_STEPS = 10**9


def _show(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return (f"a tensor of shape {tuple(value.shape)}, dtype {value.dtype}, "
                f"device {value.device}")
    if type(value).__module__ == "numpy" and hasattr(value, "shape"):
        return f"a numpy array of shape {tuple(value.shape)}, dtype {value.dtype}"
    text = " ".join(repr(value).split())  # one line, whatever the repr
    return text if len(text) <= 80 else text[:77] + "..."


def _env_limit(var: str, default: float) -> float:
    raw = os.environ.get(var)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"The environment variable {var} must be a number. Got {raw!r}.") from None
    if not value > 0:
        raise ValueError(f"The environment variable {var} must be positive. Got {raw!r}.")
    return value


def max_bytes() -> float:
    """The allocation limit in bytes (``MFTEACH_MAX_BYTES``, default 32 GiB)."""
    return _env_limit("MFTEACH_MAX_BYTES", DEFAULT_MAX_BYTES)


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"


def check_budget(name: str, fn: str, value: Any, *, nbytes: float | None = None,
                 steps: float | None = None) -> None:
    """Refuse a call whose size would allocate more than :func:`max_bytes` or run more than
    ``MFTEACH_MAX_STEPS`` elementary steps, naming the argument that makes it so.

    ``nbytes`` is the estimated peak allocation and ``steps`` the number of elementary steps
    (either may be omitted). The limits are documented in ``CONTRIBUTING.md`` and can be
    raised through the environment variables for a machine that can afford it.
    """
    if nbytes is not None:
        limit = max_bytes()
        if not math.isfinite(nbytes) or nbytes > limit:
            fail(name, fn, f"small enough to fit the memory limit of {_human(limit)}", value,
                 hint=f"That call would allocate about {_human(nbytes)}; reduce {name!r} or "
                      f"raise MFTEACH_MAX_BYTES.")
    if steps is not None:
        limit = _env_limit("MFTEACH_MAX_STEPS", DEFAULT_MAX_STEPS)
        if not math.isfinite(steps) or steps > limit:
            fail(name, fn, f"small enough to run at most {limit:.3g} steps", value,
                 hint=f"That call would run about {steps:.3g} steps; reduce {name!r} or "
                      f"raise MFTEACH_MAX_STEPS.")


def fail(name: str, fn: str, rule: str, value: Any, *, exc: type[Exception] = ValueError,
         hint: str = "") -> None:
    """Raise ``exc`` with the project's message template."""
    msg = f"The {name!r} parameter of {fn} must be {rule}. Got {_show(value)} instead."
    if hint:
        msg += " " + hint
    raise exc(msg)


def check_bool(value: Any, name: str, fn: str) -> bool:
    if not isinstance(value, bool):
        fail(name, fn, "a bool", value, exc=TypeError)
    return value


def check_int(value: Any, name: str, fn: str, *, min: int | None = None,
              max: int | None = None) -> int:
    """Return ``value`` as an int, checking type and bounds (inclusive)."""
    rule = "an int" + (f" >= {min}" if min is not None else "") + (
        f" and <= {max}" if max is not None else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(name, fn, rule, value, exc=TypeError)
    value = int(value)
    if (min is not None and value < min) or (max is not None and value > max):
        fail(name, fn, rule, value)
    return value


def check_float(value: Any, name: str, fn: str, *, min: float | None = None,
                max: float | None = None, min_open: bool = False,
                max_open: bool = False) -> float:
    """Return ``value`` as a finite float, checking type and bounds."""
    parts = ["a finite real number"]
    if min is not None:
        parts.append(f"{'>' if min_open else '>='} {min}")
    if max is not None:
        parts.append(f"{'and <' if max_open else 'and <='} {max}")
    rule = " ".join(parts)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(name, fn, rule, value, exc=TypeError)
    value = float(value)
    if not math.isfinite(value):
        fail(name, fn, rule, value)
    if min is not None and (value < min or (min_open and value == min)):
        fail(name, fn, rule, value)
    if max is not None and (value > max or (max_open and value == max)):
        fail(name, fn, rule, value)
    return value


def check_choice(value: Any, name: str, fn: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        exc = TypeError if not isinstance(value, str) else ValueError
        fail(name, fn, "one of " + ", ".join(repr(c) for c in choices), value, exc=exc)
    return value


_SUPPORTED = (torch.float32, torch.float64)


def check_floating_dtype(dtype: Any, name: str, fn: str) -> torch.dtype:
    """``torch.float32`` or ``torch.float64``: half precisions are refused at the boundary
    (the closed forms and statistics lose all their digits in them, and many torch CPU ops do
    not implement them)."""
    if not isinstance(dtype, torch.dtype) or dtype not in _SUPPORTED:
        fail(name, fn, "torch.float32 or torch.float64", dtype, exc=TypeError)
    return dtype


def check_tensor(x: Any, name: str, fn: str, *, ndim: int | tuple[int, ...] | None = None,
                 shape: tuple[int | None, ...] | None = None, floating: bool = True,
                 finite: bool = True) -> torch.Tensor:
    """Check that ``x`` is a tensor of the given rank/shape, floating and finite.

    ``shape`` may contain ``None`` for free axes, e.g. ``(None, d)``.
    """
    if not isinstance(x, torch.Tensor):
        hint = ("Convert it with torch.as_tensor(x)."
                if type(x).__module__ == "numpy" or isinstance(x, (list, tuple)) else "")
        fail(name, fn, "a torch.Tensor", x, exc=TypeError, hint=hint)
    if floating and x.dtype not in _SUPPORTED:
        fail(name, fn, "a floating-point tensor (float32 or float64)", x, exc=TypeError,
             hint="Convert it with x.double() or x.float()." if x.dtype.is_floating_point
             else "")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            rule = " or ".join(str(a) for a in allowed)
            fail(name, fn, f"a tensor with {rule} dimensions", x)
    if shape is not None:
        ok = x.ndim == len(shape) and all(s is None or s == t for s, t in zip(shape, x.shape))
        if not ok:
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            fail(name, fn, f"a tensor of shape {want}", x)
    if finite and x.numel() and x.device.type != "meta" and not bool(torch.isfinite(x).all()):
        fail(name, fn, "finite (no NaN or inf entries)", x)
    return x


def check_same_device_dtype(fn: str, **tensors: torch.Tensor | None) -> None:
    """Raise when the given tensors disagree on device or dtype (never coerce silently)."""
    items = [(k, v) for k, v in tensors.items() if v is not None]
    if len(items) < 2:
        return
    k0, v0 = items[0]
    for k, v in items[1:]:
        if v.device != v0.device:
            raise ValueError(
                f"The {k!r} parameter of {fn} must be on the same device as {k0!r}. "
                f"Got {k!r} on {v.device} and {k0!r} on {v0.device} instead; move one with "
                f".to(device).")
        if v.dtype != v0.dtype:
            raise TypeError(
                f"The {k!r} parameter of {fn} must have the same dtype as {k0!r}. "
                f"Got {k!r} as {v.dtype} and {k0!r} as {v0.dtype} instead; convert one with "
                f".to(dtype).")
