"""Devices, dtypes and generators: the randomness contract (CONTRIBUTING.md)."""

import pytest
import torch

from mfteach import as_generator, default_device
from mfteach.device import resolve_device, resolve_dtype


def test_default_device_matches_cuda_availability():
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_same_seed_same_numbers(device):
    a = torch.randn(5, generator=as_generator(3, device), device=device)
    b = torch.randn(5, generator=as_generator(3, device), device=device)
    c = torch.randn(5, generator=as_generator(4, device), device=device)
    assert torch.equal(a, b)  # same seed, same device, same draws: identical by construction
    assert not torch.equal(a, c)


def test_generator_is_passed_through_and_continues():
    g = torch.Generator().manual_seed(0)
    assert as_generator(g) is g
    first = torch.randn(3, generator=g)
    second = torch.randn(3, generator=as_generator(g))
    assert not torch.equal(first, second)


@pytest.mark.parametrize("bad, exc", [(None, TypeError), (1.5, TypeError), ("0", TypeError),
                                      (True, TypeError), (-1, ValueError)])
def test_as_generator_rejects(bad, exc):
    with pytest.raises(exc, match="'generator' parameter"):
        as_generator(bad)


def test_generator_on_wrong_device_is_an_error():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'device' parameter"):
            as_generator(0, "cuda")
    else:
        with pytest.raises(ValueError, match="'generator' parameter"):
            as_generator(torch.Generator(), "cuda")


@pytest.mark.parametrize("bad, exc", [(3, TypeError), ("gpu", ValueError), ("meta", ValueError)])
def test_resolve_device_rejects(bad, exc):
    with pytest.raises(exc, match="'device' parameter"):
        resolve_device(bad)


def test_resolve_dtype():
    assert resolve_dtype(None) is torch.float64
    assert resolve_dtype(torch.float32) is torch.float32
    with pytest.raises(TypeError, match="'dtype' parameter"):
        resolve_dtype(torch.int64)
    with pytest.raises(TypeError, match="'dtype' parameter"):
        resolve_dtype("float64")
