"""The `table` format: a CSV or Parquet file of image paths with any columns."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steerlang.data import detect_format, load_dataset
from steerlang.errors import DatasetError

ROWS = [
    # path, bird, background, subset, weight, note
    ("img/a.png", 0, 0, "train", 0.5, "plain"),
    ("img/b.png", 1, 1, "train", 1.5, "x, with comma"),
    ("img/c.png", 0, 1, "validation", 2.0, "plain"),
    ("img/d.png", 1, 0, "test", 2.5, "plain"),
    ("img/e.png", 1, 1, "2", 3.0, "coded split"),
]
HEADER = ["file", "bird", "background", "subset", "weight", "note"]


def _images(root: Path) -> None:
    for k, (rel, *_rest) in enumerate(ROWS):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (40 * k, 10, 200 - 40 * k)).save(p)


def _csv(path: Path, header: list[str] = HEADER, rows: list[tuple] = ROWS) -> Path:  # type: ignore[type-arg]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    _images(tmp_path)
    return _csv(tmp_path / "labels.csv")


OPTS = {
    "image_column": "file",
    "label_column": "bird",
    "group_columns": ["bird", "background"],
    "split_column": "subset",
}


def test_csv_columns_paths_and_splits(table_csv: Path) -> None:
    t = load_dataset("table", table_csv, name="birds", **OPTS)
    assert t.format == "table" and len(t) == 5
    assert t.columns == [*HEADER, "split"]
    assert t.column("bird").dtype == np.int64 and t.column("bird").tolist() == [0, 1, 0, 1, 1]
    assert t.column("weight").tolist() == [0.5, 1.5, 2.0, 2.5, 3.0]
    assert t.column("note").tolist()[1] == "x, with comma"
    assert t.column("split").tolist() == [0, 0, 1, 2, 2]  # names, aliases and codes
    assert t.column("subset").tolist()[2] == "validation"  # the source column is kept
    assert t.paths[0] == str(table_csv.parent / "img/a.png")
    assert t.meta["label_column"] == "bird" and t.meta["group_columns"] == ["bird", "background"]
    assert len(t.split("train")) == 2 and len(t.split("test")) == 2
    assert t.image(3).getpixel((0, 0)) == (120, 10, 80)
    assert t.where(1) == f"row 1 (line 3 of {table_csv})"
    # the folder holding exactly one table file is as good as the file; split auto-detected
    assert len(load_dataset("table", table_csv.parent, image_column="file")) == 5


def test_column_lookup_has_did_you_mean(table_csv: Path) -> None:
    t = load_dataset("table", table_csv, **OPTS)
    with pytest.raises(DatasetError) as e:
        t.column("backgrond")
    assert "did you mean 'background'" in (e.value.help or "")


def test_parquet_equals_csv(table_csv: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (optional)")
    import pyarrow.parquet as pq

    cols = list(zip(*ROWS, strict=True))
    tab = pa.table({h: list(c) for h, c in zip(HEADER, cols, strict=True)})
    pq.write_table(tab, table_csv.parent / "labels.parquet")
    a = load_dataset("table", table_csv, **OPTS)
    b = load_dataset("table", table_csv.parent / "labels.parquet", **OPTS)
    assert a.columns == b.columns and a.paths == b.paths
    for c in a.columns:
        assert a.column(c).tolist() == b.column(c).tolist(), c
    assert b.where(2) == f"row 2 (from {table_csv.parent / 'labels.parquet'})"


def test_parquet_without_pyarrow_is_a_clear_error(
    table_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pq_file = table_csv.parent / "t.parquet"
    pq_file.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DatasetError) as e:
        load_dataset("table", pq_file, image_column="file")
    assert "needs pyarrow" in e.value.message and "pip install pyarrow" in (e.value.help or "")


@pytest.mark.parametrize(
    ("opts", "message", "hint"),
    [
        ({"image_column": "fle"}, "image_column 'fle' is not a column", "did you mean 'file'"),
        (
            {"image_column": "file", "group_columns": ["bird", "backgroud"]},
            "group_columns[1] 'backgroud' is not a column",
            "did you mean 'background'",
        ),
        ({"image_column": "file", "label_column": "brd"}, "label_column 'brd'", "'bird'"),
        (
            {"image_column": "file", "group_columns": ["note"]},
            "group column 'note' must hold whole numbers",
            "recode it",
        ),
        ({}, "no image-path column among fname, bird", "image_column: COLUMN"),
    ],
)
def test_declared_columns_are_checked(
    table_csv: Path, opts: dict[str, object], message: str, hint: str
) -> None:
    header = ["fname", *HEADER[1:]] if not opts else HEADER
    if not opts:
        _csv(table_csv, header)
    with pytest.raises(DatasetError) as e:
        load_dataset("table", table_csv, **opts)  # type: ignore[arg-type]
    assert message in e.value.message
    assert hint in (e.value.help or "") + e.value.message


def test_bad_rows_name_the_file_and_line(tmp_path: Path) -> None:
    rows = list(ROWS)
    rows[2] = ("img/c.png", 0, 1, "holdout", 2.0, "plain")
    f = _csv(tmp_path / "t.csv", rows=rows)
    with pytest.raises(DatasetError) as e:
        load_dataset("table", f, image_column="file", split_column="subset")
    assert e.value.message == f"{f}:4: split column 'subset' has 'holdout'"
    rows[2] = ("", 0, 1, "train", 2.0, "plain")
    _csv(f, rows=rows)
    with pytest.raises(DatasetError, match=r"t.csv:4: empty image path in column 'file'"):
        load_dataset("table", f, image_column="file")
    t = load_dataset("table", _csv(f), image_column="file")
    with pytest.raises(DatasetError, match=r"image not found: .*a.png \(row 0 \(line 2 of"):
        t.image(0)


def test_roots_and_detection(tmp_path: Path, table_csv: Path) -> None:
    assert detect_format(table_csv) == "table"
    with pytest.raises(DatasetError, match="no CSV or Parquet file"):
        load_dataset("table", tmp_path / "img")
    _csv(tmp_path / "other.csv")
    with pytest.raises(DatasetError, match="holds 2 table files"):
        load_dataset("table", tmp_path)
    with pytest.raises(DatasetError, match="table dataset root not found"):
        load_dataset("table", tmp_path / "nope.csv")
    with pytest.raises(DatasetError, match="takes no option"):
        load_dataset("waterbirds", tmp_path, image_column="file")


def test_image_root_and_absolute_paths(tmp_path: Path) -> None:
    _images(tmp_path / "pics")
    meta = tmp_path / "meta"
    meta.mkdir()
    f = _csv(meta / "t.csv")
    t = load_dataset("table", f, image_column="file", image_root="../pics")
    assert t.image(0).size == (8, 8)
    rows = [(str(tmp_path / "pics" / r[0]), *r[1:]) for r in ROWS]
    t2 = load_dataset("table", _csv(meta / "t.csv", rows=rows), image_column="file")
    assert t2.paths[4] == str(tmp_path / "pics/img/e.png")
