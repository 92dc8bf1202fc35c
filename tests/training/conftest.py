"""Shared fixtures for the SAE-training tests: planted sparse data and a tiny open_clip model."""

from __future__ import annotations

import pytest
import torch


def planted_data(
    n: int = 6000, d: int = 24, m: int = 32, s: int = 3, seed: int = 0, offset: float = 2.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens built from a known dictionary: each is s random unit atoms (of m) with
    coefficients in [0.5, 2], a constant offset and a little noise. Returns (x, atoms)."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.nn.functional.normalize(torch.randn(m, d, generator=g), dim=1)
    idx = torch.rand(n, m, generator=g).argsort(1)[:, :s]
    coef = torch.zeros(n, m).scatter(1, idx, 0.5 + 1.5 * torch.rand(n, s, generator=g))
    x = coef @ atoms + offset + 0.01 * torch.randn(n, d, generator=g)
    return x, atoms


@pytest.fixture(scope="session")
def planted() -> tuple[torch.Tensor, torch.Tensor]:
    return planted_data()


@pytest.fixture(scope="session")
def tiny_clip():  # noqa: ANN201 - ClipHandle, imported lazily
    from steerlang.model.clip import TINY_CONFIG, random_clip

    return random_clip(TINY_CONFIG, seed=0)


@pytest.fixture(scope="session")
def tiny_pixels() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(48, 3, 32, 32, generator=g)


@pytest.fixture(autouse=True)
def _one_thread():  # noqa: ANN202
    """Tiny matrices gain nothing from a second thread, and on a shared 2-core machine spinning
    OpenMP workers make timings erratic; restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
