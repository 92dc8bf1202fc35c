"""Typographic-attack synthesiser: determinism, wrong-word rule, on-the-fly view, written copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steerlang.data import (
    attack_image,
    attack_table,
    load_dataset,
    make_imagefolder_fixture,
    make_waterbirds_fixture,
    write_attacked_copy,
)
from steerlang.data.attack import COLOURS, available_fonts, pick_wrong_word, split_lines


def _px(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def test_attack_image_deterministic_and_changes_pixels() -> None:
    base = Image.new("RGB", (96, 80), (128, 128, 128))
    a = attack_image(base, "golden retriever", np.random.default_rng(7))
    b = attack_image(base, "golden retriever", np.random.default_rng(7))
    c = attack_image(base, "golden retriever", np.random.default_rng(8))
    assert a.size == base.size and a.mode == "RGB"
    assert (_px(a) == _px(b)).all()
    assert (_px(a) != _px(c)).any()
    changed = (_px(a) != 128).any(axis=2)
    assert 0.005 < changed.mean() < 0.6  # text was drawn and fits inside the image
    assert (_px(base) == 128).all()  # the input is untouched


def test_attack_colours_from_the_recipe_set() -> None:
    base = Image.new("RGB", (224, 224), (128, 128, 128))
    img = attack_image(base, "cat", np.random.default_rng(0), font="default")
    px = _px(img).reshape(-1, 3)
    counts = {name: int((px == rgb).all(axis=1).sum()) for name, rgb in COLOURS.items()}
    # glyph interiors are solid fill colour (edges are anti-aliased blends)
    assert max(counts.values()) >= 20, counts


def test_font_shrinks_until_it_fits_tiny_image() -> None:
    base = Image.new("RGB", (20, 20), (0, 0, 0))
    img = attack_image(base, "an extremely long class name here", np.random.default_rng(1))
    assert img.size == (20, 20)


def test_resize_applies_dp_preprocessing() -> None:
    img = attack_image(Image.new("RGB", (300, 200)), "dog", np.random.default_rng(0), resize=224)
    assert img.size == (224, 224)


def test_line_breaks_follow_dp() -> None:
    assert split_lines("dog") == "dog"
    assert split_lines("golden retriever") == "golden\nretriever"
    assert split_lines("great_white_shark") == "great\nwhite shark"
    assert split_lines("a b c d e") == "a b\nc d\ne"


def test_wrong_word_always_differs() -> None:
    rng = np.random.default_rng(0)
    classes = ["dog", "cat"]
    assert all(classes[pick_wrong_word(classes, "dog", rng)] == "cat" for _ in range(50))
    with pytest.raises(ValueError):
        pick_wrong_word(["dog"], "dog", rng)


def test_available_fonts_nonempty() -> None:
    assert available_fonts()


def test_attack_table_view(tmp_path: Path) -> None:
    t = load_dataset("waterbirds", make_waterbirds_fixture(tmp_path, scale=400, image_size=48))
    view = attack_table(t, seed=5)
    assert len(view) == len(t) and "attack" in view.columns
    y = view.column("y")
    assert (view.column("attack") != y).all()  # two classes: the word is always the other one
    assert (view.column("attack_name") == np.asarray(t.classes)[1 - y]).all()
    a0, a0_again = view.image(0), attack_table(t, seed=5).image(0)
    assert (_px(a0) == _px(a0_again)).all()
    assert (_px(a0) != _px(t.image(0))).any()
    assert (_px(view.clean_image(0)) == _px(t.image(0))).all()
    # deterministic per row: the split view renders the same pixels as the full view
    test = view.split("test")
    j = int(np.flatnonzero(t.column("split") == 2)[0])
    assert (_px(test.image(0)) == _px(view.image(j))).all()
    assert test.column("attack").tolist() == view.column("attack")[t.column("split") == 2].tolist()
    other = attack_table(t, seed=6)
    assert any((_px(other.image(i)) != _px(view.image(i))).any() for i in range(3))


def test_attack_table_multiclass_never_true_class(tmp_path: Path) -> None:
    t = load_dataset(
        "imagefolder", make_imagefolder_fixture(tmp_path, ("a", "b", "c", "d"), 10, image_size=24)
    )
    v = attack_table(t, seed=0)
    assert (v.column("attack") != v.column("label")).all()
    assert len(set(v.column("attack").tolist())) == 4  # the draw covers the class set


def test_write_attacked_copy_roundtrip(tmp_path: Path) -> None:
    src = make_imagefolder_fixture(tmp_path / "src", ("cat", "dog", "car"), 2, image_size=32)
    t = load_dataset("imagefolder", src)
    out = write_attacked_copy(t, tmp_path / "out", seed=1)
    typo = load_dataset("typographic", out)
    assert len(typo) == len(t)
    assert (typo.column("label_name") != typo.column("text_name")).all()
    assert sorted(typo.column("label_name").tolist()) == sorted(t.column("label_name").tolist())
    view = attack_table(t, seed=1)
    i = 0
    fname = f"label={t.rows[i]['label_name']}_text={view.rows[i]['attack_name']}.png"
    matches = [p for p in typo.paths if Path(p).name.startswith(fname[:-4])]
    assert matches  # the file written for row 0 carries row 0's attack word


def test_attack_table_both_copies(tmp_path: Path) -> None:
    t = load_dataset(
        "imagefolder", make_imagefolder_fixture(tmp_path, ("a", "b", "c"), 4, image_size=32)
    )
    single = attack_table(t, seed=3)
    both = attack_table(t, seed=3, copies="both")
    n = len(t)
    assert len(both) == 2 * n
    assert both.column("attacked").tolist() == [0] * n + [1] * n
    assert both.column("attack").tolist() == [-1] * n + single.column("attack").tolist()
    assert both.column("attack_name").tolist()[:n] == [""] * n
    assert both.column("label").tolist() == t.column("label").tolist() * 2
    for i in (0, n - 1):
        assert (_px(both.image(i)) == _px(t.image(i))).all()  # the clean copy is untouched
        assert (_px(both.image(n + i)) == _px(single.image(i))).all()  # same pixels as 'attacked'
    # subsets keep which rows are clean
    sub = both.subset([n + 1, 1])
    assert sub.column("attacked").tolist() == [1, 0]
    assert (_px(sub.image(1)) == _px(t.image(1))).all()
    assert (_px(sub.image(0)) == _px(single.image(1))).all()
    with pytest.raises(ValueError, match="copies"):
        attack_table(t, copies="twice")


def test_note_style_writes_a_readable_note(tmp_path: Path) -> None:
    t = load_dataset(
        "imagefolder", make_imagefolder_fixture(tmp_path, ("a", "b", "c"), 2, image_size=64)
    )
    dp = attack_table(t, seed=0)
    note = attack_table(t, seed=0, style="note")
    assert note.column("attack").tolist() == dp.column("attack").tolist()  # same words
    clean, im = _px(t.image(0)), _px(note.image(0))
    changed = np.flatnonzero((clean != im).any(axis=(1, 2)))
    # the note sits in the top or bottom band (≤ 10 rows), never over the middle of the image
    assert changed.size and changed.max() - changed.min() < 11
    assert changed.min() <= 1 or changed.max() >= 62
    assert (_px(note.image(0)) == im).all()  # deterministic
    with pytest.raises(ValueError, match="style"):
        attack_table(t, style="graffiti")
