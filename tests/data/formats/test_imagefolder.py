"""ImageFolder: flat and split layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from steerlang.data import (
    load_dataset,
    make_imagefolder_fixture,
)
from steerlang.errors import DatasetError
from steerlang.facts import SPLIT_NAMES


def test_imagefolder_flat_and_split(tmp_path: Path) -> None:
    flat = load_dataset("imagefolder", make_imagefolder_fixture(tmp_path / "f", n_per_class=2))
    assert flat.classes == ["car", "cat", "dog"] and len(flat) == 6
    assert flat.column("label").tolist() == [0, 0, 1, 1, 2, 2]
    split = load_dataset(
        "imagefolder", make_imagefolder_fixture(tmp_path / "s", n_per_class=1, splits=True)
    )
    assert {s: len(split.split(s)) for s in SPLIT_NAMES} == {"train": 3, "val": 3, "test": 3}
    assert len(load_dataset("imagefolder", tmp_path / "s", split="val")) == 3
    (tmp_path / "e" / "x").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images under"):
        load_dataset("imagefolder", tmp_path / "e")


def test_split_folders_plus_another_folder_is_an_error(tmp_path: Path) -> None:
    """Read flat, the split names would become classes; read split, `extras/` would vanish."""
    root = make_imagefolder_fixture(tmp_path / "s", n_per_class=1, splits=True)
    make_imagefolder_fixture(root / "extras", n_per_class=1)  # class folders inside
    with pytest.raises(DatasetError) as e:
        load_dataset("imagefolder", root)
    assert e.value.message == (
        f"{root} mixes split folders (test, train, val) with the folder {root / 'extras'}"
    )
    assert "move extras/ into a split folder" in (e.value.help or "")
