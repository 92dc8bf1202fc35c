"""`dataset_columns`: the columns a dataset loads with, read from its metadata header only.

The compiler checks recipes' columns against these (steerlang/commands/dataset_columns.py),
so they must be exactly the loader's columns, extra columns included, for every format.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from PIL import Image

from steerlang.data import (
    load_dataset,
    make_celeba_fixture,
    make_disentangling_fixture,
    make_imagefolder_fixture,
    make_typographic_fixture,
)
from steerlang.data.formats import dataset_columns
from steerlang.errors import DatasetError


def _same(fmt: str, root: Path, **options: object) -> tuple[str, ...]:
    cols = dataset_columns(fmt, root, **options)
    assert cols is not None
    assert list(cols) == load_dataset(fmt, root, **options).columns
    return cols


def test_waterbirds_extra_columns_from_the_header_alone(wb_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "wb"
    shutil.copytree(wb_root, root)
    lines = (root / "metadata.csv").read_text().splitlines()
    out = [lines[0] + ",background_type,photographer"]
    out += [line + f",{k % 2},p{k % 3}" for k, line in enumerate(lines[1:])]
    (root / "metadata.csv").write_text("\n".join(out) + "\n")
    cols = _same("waterbirds", root)
    assert cols[-2:] == ("background_type", "photographer")
    # Only the header is read: rows the loader would refuse do not matter here.
    (root / "metadata.csv").write_text(out[0] + "\nnot,a,valid,row\n")
    assert dataset_columns("waterbirds", root) == cols
    with pytest.raises(DatasetError, match="row has 4 fields"):
        load_dataset("waterbirds", root)


def test_waterbirds_standard_header(wb_root: Path) -> None:
    assert _same("waterbirds", wb_root) == (
        "img_id",
        "img_filename",
        "y",
        "place",
        "split",
        "species",
        "place_filename",
    )


@pytest.mark.parametrize("variant", ["txt", "csv"])
def test_celeba_attributes_from_the_header(tmp_path: Path, variant: str) -> None:
    root = make_celeba_fixture(tmp_path, scale=20000, image_size=(8, 10), variant=variant)
    cols = _same("celeba", root)
    assert cols[0] == "image_id" and cols[-1] == "split" and "Blond_Hair" in cols


def test_fixed_layouts_give_their_builtin_columns(tmp_path: Path) -> None:
    from steerlang.facts import DATASET_COLUMNS

    typo = make_typographic_fixture(tmp_path / "typo", n_per_class=1, image_size=8)
    dis = make_disentangling_fixture(tmp_path / "dis", image_size=8)
    flat = make_imagefolder_fixture(tmp_path / "flat", n_per_class=1, image_size=8)
    for fmt, root in (("typographic", typo), ("disentangling", dis), ("imagefolder", flat)):
        cols = dataset_columns(fmt, root)
        assert cols == DATASET_COLUMNS[fmt]
        assert set(load_dataset(fmt, root).columns) <= set(cols)
    with pytest.raises(DatasetError, match="root not found"):
        dataset_columns("imagefolder", tmp_path / "missing")


def _table(tmp_path: Path) -> Path:
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    with (tmp_path / "t.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "bird", "subset", "note"])
        w.writerow(["a.png", 1, "train", "x"])
        w.writerow(["a.png", 0, "test", "y"])
    return tmp_path / "t.csv"


def test_table_csv_header_and_split_column(tmp_path: Path) -> None:
    file = _table(tmp_path)
    assert _same("table", file) == ("file", "bird", "subset", "note")
    assert _same("table", file, split_column="subset", label_column="bird")[-1] == "split"


def test_table_parquet_schema_drops_what_concepts_cannot_compare(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="Parquet tables need pyarrow (optional)")
    import pyarrow.parquet as pq

    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    tab = pa.table(
        {
            "file": ["a.png", "a.png"],
            "bird": [1, 0],
            "score": [0.5, 1.5],
            "tags": [["a"], ["b"]],
            "ok": [True, False],
        }
    )
    pq.write_table(tab, tmp_path / "t.parquet")
    assert _same("table", tmp_path / "t.parquet") == ("file", "bird", "score", "ok")


def test_hf_datasets_features_without_importing_datasets_rows(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="the hf_datasets format needs `datasets`")
    feats = datasets.Features(
        {
            "img": datasets.Image(),
            "label": datasets.ClassLabel(names=["cat", "dog"]),
            "place": datasets.Value("int64"),
            "caption": datasets.Value("string"),
            "tags": datasets.Sequence(datasets.Value("string")),
            "part": datasets.Value("string"),
        }
    )
    ds = datasets.Dataset.from_dict(
        {
            "img": [Image.new("RGB", (4, 4))] * 2,
            "label": [0, 1],
            "place": [1, 0],
            "caption": ["a", "b"],
            "tags": [["x"], []],
            "part": ["train", "test"],
        },
        features=feats,
    )
    datasets.DatasetDict({"train": ds, "validation": ds}).save_to_disk(str(tmp_path / "dd"))
    ds.save_to_disk(str(tmp_path / "one"))
    cache = tmp_path / "cache"
    cols = _same("hf_datasets", tmp_path / "dd", cache_dir=cache)
    assert cols == ("label", "label_name", "place", "caption", "part", "split")
    assert _same("hf_datasets", tmp_path / "one", cache_dir=cache)[-1] == "part"
    assert _same("hf_datasets", tmp_path / "one", split_column="part", cache_dir=cache)[-1] == (
        "split"
    )
    assert dataset_columns("hf_datasets", "hf:someone/cached") is None
