"""Typographic sets named label=<true>_text=<word> (RTA-100, PAINT)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steerlang.data import (
    load_dataset,
    make_typographic_fixture,
    write_typographic,
)
from steerlang.data.formats.typographic import parse_typographic_name
from steerlang.errors import DatasetError


def test_typographic_name_parsing() -> None:
    assert parse_typographic_name("label=dog_text=cat.png") == ("dog", "cat")
    assert parse_typographic_name("label=french_horn_text=golden_retriever.jpg") == (
        "french_horn",
        "golden_retriever",
    )
    assert parse_typographic_name("label=dog_text=cat#3.png") == ("dog", "cat")
    assert parse_typographic_name("dog_cat.png") is None
    assert parse_typographic_name("label=dog.png") is None


@pytest.mark.parametrize("layout", ["flat", "rta100", "paint"])
def test_typographic_layouts(tmp_path: Path, layout: str) -> None:
    classes = ["dog", "cat", "car", "cup"]
    root = make_typographic_fixture(tmp_path, classes, 2, image_size=48, layout=layout)
    t = load_dataset({"flat": "typographic", "rta100": "rta100", "paint": "paint"}[layout], root)
    assert len(t) == 8 and t.classes == sorted(classes)
    assert t.meta["prompt_template"] == "a photo of a {}."
    names = np.asarray(t.classes)
    assert (names[t.column("label")] == t.column("label_name")).all()
    assert (t.column("label") != t.column("text")).all()
    assert not t.has_splits and len(t.split("test")) == len(t)
    assert t.image(0).size == (48, 48)


def test_typographic_classes_are_union_and_duplicates_kept(tmp_path: Path) -> None:
    img = Image.new("RGB", (16, 16))
    recs = [
        {"image": img, "label": "ice_cream", "text": "dog"},
        {"image": img, "label": "ice_cream", "text": "dog"},
        {"image": img, "label": "cat", "text": "zebra"},
    ]
    write_typographic(tmp_path, recs)
    assert (tmp_path / "label=ice_cream_text=dog#2.png").is_file()
    t = load_dataset("typographic", tmp_path)
    assert t.classes == ["cat", "dog", "ice_cream", "zebra"]
    assert sorted(t.column("label_name").tolist()) == ["cat", "ice_cream", "ice_cream"]
    (tmp_path / "holiday.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="holiday.png: file name does not follow"):
        load_dataset("typographic", tmp_path)
