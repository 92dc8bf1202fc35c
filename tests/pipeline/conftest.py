"""Shared fixtures for the pipeline tests: a tiny random open_clip model (12 blocks, width
64, 32 px), tiny ReLU SAEs saved in our format."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import CacheWarnings

D_SAE = 48


@pytest.fixture(scope="session")
def tiny_handle() -> Any:
    from steerlang.model.clip import TINY_CONFIG, random_clip

    return random_clip(TINY_CONFIG, seed=0)


@pytest.fixture(scope="session")
def sae_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
    from steerlang.model.sae.load import save_sae

    root = tmp_path_factory.mktemp("saes")
    out = {}
    for layer in (3, 7, 11):
        cfg = SAEConfig(d_in=64, d_sae=D_SAE, hook=SAEHook(layer=layer, site="resid_post"))
        out[layer] = save_sae(SAE.random(cfg, seed=layer), root / f"L{layer}")
    return out


@pytest.fixture
def cache_warnings() -> Iterator[CacheWarnings]:
    h = CacheWarnings()
    logger = logging.getLogger("steerlang.cache")
    logger.addHandler(h)
    try:
        yield h
    finally:
        logger.removeHandler(h)
