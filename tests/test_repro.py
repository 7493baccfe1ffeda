"""repro.setup: seeds, thread count, deterministic algorithms (global torch state is restored afterwards)."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from pecft_lib import repro
from pecft_lib.errors import UnknownNameError

pytestmark = pytest.mark.usefixtures("torch_state")


@pytest.fixture(autouse=True)
def _restore_cublas_env():
    before = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    yield
    if before is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = before


def draws():
    return torch.rand(5), np.random.rand(5), [random.random() for _ in range(5)]


def test_setup_pins_threads_and_determinism(monkeypatch):
    monkeypatch.delenv("PECFT_PROFILE", raising=False)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(False)
    settings = repro.setup(seed=3, threads=1)
    assert settings.threads == 1 and torch.get_num_threads() == 1
    assert settings.seed == 3
    assert settings.deterministic is True and torch.are_deterministic_algorithms_enabled()
    assert settings.profile == "quick"
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"]
    assert str(settings) == "seed=3, threads=1, deterministic=True, profile=quick"


def test_setup_seeds_every_generator():
    repro.setup(seed=3, threads=1)
    t1, n1, r1 = draws()
    # scramble the generators in between
    torch.rand(100), np.random.rand(100), random.random()
    repro.setup(seed=3, threads=1)
    t2, n2, r2 = draws()
    assert torch.equal(t1, t2)
    np.testing.assert_array_equal(n1, n2)
    assert r1 == r2
    # the draws are the documented generators' own streams for seed 3
    assert torch.equal(t1, torch.rand(5, generator=torch.Generator().manual_seed(3)))
    np.testing.assert_array_equal(n1, np.random.RandomState(3).rand(5))
    python_rng = random.Random(3)
    assert r1 == [python_rng.random() for _ in range(5)]
    # and another seed gives other numbers
    repro.setup(seed=4, threads=1)
    t3, n3, r3 = draws()
    assert not torch.equal(t1, t3) and not np.array_equal(n1, n3) and r1 != r3


def test_setup_options(monkeypatch):
    monkeypatch.setenv("PECFT_PROFILE", "quick")
    torch.set_num_threads(2)
    settings = repro.setup(seed=0, threads=None, deterministic=False, profile="paper")
    assert settings.threads == torch.get_num_threads() == 2  # kept
    assert settings.deterministic is False and not torch.are_deterministic_algorithms_enabled()
    assert settings.profile == "paper"


def test_setup_with_a_bogus_profile_in_the_environment(monkeypatch):
    monkeypatch.setenv("PECFT_PROFILE", "bogus")
    with pytest.raises(UnknownNameError, match="bogus"):
        repro.setup(seed=0)

