"""CelebA: the text and CSV variants, and truncated or malformed attribute files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from steerlang.data import (
    CELEBA_ATTRS,
    load_dataset,
    make_celeba_fixture,
)
from steerlang.data.fixtures import CELEBA_COUNTS, scaled_counts
from steerlang.errors import DatasetError


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
    root = shutil.copytree(celeba_root, tmp_path / "c")
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
