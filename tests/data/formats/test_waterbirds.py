"""Waterbirds: the metadata.csv layout, nested roots, and malformed metadata named by file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steerlang.data import (
    detect_format,
    load_dataset,
    write_waterbirds,
)
from steerlang.data.fixtures import WATERBIRDS_COUNTS, scaled_counts
from steerlang.errors import DatasetError


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
    shutil.copytree(wb_root, tmp_path / "cub" / "data" / "waterbird_complete95_forest2water2")
    t = load_dataset("waterbirds", tmp_path, split="val")
    assert len(t) == sum(scaled_counts(WATERBIRDS_COUNTS, 200)["val"])
    assert detect_format(tmp_path) == "waterbirds"


def test_waterbirds_missing_column_names_file_and_column(wb_root: Path, tmp_path: Path) -> None:
    root = shutil.copytree(wb_root, tmp_path / "wb")
    meta = root / "metadata.csv"
    lines = meta.read_text().splitlines()
    lines[0] = lines[0].replace(",place,", ",plaice,")
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as e:
        load_dataset("waterbirds", root)
    assert "metadata.csv:1" in str(e.value) and "'place'" in str(e.value)
    assert "did you mean 'plaice'" in (e.value.help or "")


def test_waterbirds_truncated_csv_names_line(wb_root: Path, tmp_path: Path) -> None:
    root = shutil.copytree(wb_root, tmp_path / "wb")
    meta = root / "metadata.csv"
    text = meta.read_text()
    n_lines = len(text.splitlines())
    meta.write_text(text[: text.rfind(",", 0, len(text) - 40)])  # cut inside the last row
    with pytest.raises(DatasetError) as e:
        load_dataset("waterbirds", root)
    assert f"metadata.csv:{n_lines}:" in str(e.value)
    assert "truncated" in (e.value.help or "")


def test_waterbirds_bad_value_names_line(wb_root: Path, tmp_path: Path) -> None:
    root = shutil.copytree(wb_root, tmp_path / "wb")
    meta = root / "metadata.csv"
    lines = meta.read_text().splitlines()
    f = lines[5].split(",")
    f[2] = "bird"
    lines[5] = ",".join(f)
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"metadata.csv:6: column 'y' has 'bird'"):
        load_dataset("waterbirds", root)


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


def test_waterbirds_extra_columns_are_kept(wb_root: Path, tmp_path: Path) -> None:
    """Columns beyond the standard six (WILDS and others add some) stay, typed."""
    root = tmp_path / "wb"
    shutil.copytree(wb_root, root)
    lines = (root / "metadata.csv").read_text().splitlines()
    out = [lines[0] + ",detail,background_name,confidence"]
    for k, line in enumerate(lines[1:]):
        out.append(line + f",{k % 3},{'water' if line.split(',')[4] == '1' else 'land'},0.{k}")
    (root / "metadata.csv").write_text("\n".join(out) + "\n")
    t = load_dataset("waterbirds", root)
    assert t.columns[-3:] == ["detail", "background_name", "confidence"]
    assert t.column("detail").dtype == np.int64
    assert t.column("detail").tolist()[:4] == [0, 1, 2, 0]
    names = t.column("background_name").tolist()
    assert names == ["water" if p == 1 else "land" for p in t.column("place").tolist()]
    assert t.column("confidence").tolist()[1] == pytest.approx(0.1)
    assert len(t.split("train").column("detail")) == len(t.split("train"))
