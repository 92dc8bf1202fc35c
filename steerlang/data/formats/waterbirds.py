"""Waterbirds (Sagawa et al.): `metadata.csv` plus `NNN.Species_Name/Species_Name_XXXX_YYYY.jpg`.

`metadata.csv` has the columns img_id, img_filename, y (0 landbird / 1 waterbird), split
(0 train / 1 val / 2 test), place (0 land / 1 water) and place_filename. The label is `y`, the
groups are (y, place). Any further columns of `metadata.csv` are kept, typed like a `table`'s
(whole numbers as integers, numbers as floats, else text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from steerlang.data.formats.common import (
    csv_text,
    int_field,
    read_csv,
    read_csv_header,
    record_field,
    require_header,
    require_root,
    save_image,
    source_digests,
    split_code,
    typed_column,
    write_text,
)
from steerlang.data.table import ImageTable
from steerlang.errors import DatasetError

WATERBIRDS_HEADER: tuple[str, ...] = (
    "img_id",
    "img_filename",
    "y",
    "split",
    "place",
    "place_filename",
)
# The columns every loaded Waterbirds table has, in order; metadata.csv's further columns
# follow them (`load_waterbirds`, `header_columns`).
LOADED_COLUMNS: tuple[str, ...] = (
    "img_id",
    "img_filename",
    "y",
    "place",
    "split",
    "species",
    "place_filename",
)


def write_waterbirds(root: Path | str, records: Iterable[Any]) -> Path:
    """Write a Waterbirds root: `metadata.csv` plus `NNN.Species_Name/Species_Name_XXXX_YYYY.jpg`.

    Record keys: `image` (PIL), `y` (0 landbird / 1 waterbird), `place` (0 land / 1 water),
    `split` ('train'|'val'|'test' or 0/1/2), `species` ('Black_footed_Albatross' or with its
    CUB prefix '001.Black_footed_Albatross'); optional `species_id` (CUB number), `img_id`,
    `place_filename`. Returns the root (the folder holding `metadata.csv`).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    recs = list(records)
    names: list[str] = []
    for r in recs:
        sp = str(record_field(r, "species"))
        names.append(sp.split(".", 1)[1] if re.match(r"^\d{3}\.", sp) else sp)
    auto_ids = {n: i + 1 for i, n in enumerate(sorted(set(names)))}
    rows = []
    for k, (r, sp) in enumerate(zip(recs, names, strict=True)):
        raw = str(record_field(r, "species"))
        sid = (
            int(raw[:3])
            if re.match(r"^\d{3}\.", raw)
            else int(record_field(r, "species_id", auto_ids[sp]))
        )
        img_id = int(record_field(r, "img_id", k + 1))
        y = int(record_field(r, "y"))
        place = int(record_field(r, "place"))
        rel = f"{sid:03d}.{sp}/{sp}_{img_id:04d}_{100 + k}.jpg"
        place_fn = record_field(r, "place_filename", None)
        if place_fn is None:
            place_fn = (
                f"/o/ocean/{img_id:08d}.jpg" if place == 1 else f"/b/bamboo_forest/{img_id:08d}.jpg"
            )
        save_image(record_field(r, "image"), root / rel)
        rows.append((img_id, rel, y, split_code(record_field(r, "split")), place, place_fn))
    write_text(root / "metadata.csv", csv_text(WATERBIRDS_HEADER, rows))
    return root


def find_root(root: Path) -> Path:
    candidates = [
        root,
        root / "waterbird_complete95_forest2water2",
        root / "cub" / "data" / "waterbird_complete95_forest2water2",
        root / "waterbirds_v1.0",
        root / "waterbirds",
    ]
    for c in candidates:
        if (c / "metadata.csv").is_file():
            return c
    raise DatasetError(
        f"no metadata.csv under {root}",
        help="point the root at the extracted waterbird_complete95_forest2water2/ folder "
        "(group_DRO: <root>/cub/data/..., WILDS: <root>/waterbirds_v1.0/)",
    )


def load_waterbirds(root: Path | str, *, name: str = "waterbirds") -> ImageTable:
    base = find_root(require_root(root, "waterbirds"))
    meta_file = base / "metadata.csv"
    header, rows = read_csv(meta_file)
    pos = require_header(meta_file, header, ("img_filename", "y", "split", "place"))
    paths: list[str] = []
    cols: dict[str, Any] = {c: [] for c in LOADED_COLUMNS}
    source: list[tuple[str, int]] = []
    for line, f in rows:
        fn = f[pos["img_filename"]].strip()
        if not fn:
            raise DatasetError(f"{meta_file}:{line}: empty img_filename")
        img_id = line - 1
        if "img_id" in pos:
            img_id = int_field(
                f[pos["img_id"]], file=meta_file, line=line, column="img_id", allowed=None
            )
        cols["img_id"].append(img_id)
        cols["img_filename"].append(fn)
        cols["y"].append(
            int_field(f[pos["y"]], file=meta_file, line=line, column="y", allowed=(0, 1))
        )
        cols["split"].append(
            int_field(f[pos["split"]], file=meta_file, line=line, column="split", allowed=(0, 1, 2))
        )
        cols["place"].append(
            int_field(f[pos["place"]], file=meta_file, line=line, column="place", allowed=(0, 1))
        )
        folder = fn.split("/", 1)[0]
        cols["species"].append(folder.split(".", 1)[1] if "." in folder else folder)
        cols["place_filename"].append(f[pos["place_filename"]] if "place_filename" in pos else "")
        paths.append(str(base / fn))
        source.append((str(meta_file), line))
    # Columns beyond the standard ones (WILDS' and others' additions) are kept as they are,
    # typed like a table's, so recipes can use them in concepts.
    for col in _extra_columns(header):
        cols[col] = typed_column([f[pos[col]] for _line, f in rows])
    return ImageTable(
        name=name,
        format="waterbirds",
        root=base,
        paths=paths,
        data=cols,
        classes=["landbird", "waterbird"],
        # Names of the values of y and place (value i is index i): the task's classes map
        # to y by index, and groups are every (y, place) pair even when a split lacks one.
        meta={
            "label_column": "y",
            "group_columns": ["y", "place"],
            "value_names": {"y": ["landbird", "waterbird"], "place": ["land", "water"]},
        },
        source=source,
        sources=source_digests(meta_file),
    )


def _extra_columns(header: Sequence[str]) -> list[str]:
    return [c for c in header if c not in LOADED_COLUMNS]


def header_columns(root: Path | str) -> tuple[str, ...]:
    """The columns `load_waterbirds` gives this root, from metadata.csv's first line only (no
    rows, no images): the compiler checks recipes' columns against them."""
    base = find_root(require_root(root, "waterbirds"))
    return (*LOADED_COLUMNS, *_extra_columns(read_csv_header(base / "metadata.csv")))
