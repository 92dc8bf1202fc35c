"""Readers and writers for the real on-disk dataset layouts (reference: formats.md §3).

The writers produce byte-for-byte the layouts users download (Waterbirds' `metadata.csv`, CelebA's
attribute/partition files, RTA-100/PAINT file names, Disentangling's `annotations.json`,
ImageFolder), so the synthetic world and the test fixtures exercise the same loaders real data
goes through. Loaders never download: a missing root or file is a `DatasetError` naming the file
(and the row, for a bad row) and the fix.

Records given to writers are mappings (or objects with the same attribute names); see each
writer's docstring for the keys.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from steerlang.data.table import SPLIT_CODES, ImageTable, _did_you_mean, normalize_split
from steerlang.errors import DatasetError
from steerlang.files import atomic_write_bytes, atomic_write_text

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

WATERBIRDS_HEADER: tuple[str, ...] = (
    "img_id",
    "img_filename",
    "y",
    "split",
    "place",
    "place_filename",
)

FORMATS: tuple[str, ...] = (
    "waterbirds",
    "celeba",
    "rta100",
    "paint",
    "typographic",
    "disentangling",
    "imagefolder",
)
TYPOGRAPHIC_FORMATS: tuple[str, ...] = ("rta100", "paint", "typographic")
IMAGE_EXTS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")

# Disentangling protocols differ in layout, class list and prompt template (formats.md §3.3).
DISENTANGLING_TEMPLATES: dict[str, str] = {
    "dp": "a photo of {}.",
    "dyslexify": "a photo of a {}.",
}
TYPOGRAPHIC_TEMPLATE = "a photo of a {}."

_MISSING = object()


# =============================================================================================
# small helpers
# =============================================================================================


def _get(rec: Any, key: str, default: Any = _MISSING) -> Any:
    if isinstance(rec, Mapping):
        if key in rec:
            return rec[key]
    elif hasattr(rec, key):
        return getattr(rec, key)
    if default is _MISSING:
        raise KeyError(f"record is missing '{key}': {rec!r}"[:300])
    return default


def _split_code(value: Any) -> int:
    if isinstance(value, int) and value in (0, 1, 2):
        return value
    return SPLIT_CODES[normalize_split(str(value))]


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text, fsync=False)


def _save_image(img: Image.Image, path: Path, **kw: Any) -> None:
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported image extension: {path.suffix}")
    buf = io.BytesIO()
    im = img.convert("RGB") if img.mode != "RGB" else img
    if fmt == "JPEG":
        kw.setdefault("quality", 95)
    im.save(buf, format=fmt, **kw)
    atomic_write_bytes(path, buf.getvalue(), fsync=False)


def _require_root(root: Path | str, fmt: str) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(
            f"{fmt} dataset root not found: {root}",
            help="point the profile's `datasets:` entry (or `--data NAME=PATH`) at the folder "
            "you extracted the dataset into; steerlang never downloads datasets",
        )
    if not root.is_dir():
        raise DatasetError(f"{fmt} dataset root is not a folder: {root}")
    return root


def _int_field(
    value: str, *, file: Path, line: int, column: str, allowed: Sequence[int] | None
) -> int:
    try:
        v = int(value.strip())
    except (ValueError, AttributeError):
        raise DatasetError(
            f"{file}:{line}: column '{column}' has '{value}', expected an integer",
            help=f"fix or delete line {line} of {file.name} (the file may be truncated)",
        ) from None
    if allowed is not None and v not in allowed:
        raise DatasetError(
            f"{file}:{line}: column '{column}' has {v}, expected one of {list(allowed)}",
            help=f"fix or delete line {line} of {file.name}",
        )
    return v


def _read_csv(file: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) rows; every row must have the header's width."""
    if not file.is_file():
        raise DatasetError(
            f"metadata file not found: {file}",
            help="the dataset root must contain the metadata file shipped with the dataset",
        )
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {file}: {e}") from e
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise DatasetError(f"{file} is empty", help="re-extract the dataset archive") from None
    except csv.Error as e:
        raise DatasetError(f"{file}:1: malformed CSV header: {e}") from e
    header = [h.strip() for h in header]
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise DatasetError(
                    f"{file}:{line}: row has {len(fields)} fields, the header has {len(header)}",
                    help=f"fix or delete line {line} of {file.name} (the file may be truncated)",
                )
            rows.append((line, fields))
    except csv.Error as e:
        raise DatasetError(
            f"{file}:{reader.line_num}: malformed CSV: {e}",
            help="the file may be truncated; re-extract the dataset archive",
        ) from e
    return header, rows


