"""Loaders and writers on fixtures in every real on-disk format, including malformed ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steerlang.data import (
    CELEBA_ATTRS,
    detect_format,
    load_dataset,
    make_celeba_fixture,
    make_disentangling_fixture,
    make_imagefolder_fixture,
    make_typographic_fixture,
    make_waterbirds_fixture,
    write_typographic,
    write_waterbirds,
)
from steerlang.data.fixtures import CELEBA_COUNTS, WATERBIRDS_COUNTS, scaled_counts
from steerlang.data.formats import parse_typographic_name
from steerlang.errors import DatasetError


@pytest.fixture(scope="module")
def wb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_waterbirds_fixture(tmp_path_factory.mktemp("wb") / "waterbirds", scale=200)


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_celeba_fixture(
        tmp_path_factory.mktemp("celeba"), scale=2000, image_size=(44, 54), seed=3
    )


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------------------------------
# Waterbirds
# ------------------------------------------------------------------------------------------


def test_waterbirds_layout_and_group_counts(wb_root: Path) -> None:
    header = (wb_root / "metadata.csv").read_text().splitlines()[0]
    assert header == "img_id,img_filename,y,split,place,place_filename"
    t = load_dataset("waterbirds", wb_root)
    expected = scaled_counts(WATERBIRDS_COUNTS, 200)
    for split in ("train", "val", "test"):
        s = t.split(split)
        g = 2 * s.column("y") + s.column("place")
        assert np.bincount(g, minlength=4).tolist() == list(expected[split])
    assert t.classes == ["landbird", "waterbird"]
    row = t.rows[0]
    assert set(row) >= {"path", "img_id", "img_filename", "y", "split", "place", "species"}
    folder = row["img_filename"].split("/")[0]
    assert folder[:3].isdigit() and folder[3] == "." and folder[4:] == row["species"]
    img = t.image(0)
    assert img.mode == "RGB" and img.size == (64, 64)
    # Waterbirds' group ids use the numeric columns exactly: 2*y + place.
    assert t.column("y").dtype == np.int64


def test_waterbirds_nested_roots_found(wb_root: Path, tmp_path: Path) -> None:
    _copy(wb_root, tmp_path / "cub" / "data" / "waterbird_complete95_forest2water2")
    t = load_dataset("waterbirds", tmp_path, split="val")
    assert len(t) == sum(scaled_counts(WATERBIRDS_COUNTS, 200)["val"])
    assert detect_format(tmp_path) == "waterbirds"


def test_waterbirds_missing_column_names_file_and_column(wb_root: Path, tmp_path: Path) -> None:
    root = _copy(wb_root, tmp_path / "wb")
    meta = root / "metadata.csv"
    lines = meta.read_text().splitlines()
    lines[0] = lines[0].replace(",place,", ",plaice,")
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as e:
        load_dataset("waterbirds", root)
    assert "metadata.csv:1" in str(e.value) and "'place'" in str(e.value)
    assert "did you mean 'plaice'" in (e.value.help or "")


def test_waterbirds_truncated_csv_names_line(wb_root: Path, tmp_path: Path) -> None:
    root = _copy(wb_root, tmp_path / "wb")
    meta = root / "metadata.csv"
    text = meta.read_text()
    n_lines = len(text.splitlines())
    meta.write_text(text[: text.rfind(",", 0, len(text) - 40)])  # cut inside the last row
    with pytest.raises(DatasetError) as e:
        load_dataset("waterbirds", root)
    assert f"metadata.csv:{n_lines}:" in str(e.value)
    assert "truncated" in (e.value.help or "")


def test_waterbirds_bad_value_names_line(wb_root: Path, tmp_path: Path) -> None:
    root = _copy(wb_root, tmp_path / "wb")
    meta = root / "metadata.csv"
    lines = meta.read_text().splitlines()
    f = lines[5].split(",")
    f[2] = "bird"
    lines[5] = ",".join(f)
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"metadata.csv:6: column 'y' has 'bird'"):
        load_dataset("waterbirds", root)


def test_missing_and_corrupt_images_name_file_and_row(wb_root: Path, tmp_path: Path) -> None:
    root = _copy(wb_root, tmp_path / "wb")
    t = load_dataset("waterbirds", root)
    t.path(3).unlink()
    with pytest.raises(DatasetError) as e:
        t.image(3)
    msg = str(e.value)
    assert str(t.path(3)) in msg and "row 3" in msg and "line 5 of" in msg
    assert e.value.help and "metadata" in e.value.help
    t.path(4).write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match="cannot read image .*row 4"):
        t.image(4)
    data = t.path(5).read_bytes()
    t.path(5).write_bytes(data[: len(data) // 2])  # truncated JPEG
    with pytest.raises(DatasetError, match="row 5"):
        t.image(5)
    assert t.image(6).mode == "RGB"  # other rows still load


def test_unknown_column_did_you_mean(wb_root: Path) -> None:
    t = load_dataset("waterbirds", wb_root)
    with pytest.raises(DatasetError) as e:
        t.column("plce")
    assert "did you mean 'place'" in (e.value.help or "")
    assert "img_filename" in (e.value.help or "")


def test_missing_root_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="root not found"):
        load_dataset("waterbirds", tmp_path / "nope")
    with pytest.raises(DatasetError, match="no metadata.csv"):
        load_dataset("waterbirds", tmp_path)
    with pytest.raises(DatasetError) as e:
        load_dataset("waterbird", tmp_path)
    assert "did you mean 'waterbirds'" in (e.value.help or "")


def test_split_aliases_and_unknown_split(wb_root: Path) -> None:
    t = load_dataset("waterbirds", wb_root)
    assert len(t.split("validation")) == len(t.split("val")) == len(t.split("valid"))
    with pytest.raises(DatasetError) as e:
        t.split("tset")
    assert "did you mean 'test'" in (e.value.help or "")


def test_waterbirds_writer_keeps_given_ids(tmp_path: Path) -> None:
    img = Image.new("RGB", (8, 8), (1, 2, 3))
    recs = [
        {"image": img, "y": 1, "place": 0, "split": "test", "species": "059.California_Gull", "img_id": 42},
        {"image": img, "y": 0, "place": 1, "split": 1, "species": "American_Crow", "species_id": 29},
    ]  # fmt: skip
    write_waterbirds(tmp_path, recs)
    t = load_dataset("waterbirds", tmp_path)
    assert t.column("img_id").tolist() == [42, 2]
    assert t.rows[0]["img_filename"].startswith("059.California_Gull/California_Gull_0042_")
    assert t.rows[1]["img_filename"].startswith("029.American_Crow/")
    assert t.column("split").tolist() == [2, 1]
    assert t.rows[1]["place_filename"].startswith("/o/ocean/")


# ------------------------------------------------------------------------------------------
# CelebA
# ------------------------------------------------------------------------------------------


def test_celeba_txt_schema_and_groups(celeba_root: Path) -> None:
    lines = (celeba_root / "list_attr_celeba.txt").read_text().splitlines()
    names = lines[1].split()
    assert names == list(CELEBA_ATTRS) and len(names) == 40
    assert names.index("Blond_Hair") == 9 and names.index("Male") == 20
    assert int(lines[0]) == len(lines) - 2
    assert "  " in lines[2]  # values separated by runs of spaces
    t = load_dataset("celeba", celeba_root)
    assert set(CELEBA_ATTRS) <= set(t.columns)
    expected = scaled_counts(CELEBA_COUNTS, 2000)
    for split in ("train", "val", "test"):
        s = t.split(split)
        g = 2 * s.column("Blond_Hair") + s.column("Male")
        assert np.bincount(g, minlength=4).tolist() == list(expected[split])
    # raw file value -1/1 maps to 0/1: check one row against the text
    raw = lines[2].split()
    assert [(int(v) + 1) // 2 for v in raw[1:]] == [t.rows[0][a] for a in CELEBA_ATTRS]
    assert t.image(0).size == (44, 54)


def test_celeba_csv_variant_matches_txt(tmp_path: Path, celeba_root: Path) -> None:
    root = make_celeba_fixture(tmp_path, scale=2000, image_size=(44, 54), seed=3, variant="csv")
    assert (root / "list_attr_celeba.csv").read_text().startswith("image_id,5_o_Clock_Shadow,")
    csv_t = load_dataset("celeba", root)
    txt_t = load_dataset("celeba", celeba_root)
    assert csv_t.meta["variant"] == "csv" and txt_t.meta["variant"] == "txt"
    for col in (*CELEBA_ATTRS, "split", "image_id"):
        assert csv_t.column(col).tolist() == txt_t.column(col).tolist()
    # Kaggle archives nest the image folder: img_align_celeba/img_align_celeba/
    nested = root / "img_align_celeba" / "img_align_celeba"
    tmp = root / "_imgs"
    (root / "img_align_celeba").rename(tmp)
    nested.parent.mkdir()
    tmp.rename(nested)
    assert load_dataset("celeba", root).image(0).size == (44, 54)


def test_celeba_csv_malformed_value(tmp_path: Path) -> None:
    root = make_celeba_fixture(tmp_path, scale=4000, image_size=(20, 24), variant="csv")
    f = root / "list_attr_celeba.csv"
    lines = f.read_text().splitlines()
    lines[2] = lines[2].replace(",-1", ",x", 1)
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"list_attr_celeba.csv:3: column '.*' has 'x'"):
        load_dataset("celeba", root)
    f.write_text("\n".join(lines[:4]) + "\n000099.jpg,1,-1\n")  # truncated last row
    with pytest.raises(DatasetError, match=r"list_attr_celeba.csv:5: row has 3 fields"):
        load_dataset("celeba", root)


def test_celeba_truncated_and_malformed(celeba_root: Path, tmp_path: Path) -> None:
    root = _copy(celeba_root, tmp_path / "c")
    attr = root / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    attr.write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(DatasetError, match="announces .* images but"):
        load_dataset("celeba", root)
    bad = list(lines)
    bad[6] = bad[6].rsplit(" ", 3)[0]  # drop values from one row
    attr.write_text("\n".join(bad) + "\n")
    with pytest.raises(DatasetError, match="list_attr_celeba.txt:7: expected a file name and 40"):
        load_dataset("celeba", root)
    bad = list(lines)
    bad[4] = bad[4].replace(" 1", " 7", 1)
    attr.write_text("\n".join(bad) + "\n")
    with pytest.raises(DatasetError, match=r"list_attr_celeba.txt:5: column '.*' has 7"):
        load_dataset("celeba", root)
    bad = list(lines)
    bad[3] = bad[3].replace("-1", " 0", 1)  # 0 is not a CelebA value (they are -1 / 1)
    attr.write_text("\n".join(bad) + "\n")
    with pytest.raises(DatasetError, match=r"list_attr_celeba.txt:4: column '.*' has 0"):
        load_dataset("celeba", root)
    attr.write_text("\n".join(lines) + "\n")
    part = root / "list_eval_partition.txt"
    plines = part.read_text().splitlines()
    part.write_text("\n".join(plines[1:]) + "\n")
    with pytest.raises(DatasetError, match="000001.jpg has no entry in list_eval_partition.txt"):
        load_dataset("celeba", root)
    part.unlink()
    with pytest.raises(DatasetError, match="partition file not found"):
        load_dataset("celeba", root)


# ------------------------------------------------------------------------------------------
# Typographic sets, Disentangling, ImageFolder
# ------------------------------------------------------------------------------------------


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


def test_imagefolder_flat_and_split(tmp_path: Path) -> None:
    flat = load_dataset("imagefolder", make_imagefolder_fixture(tmp_path / "f", n_per_class=2))
    assert flat.classes == ["car", "cat", "dog"] and len(flat) == 6
    assert flat.column("label").tolist() == [0, 0, 1, 1, 2, 2]
    split = load_dataset(
        "imagefolder", make_imagefolder_fixture(tmp_path / "s", n_per_class=1, splits=True)
    )
    assert split.split_counts() == {"train": 3, "val": 3, "test": 3}
    assert len(load_dataset("imagefolder", tmp_path / "s", split="val")) == 3
    (tmp_path / "e" / "x").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images under"):
        load_dataset("imagefolder", tmp_path / "e")


def test_detect_format(tmp_path: Path, celeba_root: Path) -> None:
    assert detect_format(celeba_root) == "celeba"
    make_typographic_fixture(tmp_path / "t", ("a", "b"), 1, image_size=32, layout="paint")
    assert detect_format(tmp_path / "t") == "typographic"
    make_disentangling_fixture(tmp_path / "d", ("cup",), ("good",), image_size=32)
    assert detect_format(tmp_path / "d") == "disentangling"
    make_imagefolder_fixture(tmp_path / "i", n_per_class=1)
    assert detect_format(tmp_path / "i") == "imagefolder"
