"""Helpers every dataset format shares: reading records handed to writers, writing files
atomically, and reading metadata files so that every bad file, row or field becomes a
`DatasetError` naming the file, the line and the fix.

Records given to writers are mappings (or objects with the same attribute names); see each
writer's docstring for the keys.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from steerlang.data.table import SPLIT_CODES, normalize_split
from steerlang.errors import DatasetError, did_you_mean
from steerlang.files import atomic_write_bytes, atomic_write_text, sha256_file

IMAGE_EXTS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")

_MISSING = object()


def record_field(rec: Any, key: str, default: Any = _MISSING) -> Any:
    """`rec[key]` for a mapping, `rec.key` otherwise; without `default`, a missing key raises."""
    if isinstance(rec, Mapping):
        if key in rec:
            return rec[key]
    elif hasattr(rec, key):
        return getattr(rec, key)
    if default is _MISSING:
        raise KeyError(f"record is missing '{key}': {rec!r}"[:300])
    return default


def split_code(value: Any) -> int:
    """0 / 1 / 2 for train / val / test, from a code (or its text) or any split name or
    alias."""
    if isinstance(value, int) and value in (0, 1, 2):
        return value
    if isinstance(value, str) and value.strip() in ("0", "1", "2"):
        return int(value)
    return SPLIT_CODES[normalize_split(str(value))]


def write_text(path: Path, text: str) -> None:
    """Atomic, without fsync: written datasets are fixtures and caches, cheap to regenerate."""
    atomic_write_text(path, text, fsync=False)


def save_image(img: Image.Image, path: Path, **kw: Any) -> None:
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported image extension: {path.suffix}")
    buf = io.BytesIO()
    im = img.convert("RGB") if img.mode != "RGB" else img
    if fmt == "JPEG":
        kw.setdefault("quality", 95)
    im.save(buf, format=fmt, **kw)
    atomic_write_bytes(path, buf.getvalue(), fsync=False)


def source_digests(*files: Path) -> dict[str, str]:
    """`ImageTable.sources` for the table files a loader read: path -> sha256 of the bytes.

    Called after the files were parsed (so each exists); the cache keys of everything computed
    from the table include these digests (steerlang/data/fingerprint.py).
    """
    return {str(f): sha256_file(f) for f in files}


def require_root(root: Path | str, fmt: str) -> Path:
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


def int_field(
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


def read_csv(file: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
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


def first_lines(file: Path, n: int) -> list[str]:
    """The first `n` lines of a text file (BOM dropped), read without reading the rest: header
    readers (`header_columns` of each format) must stay cheap on a 200k-row metadata file."""
    if not file.is_file():
        raise DatasetError(
            f"metadata file not found: {file}",
            help="the dataset root must contain the metadata file shipped with the dataset",
        )
    out: list[str] = []
    try:
        with file.open(encoding="utf-8-sig", newline="") as f:
            for line in f:
                out.append(line.rstrip("\r\n"))
                if len(out) == n:
                    break
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {file}: {e}") from e
    return out


def read_csv_header(file: Path) -> list[str]:
    """A CSV file's header, stripped as `read_csv` strips it, from its first line only."""
    lines = first_lines(file, 1)
    if not lines:
        raise DatasetError(f"{file} is empty", help="re-extract the dataset archive")
    try:
        header = next(csv.reader([lines[0]]))
    except (csv.Error, StopIteration) as e:
        raise DatasetError(f"{file}:1: malformed CSV header: {e}") from e
    return [h.strip() for h in header]


def require_header(file: Path, header: Sequence[str], needed: Sequence[str]) -> dict[str, int]:
    """Column positions by name; a missing needed column names the file and a close match."""
    pos = {h: i for i, h in enumerate(header)}
    for col in needed:
        if col not in pos:
            guess = did_you_mean(col, header)
            raise DatasetError(
                f"{file}:1: missing column '{col}' (header: {','.join(header)})",
                help=(f"did you mean '{guess}'? " if guess else "")
                + f"{file.name} needs the columns {', '.join(needed)}",
            )
    return pos


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


_INT_RE = re.compile(r"[+-]?\d{1,18}")
_BOOL = {"true": 1, "false": 0}


def typed_column(values: Sequence[Any]) -> Any:
    """Whole numbers (and true/false) -> int64 array, numbers -> floats, else text."""
    if values and all(isinstance(v, bool | int) and not isinstance(v, float) for v in values):
        return np.asarray([int(v) for v in values], dtype=np.int64)
    if values and all(isinstance(v, float | int) for v in values):
        return [float(v) for v in values]
    if values and all(isinstance(v, str) for v in values):
        stripped = [v.strip() for v in values]
        if all(_INT_RE.fullmatch(v) for v in stripped):
            return np.asarray([int(v) for v in stripped], dtype=np.int64)
        if all(v.lower() in _BOOL for v in stripped):
            return np.asarray([_BOOL[v.lower()] for v in stripped], dtype=np.int64)
        try:
            return [float(v) for v in stripped]
        except ValueError:
            return list(values)
    return ["" if v is None else v for v in values]