def _require_header(file: Path, header: Sequence[str], needed: Sequence[str]) -> dict[str, int]:
    pos = {h: i for i, h in enumerate(header)}
    for col in needed:
        if col not in pos:
            raise DatasetError(
                f"{file}:1: missing column '{col}' (header: {','.join(header)})",
                help=_did_you_mean(col, header)
                + f"{file.name} needs the columns {', '.join(needed)}",
            )
    return pos


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


# =============================================================================================
# Waterbirds
# =============================================================================================


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
        sp = str(_get(r, "species"))
        names.append(sp.split(".", 1)[1] if re.match(r"^\d{3}\.", sp) else sp)
    auto_ids = {n: i + 1 for i, n in enumerate(sorted(set(names)))}
    rows = []
    for k, (r, sp) in enumerate(zip(recs, names, strict=True)):
        raw = str(_get(r, "species"))
        sid = (
            int(raw[:3]) if re.match(r"^\d{3}\.", raw) else int(_get(r, "species_id", auto_ids[sp]))
        )
        img_id = int(_get(r, "img_id", k + 1))
        y = int(_get(r, "y"))
        place = int(_get(r, "place"))
        rel = f"{sid:03d}.{sp}/{sp}_{img_id:04d}_{100 + k}.jpg"
        place_fn = _get(r, "place_filename", None)
        if place_fn is None:
            place_fn = (
                f"/o/ocean/{img_id:08d}.jpg" if place == 1 else f"/b/bamboo_forest/{img_id:08d}.jpg"
            )
        _save_image(_get(r, "image"), root / rel)
        rows.append((img_id, rel, y, _split_code(_get(r, "split")), place, place_fn))
    _atomic_write_text(root / "metadata.csv", _csv_text(WATERBIRDS_HEADER, rows))
    return root


def _find_waterbirds_root(root: Path) -> Path:
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
    base = _find_waterbirds_root(_require_root(root, "waterbirds"))
    meta_file = base / "metadata.csv"
    header, rows = _read_csv(meta_file)
    pos = _require_header(meta_file, header, ("img_filename", "y", "split", "place"))
    paths: list[str] = []
    cols: dict[str, list[Any]] = {
        "img_id": [],
        "img_filename": [],
        "y": [],
        "place": [],
        "split": [],
        "species": [],
        "place_filename": [],
    }
    source: list[tuple[str, int]] = []
    for line, f in rows:
        fn = f[pos["img_filename"]].strip()
        if not fn:
            raise DatasetError(f"{meta_file}:{line}: empty img_filename")
        img_id = line - 1
        if "img_id" in pos:
            img_id = _int_field(
                f[pos["img_id"]], file=meta_file, line=line, column="img_id", allowed=None
            )
        cols["img_id"].append(img_id)
        cols["img_filename"].append(fn)
        cols["y"].append(
            _int_field(f[pos["y"]], file=meta_file, line=line, column="y", allowed=(0, 1))
        )
        cols["split"].append(
            _int_field(
                f[pos["split"]], file=meta_file, line=line, column="split", allowed=(0, 1, 2)
            )
        )
        cols["place"].append(
            _int_field(f[pos["place"]], file=meta_file, line=line, column="place", allowed=(0, 1))
        )
        folder = fn.split("/", 1)[0]
        cols["species"].append(folder.split(".", 1)[1] if "." in folder else folder)
        cols["place_filename"].append(f[pos["place_filename"]] if "place_filename" in pos else "")
        paths.append(str(base / fn))
        source.append((str(meta_file), line))
    return ImageTable(
        name=name,
        format="waterbirds",
        root=base,
        paths=paths,
        data=cols,
        classes=["landbird", "waterbird"],
        meta={"label_column": "y", "group_columns": ["y", "place"]},
        source=source,
    )


