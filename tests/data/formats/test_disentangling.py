"""Disentangling: the Defense-Prefix and Dyslexify layouts and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steerlang.data import (
    load_dataset,
    make_disentangling_fixture,
)
from steerlang.errors import DatasetError


def test_disentangling_dp_and_dyslexify(tmp_path: Path) -> None:
    objs, words = ("cup", "dog"), ("good", "cat", "dog")
    dp = make_disentangling_fixture(tmp_path / "dp", objs, words, image_size=32)
    dy = make_disentangling_fixture(tmp_path / "dy", objs, words, image_size=32, layout="dyslexify")
    assert (dp / "typographic_attack_dataset" / "images" / "IMG_0001.JPG").is_file()
    assert (dy / "annotations.json").is_file() and (dy / "IMG_0001.JPG").is_file()
    a = load_dataset("disentangling", dp)
    b = load_dataset("disentangling", dy)
    assert a.meta["protocol"] == "dp" and a.meta["prompt_template"] == "a photo of {}."
    assert b.meta["protocol"] == "dyslexify" and b.meta["prompt_template"] == "a photo of a {}."
    assert a.classes == ["cup", "dog"]  # keys of classes.json
    assert b.classes == ["cat", "cup", "dog", "good"]  # union of true and attack labels
    assert a.column("text").tolist() == [-1, -1, 1, -1, -1, 1]  # attack words outside classes
    assert len(a) == len(b) == 6 and a.image(5).size == (32, 32)
    forced = load_dataset("disentangling", dp, protocol="dyslexify")
    assert forced.classes == b.classes


def test_disentangling_errors(tmp_path: Path) -> None:
    root = make_disentangling_fixture(tmp_path / "d", ("cup",), ("good",), layout="dyslexify")
    (root / "annotations.json").rename(root / "annotation.json")
    with pytest.raises(DatasetError) as e:
        load_dataset("disentangling", root)
    assert "rename it" in (e.value.help or "")
    (root / "annotations.json").write_text('{"IMG_0001.JPG": {"true object": "cup",\n')
    with pytest.raises(DatasetError, match=r"annotations.json:2:\d+: invalid JSON"):
        load_dataset("disentangling", root)
    (root / "annotations.json").write_text(json.dumps({"IMG_0001.JPG": {"true object": "cup"}}))
    with pytest.raises(DatasetError, match="entry 'IMG_0001.JPG' needs"):
        load_dataset("disentangling", root)
