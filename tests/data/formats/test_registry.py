"""The format table: dispatch by name, unknown formats and roots, and format detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from steerlang.data import (
    detect_format,
    load_dataset,
    make_disentangling_fixture,
    make_imagefolder_fixture,
    make_typographic_fixture,
)
from steerlang.errors import DatasetError


def test_missing_root_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="root not found"):
        load_dataset("waterbirds", tmp_path / "nope")
    with pytest.raises(DatasetError, match="no metadata.csv"):
        load_dataset("waterbirds", tmp_path)
    with pytest.raises(DatasetError) as e:
        load_dataset("waterbird", tmp_path)
    assert "did you mean 'waterbirds'" in (e.value.help or "")


def test_detect_format(tmp_path: Path, celeba_root: Path) -> None:
    assert detect_format(celeba_root) == "celeba"
    make_typographic_fixture(tmp_path / "t", ("a", "b"), 1, image_size=32, layout="paint")
    assert detect_format(tmp_path / "t") == "typographic"
    make_disentangling_fixture(tmp_path / "d", ("cup",), ("good",), image_size=32)
    assert detect_format(tmp_path / "d") == "disentangling"
    make_imagefolder_fixture(tmp_path / "i", n_per_class=1)
    assert detect_format(tmp_path / "i") == "imagefolder"
