"""Shared fixtures: a seeded generator that reports its seed, devices, dtypes, tolerances."""

from __future__ import annotations

import os

import pytest
import torch

from mfteach.device import disable_tf32

SEED = int(os.environ.get("MFTEACH_TEST_SEED", "20261123"))

# Floating-point tolerances by dtype (neural-tangents' table): used for exact identities.
TOL = {torch.float32: 5e-3, torch.float64: 1e-5}

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]

disable_tf32()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    return f"mfteach test seed: MFTEACH_TEST_SEED={SEED}; cuda: {torch.cuda.is_available()}"


@pytest.fixture
def seed() -> int:
    return SEED


@pytest.fixture
def generator(request) -> torch.Generator:
    """A CPU generator seeded by MFTEACH_TEST_SEED; the seed is printed when a test fails."""
    g = torch.Generator().manual_seed(SEED)
    request.node.user_properties.append(("MFTEACH_TEST_SEED", SEED))
    return g


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(params=[torch.float64, torch.float32], ids=["f64", "f32"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        rep.sections.append(("mfteach seed", f"MFTEACH_TEST_SEED={SEED}"))