# =============================================================================================
# CelebA
# =============================================================================================


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
        attrs = _get(r, "attrs", {}) or {}
        unknown = [a for a in attrs if a not in names]
        if unknown:
            raise KeyError(f"unknown CelebA attribute(s) {unknown}")
        vals = [1 if attrs.get(a, 0) else -1 for a in names]
        _save_image(_get(r, "image"), root / "img_align_celeba" / fn)
        entries.append((fn, vals, _split_code(_get(r, "split"))))
    if variant == "txt":
        lines = [str(len(entries)), " ".join(names) + " "]
        for fn, vals, _ in entries:
            lines.append(fn + "".join(f"{v:>3d}" for v in vals))
        _atomic_write_text(root / "list_attr_celeba.txt", "\n".join(lines) + "\n")
        _atomic_write_text(
            root / "list_eval_partition.txt", "".join(f"{fn} {s}\n" for fn, _, s in entries)
        )
    else:
        _atomic_write_text(
            root / "list_attr_celeba.csv",
            _csv_text(["image_id", *names], ([fn, *vals] for fn, vals, _ in entries)),
        )
        _atomic_write_text(
            root / "list_eval_partition.csv",
            _csv_text(["image_id", "partition"], ([fn, s] for fn, _, s in entries)),
        )
    return root


def _find_celeba_root(root: Path) -> tuple[Path, str]:
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
                _int_field(f, file=file, line=lines[i], column=a, allowed=(-1, 1))
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
            code = _int_field(p[1], file=part_file, line=ln, column="partition", allowed=(0, 1, 2))
        parts[p[0]] = code
    return parts


