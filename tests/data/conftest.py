"""Dataset fixtures shared by the format and table tests (written once per module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from steerlang.data import make_celeba_fixture, make_waterbirds_fixture


@pytest.fixture(scope="module")
def wb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_waterbirds_fixture(tmp_path_factory.mktemp("wb") / "waterbirds", scale=200)


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_celeba_fixture(
        tmp_path_factory.mktemp("celeba"), scale=2000, image_size=(44, 54), seed=3
    )
