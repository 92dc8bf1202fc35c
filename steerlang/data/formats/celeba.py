"""CelebA: `img_align_celeba/000001.jpg`…, the 40-attribute file and the partition file.

Two variants: the original text files (`list_attr_celeba.txt`: a count line, a names line, then
one row of ±1 values per image; `list_eval_partition.txt`: `<file> <0|1|2>`) and Kaggle's CSV
files (`list_attr_celeba.csv`, `list_eval_partition.csv`). Attributes load as 0/1 columns; the
label is Blond_Hair, the groups are (Blond_Hair, Male).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steerlang.data.formats.common import (
    csv_text,
    first_lines,
    int_field,
    read_csv,
    read_csv_header,
    record_field,
    require_header,
    require_root,
    save_image,
    source_digests,
    split_code,
    write_text,
)
from steerlang.data.table import ImageTable
from steerlang.errors import DatasetError

# The 40 CelebA attributes in the canonical file order (Blond_Hair = 9, Male = 20, zero-based).
CELEBA_ATTRS: tuple[str, ...] = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)


def write_celeba(
    root: Path | str,
    records: Iterable[Any],
    attr_names: Sequence[str] = CELEBA_ATTRS,
    *,
    variant: str = "txt",
) -> Path:
    """Write a CelebA root: `img_align_celeba/000001.jpg`…, attribute and partition files.

    Record keys: `image` (PIL), `split` ('train'|'val'|'test' or 0/1/2), `attrs` (mapping attribute
    name → 0/1 or bool; unnamed attributes are written as -1). `variant='txt'` writes the original
    `list_attr_celeba.txt` (count line, names line, ±1 values in space-padded columns) and
    `list_eval_partition.txt`; `variant='csv'` writes the Kaggle `list_attr_celeba.csv` /
    `list_eval_partition.csv`.
    """
    if variant not in ("txt", "csv"):
        raise ValueError("variant must be 'txt' or 'csv'")
    root = Path(root)
    names = list(attr_names)
    entries: list[tuple[str, list[int], int]] = []
    for k, r in enumerate(records):
        fn = f"{k + 1:06d}.jpg"
        attrs = record_field(r, "attrs", {}) or {}
        unknown = [a for a in attrs if a not in names]
        if unknown:
            raise KeyError(f"unknown CelebA attribute(s) {unknown}")
        vals = [1 if attrs.get(a, 0) else -1 for a in names]
        save_image(record_field(r, "image"), root / "img_align_celeba" / fn)
        entries.append((fn, vals, split_code(record_field(r, "split"))))
    if variant == "txt":
        lines = [str(len(entries)), " ".join(names) + " "]
        for fn, vals, _ in entries:
            lines.append(fn + "".join(f"{v:>3d}" for v in vals))
        write_text(root / "list_attr_celeba.txt", "\n".join(lines) + "\n")
        write_text(root / "list_eval_partition.txt", "".join(f"{fn} {s}\n" for fn, _, s in entries))
    else:
        write_text(
            root / "list_attr_celeba.csv",
            csv_text(["image_id", *names], ([fn, *vals] for fn, vals, _ in entries)),
        )
        write_text(
            root / "list_eval_partition.csv",
            csv_text(["image_id", "partition"], ([fn, s] for fn, _, s in entries)),
        )
    return root


def find_root(root: Path) -> tuple[Path, str]:
    for c in (root, root / "celeba", root / "celebA" / "data", root / "celebA_v1.0"):
        if (c / "list_attr_celeba.txt").is_file():
            return c, "txt"
        if (c / "list_attr_celeba.csv").is_file():
            return c, "csv"
    raise DatasetError(
        f"no list_attr_celeba.txt or list_attr_celeba.csv under {root}",
        help="point the root at the folder holding CelebA's attribute file, "
        "img_align_celeba/ and the partition file (torchvision: <root>/celeba/)",
    )


def _pm1_matrix(
    values: list[str], lines: list[int], names: Sequence[str], file: Path, sep: str
) -> np.ndarray:
    """Rows of ±1 attribute values → uint8 0/1 matrix.

    Fast path: '-1' → '0', separators dropped, all rows joined and read as bytes (a 200k-row
    CelebA file in well under a second); any row that does not reduce to exactly one 0/1 digit
    per attribute is re-read field by field to report the exact line and column.
    """
    k = len(names)
    compact: list[str] = []
    for i, v in enumerate(values):
        c = v.replace("-1", "0").replace(sep, "").replace(" ", "")
        if len(c) != k or c.strip("01") or v.count("-") != c.count("0"):
            fields = v.split(sep) if sep != " " else v.split()
            if len(fields) != k:
                raise DatasetError(
                    f"{file}:{lines[i]}: expected a file name and {k} values, "
                    f"found {len(fields) + 1} fields",
                    help=f"fix or delete line {lines[i]} of {file.name} (the file may be truncated)",
                )
            for a, f in zip(names, fields, strict=True):
                int_field(f, file=file, line=lines[i], column=a, allowed=(-1, 1))
            raise DatasetError(f"{file}:{lines[i]}: malformed attribute values")  # pragma: no cover
        compact.append(c)
    if not compact:
        return np.zeros((0, k), dtype=np.uint8)
    buf = np.frombuffer("".join(compact).encode("ascii"), dtype=np.uint8)
    return (buf - ord("0")).reshape(len(compact), k)


def _read_celeba_txt(attr_file: Path) -> tuple[list[str], list[str], list[int], np.ndarray]:
    try:
        lines = attr_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {attr_file}: {e}") from e
    if len(lines) < 2:
        raise DatasetError(
            f"{attr_file} is truncated: it needs a count line and an attribute-names line",
            help="re-extract list_attr_celeba.txt from the CelebA archive",
        )
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DatasetError(
            f"{attr_file}:1: expected the image count, found '{lines[0].strip()[:40]}'"
        ) from None
    names = lines[1].split()
    files: list[str] = []
    values: list[str] = []
    line_nos: list[int] = []
    for ln, text in enumerate(lines[2:], start=3):
        fn, _, rest = text.strip().partition(" ")
        if not fn:
            continue
        files.append(fn)
        values.append(rest)
        line_nos.append(ln)
    if len(files) != count:
        raise DatasetError(
            f"{attr_file}: line 1 announces {count} images but {len(files)} rows follow",
            help="the file is truncated or edited; re-extract it (or fix the count on line 1)",
        )
    return names, files, line_nos, _pm1_matrix(values, line_nos, names, attr_file, " ")


def _read_partition_txt(part_file: Path) -> dict[str, int]:
    if not part_file.is_file():
        raise DatasetError(
            f"partition file not found: {part_file}",
            help="CelebA's list_eval_partition.txt maps each image to train/val/test",
        )
    parts: dict[str, int] = {}
    codes = {"0": 0, "1": 1, "2": 2}
    for ln, text in enumerate(part_file.read_text(encoding="utf-8").splitlines(), start=1):
        p = text.split()
        if not p:
            continue
        if len(p) != 2:
            raise DatasetError(
                f"{part_file}:{ln}: expected '<file> <0|1|2>', found '{text.strip()[:60]}'",
                help=f"fix or delete line {ln} of {part_file.name}",
            )
        code = codes.get(p[1])
        if code is None:
            code = int_field(p[1], file=part_file, line=ln, column="partition", allowed=(0, 1, 2))
        parts[p[0]] = code
    return parts


def load_celeba(root: Path | str, *, name: str = "celeba") -> ImageTable:
    base, variant = find_root(require_root(root, "celeba"))
    if variant == "txt":
        attr_file = base / "list_attr_celeba.txt"
        names, files, line_nos, mat = _read_celeba_txt(attr_file)
        part_file = base / "list_eval_partition.txt"
        parts = _read_partition_txt(part_file)
    else:
        attr_file = base / "list_attr_celeba.csv"
        header, rows = read_csv(attr_file)
        require_header(attr_file, header, ("image_id",))
        names = [h for h in header if h != "image_id"]
        id_pos = header.index("image_id")
        files = [f[id_pos].strip() for _, f in rows]
        line_nos = [ln for ln, _ in rows]
        values = [",".join(v for i, v in enumerate(f) if i != id_pos) for _, f in rows]
        mat = _pm1_matrix(values, line_nos, names, attr_file, ",")
        part_file = base / "list_eval_partition.csv"
        pheader, prows = read_csv(part_file)
        ppos = require_header(part_file, pheader, ("image_id", "partition"))
        parts = {
            f[ppos["image_id"]].strip(): int_field(
                f[ppos["partition"]], file=part_file, line=ln, column="partition", allowed=(0, 1, 2)
            )
            for ln, f in prows
        }
    img_dir = base / "img_align_celeba"
    if (img_dir / "img_align_celeba").is_dir():  # the Kaggle archive nests the folder
        img_dir = img_dir / "img_align_celeba"
    split: list[int] = []
    for fn, ln in zip(files, line_nos, strict=True):
        code = parts.get(fn)
        if code is None:
            raise DatasetError(
                f"{attr_file}:{ln}: image {fn} has no entry in {part_file.name}",
                help=f"add '{fn} <0|1|2>' to {part_file} or re-extract both files",
            )
        split.append(code)
    prefix = str(img_dir) + os.sep
    cols: dict[str, Any] = {"image_id": files}
    for j, a in enumerate(names):
        cols[a] = mat[:, j].astype(np.int64)
    cols["split"] = np.asarray(split, dtype=np.int64)
    return ImageTable(
        name=name,
        format="celeba",
        root=base,
        paths=[prefix + fn for fn in files],
        data=cols,
        meta={
            "variant": variant,
            "label_column": "Blond_Hair",
            "group_columns": ["Blond_Hair", "Male"],
        },
        source=[(str(attr_file), ln) for ln in line_nos],
        sources=source_digests(attr_file, part_file),
    )


def header_columns(root: Path | str) -> tuple[str, ...]:
    """The columns `load_celeba` gives this root (image_id, the attribute file's attributes,
    split), from the attribute file's header only: the compiler checks recipes against them."""
    base, variant = find_root(require_root(root, "celeba"))
    if variant == "txt":
        lines = first_lines(base / "list_attr_celeba.txt", 2)
        names = lines[1].split() if len(lines) == 2 else []
    else:
        names = [h for h in read_csv_header(base / "list_attr_celeba.csv") if h != "image_id"]
    return ("image_id", *names, "split")