def load_celeba(root: Path | str, *, name: str = "celeba") -> ImageTable:
    base, variant = _find_celeba_root(_require_root(root, "celeba"))
    if variant == "txt":
        attr_file = base / "list_attr_celeba.txt"
        names, files, line_nos, mat = _read_celeba_txt(attr_file)
        part_file = base / "list_eval_partition.txt"
        parts = _read_partition_txt(part_file)
    else:
        attr_file = base / "list_attr_celeba.csv"
        header, rows = _read_csv(attr_file)
        _require_header(attr_file, header, ("image_id",))
        names = [h for h in header if h != "image_id"]
        id_pos = header.index("image_id")
        files = [f[id_pos].strip() for _, f in rows]
        line_nos = [ln for ln, _ in rows]
        values = [",".join(v for i, v in enumerate(f) if i != id_pos) for _, f in rows]
        mat = _pm1_matrix(values, line_nos, names, attr_file, ",")
        part_file = base / "list_eval_partition.csv"
        pheader, prows = _read_csv(part_file)
        ppos = _require_header(part_file, pheader, ("image_id", "partition"))
        parts = {
            f[ppos["image_id"]].strip(): _int_field(
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
    )


# =============================================================================================
# Typographic sets labelled in file names (RTA-100, PAINT)
# =============================================================================================

_DUP_SUFFIX = re.compile(r"#\d+$")


def typographic_filename(label: str, text: str, ext: str = ".png") -> str:
    return f"label={label}_text={text}{ext}"


def parse_typographic_name(filename: str) -> tuple[str, str] | None:
    """(true label, attack word) from `label=<true>_text=<word>.<ext>`, or None.

    Parses on the `label=` / `_text=` markers, not on `_`, so class names with underscores
    survive; a trailing `#N` (our writer's disambiguator for repeated pairs) is dropped.
    """
    stem = filename
    low = stem.lower()
    for ext in IMAGE_EXTS:
        if low.endswith(ext):
            stem = stem[: -len(ext)]
            break
    if not stem.startswith("label="):
        return None
    cut = stem.find("_text=")
    if cut < 0:
        return None
    label = stem[len("label=") : cut]
    text = _DUP_SUFFIX.sub("", stem[cut + len("_text=") :])
    if not label or not text:
        return None
    return label, text


def write_typographic(root: Path | str, records: Iterable[Any], *, ext: str = ".png") -> Path:
    """Write an RTA-100/PAINT-style folder: `label=<true>_text=<word>.png` images.

    Record keys: `image` (PIL, already carrying the written word), `label` (true class name),
    `text` (the attack word). Repeated (label, text) pairs get a `#2`, `#3`… suffix that the
    loader strips.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    seen: dict[tuple[str, str], int] = {}
    for r in records:
        label, text = str(_get(r, "label")), str(_get(r, "text"))
        for s in (label, text):
            if "/" in s or "_text=" in s or not s:
                raise ValueError(f"class name {s!r} cannot be written in a file name")
        n = seen.get((label, text), 0) + 1
        seen[(label, text)] = n
        stem = typographic_filename(label, text, ext="") + (f"#{n}" if n > 1 else "")
        _save_image(_get(r, "image"), root / f"{stem}{ext}")
    return root


def _find_typographic_root(root: Path) -> Path:
    candidates = [
        root,
        root / "ours" / "data",
        root / "typographic_real_data_from_PAINT" / "typographic_attacks",
        root / "typographic_attacks",
    ]
    for c in candidates:
        if c.is_dir() and any(p.name.startswith("label=") for p in c.iterdir()):
            return c
    raise DatasetError(
        f"no images named 'label=<true>_text=<word>.png' under {root}",
        help="point the root at the folder holding the typographic images "
        "(RTA-100: <root>/ours/data/, PAINT: <root>/typographic_real_data_from_PAINT/"
        "typographic_attacks/)",
    )


def load_typographic(
    root: Path | str, *, format: str = "typographic", name: str | None = None
) -> ImageTable:
    base = _find_typographic_root(_require_root(root, format))
    files = sorted(p for p in base.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    labels: list[str] = []
    texts: list[str] = []
    paths: list[str] = []
    for p in files:
        parsed = parse_typographic_name(p.name)
        if parsed is None:
            raise DatasetError(
                f"{p}: file name does not follow 'label=<true>_text=<word>.<ext>'",
                help="rename the file to that scheme or move it out of the dataset folder",
            )
        labels.append(parsed[0])
        texts.append(parsed[1])
        paths.append(str(p))
    classes = sorted(set(labels) | set(texts))
    index = {c: i for i, c in enumerate(classes)}
    return ImageTable(
        name=name or format,
        format=format,
        root=base,
        paths=paths,
        data={
            "label": [index[x] for x in labels],
            "text": [index[x] for x in texts],
            "label_name": labels,
            "text_name": texts,
        },
        classes=classes,
        meta={
            "protocol": format,
            "prompt_template": TYPOGRAPHIC_TEMPLATE,
            "label_column": "label",
            "attack_column": "text",
        },
        source=[(str(p), 0) for p in files],
    )


# =============================================================================================
# Disentangling (Materzynska et al.)
# =============================================================================================


def write_disentangling(
    root: Path | str,
    records: Iterable[Any],
    *,
    layout: str = "dp",
    classes: Sequence[str] | None = None,
) -> Path:
    """Write the Disentangling set: `annotations.json` keyed by file name.

    Record keys: `image` (PIL), `label` (true object), `text` (typographic attack label).
    `layout='dp'` writes `<root>/typographic_attack_dataset/{annotations.json, classes.json,
    images/}` (Defense-Prefix's loader); `layout='dyslexify'` writes `annotations.json` with the
    images directly under `root`. `classes` (DP's `classes.json`) defaults to the true objects.
    Returns the folder holding `annotations.json`.
    """
    if layout not in ("dp", "dyslexify"):
        raise ValueError("layout must be 'dp' or 'dyslexify'")
    root = Path(root)
    base = root / "typographic_attack_dataset" if layout == "dp" else root
    img_dir = base / "images" if layout == "dp" else base
    ann: dict[str, dict[str, str]] = {}
    true_objects: list[str] = []
    for k, r in enumerate(records):
        fn = f"IMG_{k + 1:04d}.JPG"
        label, text = str(_get(r, "label")), str(_get(r, "text"))
        _save_image(_get(r, "image"), img_dir / fn, quality=95)
        ann[fn] = {"true object": label, "typographic attack label": text}
        if label not in true_objects:
            true_objects.append(label)
    _atomic_write_text(base / "annotations.json", json.dumps(ann, indent=2) + "\n")
    if layout == "dp":
        cls = list(classes) if classes is not None else sorted(true_objects)
        _atomic_write_text(
            base / "classes.json", json.dumps({c: i for i, c in enumerate(cls)}, indent=2) + "\n"
        )
    return base


def _find_disentangling_root(root: Path) -> tuple[Path, str]:
    inner = root / "typographic_attack_dataset"
    if (inner / "annotations.json").is_file():
        return inner, "dp"
    if (root / "annotations.json").is_file():
        dp = (root / "classes.json").is_file() and (root / "images").is_dir()
        return root, "dp" if dp else "dyslexify"
    hint = ""
    for c in (root / "annotation.json", inner / "annotation.json"):
        if c.is_file():
            hint = f"found {c}: both reference loaders read 'annotations.json'; rename it. "
    raise DatasetError(
        f"no annotations.json under {root}",
        help=hint + "Defense-Prefix layout: <root>/typographic_attack_dataset/{annotations.json,"
        " classes.json, images/}; Dyslexify layout: <root>/annotations.json next to the images",
    )


def _load_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {file}: {e}") from e
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"{file}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}",
            help="the file may be truncated; re-extract it from the dataset archive",
        ) from e


def load_disentangling(
    root: Path | str, *, name: str = "disentangling", protocol: str | None = None
) -> ImageTable:
    base, layout = _find_disentangling_root(_require_root(root, "disentangling"))
    protocol = protocol or layout
    if protocol not in DISENTANGLING_TEMPLATES:
        raise DatasetError(
            f"unknown Disentangling protocol '{protocol}'", help="use 'dp' or 'dyslexify'"
        )
    ann_file = base / "annotations.json"
    ann = _load_json(ann_file)
    if not isinstance(ann, dict):
        raise DatasetError(f"{ann_file}: expected an object keyed by image file name")
    img_dir = base / "images" if layout == "dp" else base
    labels: list[str] = []
    texts: list[str] = []
    paths: list[str] = []
    keys: list[str] = []
    for key, entry in ann.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("true object"), str)
            or not isinstance(entry.get("typographic attack label"), str)
        ):
            raise DatasetError(
                f"{ann_file}: entry '{key}' needs string fields 'true object' and "
                f"'typographic attack label', found {json.dumps(entry)[:120]}",
                help=f"fix the '{key}' entry of {ann_file.name}",
            )
        labels.append(entry["true object"])
        texts.append(entry["typographic attack label"])
        paths.append(str(img_dir / key))
        keys.append(key)
    if protocol == "dp":
        cls_file = base / "classes.json"
        if not cls_file.is_file():
            raise DatasetError(
                f"classes file not found: {cls_file}",
                help="the Defense-Prefix protocol takes its classes from classes.json; "
                "use protocol 'dyslexify' to take the union of true and attack labels instead",
            )
        cls_obj = _load_json(cls_file)
        if not isinstance(cls_obj, dict | list):
            raise DatasetError(f"{cls_file}: expected an object whose keys are the class names")
        classes = [str(c) for c in cls_obj]
        missing = sorted(set(labels) - set(classes))
        if missing:
            raise DatasetError(
                f"{ann_file}: true objects {missing} are not in {cls_file.name}",
                help=f"add them to {cls_file}",
            )
    else:
        classes = sorted(set(labels) | set(texts))
    index = {c: i for i, c in enumerate(classes)}
    return ImageTable(
        name=name,
        format="disentangling",
        root=base,
        paths=paths,
        data={
            "label": [index[x] for x in labels],
            "text": [index.get(x, -1) for x in texts],
            "label_name": labels,
            "text_name": texts,
            "file": keys,
        },
        classes=classes,
        meta={
            "protocol": protocol,
            "layout": layout,
            "prompt_template": DISENTANGLING_TEMPLATES[protocol],
            "label_column": "label",
            "attack_column": "text",
        },
        source=[(str(ann_file), 0)] * len(paths),
    )


# =============================================================================================
# ImageFolder
# =============================================================================================


def write_imagefolder(root: Path | str, records: Iterable[Any], *, ext: str = ".png") -> Path:
    """Write `root/<class>/<n>.png` (or `root/<split>/<class>/…` when records carry `split`).

    Record keys: `image` (PIL), `label` (class name); optional `split`.
    """
    root = Path(root)
    recs = list(records)
    with_split = any(_get(r, "split", None) is not None for r in recs)
    for k, r in enumerate(recs):
        label = str(_get(r, "label"))
        if "/" in label or not label or label.startswith("."):
            raise ValueError(f"class name {label!r} cannot be a folder name")
        folder = root / label
        if with_split:
            folder = root / ("train", "val", "test")[_split_code(_get(r, "split"))] / label
        _save_image(_get(r, "image"), folder / f"{k:06d}{ext}")
    root.mkdir(parents=True, exist_ok=True)
    return root


def load_imagefolder(root: Path | str, *, name: str = "imagefolder") -> ImageTable:
    base = _require_root(root, "imagefolder")
    subdirs = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = {}
    for p in subdirs:
        try:
            split_dirs[p] = normalize_split(p.name)
        except DatasetError:
            split_dirs = {}
            break
    layouts = split_dirs.items() if split_dirs else [(base, None)]
    entries: list[tuple[str, str, int | None]] = []
    class_names: set[str] = set()
    for folder, split in layouts:
        for cdir in sorted(
            p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            class_names.add(cdir.name)
            for f in sorted(cdir.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
                    entries.append(
                        (str(f), cdir.name, SPLIT_CODES[split] if split is not None else None)
                    )
    if not entries:
        raise DatasetError(
            f"no images under {base}",
            help="an ImageFolder root holds one folder per class (optionally inside "
            "train/ val/ test/ folders), each with image files",
        )
    classes = sorted(class_names)
    index = {c: i for i, c in enumerate(classes)}
    data: dict[str, list[Any]] = {
        "label": [index[c] for _, c, _ in entries],
        "label_name": [c for _, c, _ in entries],
    }
    if split_dirs:
        data["split"] = [s for _, _, s in entries]
    return ImageTable(
        name=name,
        format="imagefolder",
        root=base,
        paths=[p for p, _, _ in entries],
        data=data,
        classes=classes,
        meta={"label_column": "label"},
    )


# =============================================================================================
# dispatch
# =============================================================================================


def detect_format(root: Path | str) -> str:
    """Guess a dataset's format from its files (used for `--data NAME=PATH` without a format)."""
    base = _require_root(root, "dataset")
    probes = [
        ("waterbirds", _find_waterbirds_root),
        ("celeba", _find_celeba_root),
        ("disentangling", _find_disentangling_root),
        ("typographic", _find_typographic_root),
    ]
    for fmt, probe in probes:
        try:
            probe(base)
            return fmt
        except DatasetError:
            continue
    if any(p.is_dir() for p in base.iterdir()):
        return "imagefolder"
    raise DatasetError(
        f"cannot tell the dataset format of {base}",
        help=f"name it explicitly (NAME=FORMAT:PATH); formats: {', '.join(FORMATS)}",
    )


def load_dataset(
    format: str,
    root: Path | str,
    split: str | None = None,
    *,
    name: str | None = None,
    **options: Any,
) -> ImageTable:
    """Load a dataset in one of FORMATS; `split` ('train'|'val'|'test') keeps only that split.

    Options: `protocol` ('dp'|'dyslexify') for Disentangling.
    """
    fmt = str(format).strip().lower()
    if fmt not in FORMATS:
        raise DatasetError(
            f"unknown dataset format '{format}'",
            help=_did_you_mean(fmt, FORMATS) + f"formats: {', '.join(FORMATS)}",
        )
    allowed = {"disentangling": {"protocol"}}.get(fmt, set())
    extra = set(options) - allowed
    if extra:
        raise DatasetError(
            f"dataset format '{fmt}' takes no option(s) {sorted(extra)}",
            help=f"options for {fmt}: {sorted(allowed) or 'none'}",
        )
    nm = name or fmt
    if fmt == "waterbirds":
        table = load_waterbirds(root, name=nm)
    elif fmt == "celeba":
        table = load_celeba(root, name=nm)
    elif fmt in TYPOGRAPHIC_FORMATS:
        table = load_typographic(root, format=fmt, name=nm)
    elif fmt == "disentangling":
        table = load_disentangling(root, name=nm, protocol=options.get("protocol"))
    else:
        table = load_imagefolder(root, name=nm)
    return table.split(split) if split is not None else table
