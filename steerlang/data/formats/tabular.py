"""A labelled table of image paths: one CSV or Parquet file, any columns.

The generic format for data that comes in none of the fixed layouts: one row per image, an
image-path column (relative to the table's folder, or to `image_root`, or absolute), and any
label, group and attribute columns, all usable in recipes' `concept` lines. An optional split
column holds split codes (0 train / 1 val / 2 test) or names (`train`, `validation`, ...).

Column values are typed once, here: a column whose every value is a whole number (or
true/false) becomes integers, one of numbers becomes floats, anything else stays text. Parquet
needs `pyarrow` (an optional dependency); CSV needs nothing.

docs/real-data.md and docs/profiles.md describe the profile keys (`image_column`,
`label_column`, `group_columns`, `split_column`, `image_root`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steerlang.data.formats.common import (
    read_csv,
    read_csv_header,
    source_digests,
    split_code,
    typed_column,
)
from steerlang.data.table import ImageTable
from steerlang.errors import DatasetError, did_you_mean

TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".pq")
# Image-path column names tried, in order, when the profile names none.
IMAGE_COLUMN_GUESSES: tuple[str, ...] = (
    "image_path",
    "img_path",
    "path",
    "filepath",
    "file_path",
    "filename",
    "img_filename",
    "file",
    "image",
)
TABLE_OPTIONS = frozenset(
    {"image_column", "label_column", "group_columns", "split_column", "image_root"}
)


def find_root(root: Path) -> Path:
    """The table file: `root` itself, or the one CSV/Parquet file directly inside it."""
    if root.is_file():
        if root.suffix.lower() in TABLE_SUFFIXES:
            return root
        raise DatasetError(
            f"{root} is not a CSV or Parquet file",
            help=f"a table dataset is one file ending in {', '.join(TABLE_SUFFIXES)}",
        )
    found = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    if len(found) == 1:
        return found[0]
    if not found:
        raise DatasetError(
            f"no CSV or Parquet file in {root}",
            help="point the root at the table file itself (root: /data/labels.csv)",
        )
    raise DatasetError(
        f"{root} holds {len(found)} table files ({', '.join(p.name for p in found[:5])})",
        help="point the root at the one to use (root: /data/labels.csv)",
    )


def load_table(
    root: Path | str,
    *,
    name: str = "table",
    image_column: str | None = None,
    label_column: str | None = None,
    group_columns: Sequence[str] | None = None,
    split_column: str | None = None,
    image_root: str | None = None,
) -> ImageTable:
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(
            f"table dataset root not found: {root}",
            help="point the profile's `datasets:` entry (or `--data NAME=table:PATH`) at the "
            "CSV or Parquet file",
        )
    file = find_root(root)
    if file.suffix.lower() == ".csv":
        header, columns, lines = _read_csv_columns(file)
    else:
        header, columns = _read_parquet_columns(file)
        lines = None
    n = len(next(iter(columns.values()))) if columns else 0
    if n == 0:
        raise DatasetError(f"{file} has no rows", help="a table dataset needs one row per image")

    def at(i: int) -> str:
        return f"{file}:{lines[i]}" if lines is not None else f"{file} (row {i})"

    img_col = image_column or next((c for c in IMAGE_COLUMN_GUESSES if c in columns), None)
    if img_col is None:
        raise DatasetError(
            f"{file}: no image-path column among {', '.join(header)}",
            help="name it in the profile: `image_column: COLUMN` (tried "
            f"{', '.join(IMAGE_COLUMN_GUESSES)})",
        )
    named = {"image_column": img_col, "label_column": label_column}
    named.update({"split_column": split_column} if split_column else {})
    for i, g in enumerate(group_columns or ()):
        named[f"group_columns[{i}]"] = g
    for key, col in named.items():
        if col is not None and col not in columns:
            guess = did_you_mean(col, header)
            raise DatasetError(
                f"{file}: {key} '{col}' is not a column (header: {', '.join(header)})",
                help=(f"did you mean '{guess}'? " if guess else "")
                + f"fix `{key.split('[')[0]}` in the profile's entry for dataset '{name}'",
            )
    base = Path(image_root).expanduser() if image_root else file.parent
    if not base.is_absolute():
        base = file.parent / base
    paths: list[str] = []
    for i, v in enumerate(columns[img_col]):
        text = "" if v is None else str(v).strip()
        if not text:
            raise DatasetError(
                f"{at(i)}: empty image path in column '{img_col}'",
                help="give every row an image file, or delete the row",
            )
        p = Path(text).expanduser()
        paths.append(str(p if p.is_absolute() else base / p))

    data: dict[str, Any] = {c: typed_column(v) for c, v in columns.items()}
    split_src = split_column or ("split" if "split" in columns else None)
    if split_src is not None:
        codes = np.empty(n, dtype=np.int64)
        for i, v in enumerate(columns[split_src]):
            try:
                codes[i] = split_code(v if isinstance(v, int) else str(v))
            except (DatasetError, ValueError) as e:
                raise DatasetError(
                    f"{at(i)}: split column '{split_src}' has {v!r}",
                    help=(getattr(e, "help", None) or "")
                    + " (or the codes 0 train / 1 val / 2 test)",
                ) from None
        if split_src != "split" and "split" in columns:
            raise DatasetError(
                f"{file}: split_column is '{split_src}' but the table also has a column 'split'",
                help="rename one of them: the loaded `split` column holds the split codes",
            )
        data["split"] = codes
    for g in group_columns or ():
        col = data[g]
        if not (isinstance(col, np.ndarray) and col.dtype.kind in "iub" and col.min() >= 0):
            shown = sorted({str(x) for x in columns[g]})[:6]
            raise DatasetError(
                f"{file}: group column '{g}' must hold whole numbers 0, 1, ...; it holds "
                f"{', '.join(shown)}",
                help="recode it as 0, 1, ... (one number per group value), or leave it out "
                "of group_columns",
            )
    meta: dict[str, Any] = {"table_file": str(file), "image_column": img_col}
    if label_column:
        meta["label_column"] = label_column
    if group_columns:
        meta["group_columns"] = list(group_columns)
    return ImageTable(
        name=name,
        format="table",
        root=base,
        paths=paths,
        data=data,
        meta=meta,
        source=[(str(file), lines[i] if lines is not None else 0) for i in range(n)],
        sources=source_digests(file),
    )


def _read_csv_columns(file: Path) -> tuple[list[str], dict[str, list[Any]], list[int]]:
    header, rows = read_csv(file)
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise DatasetError(f"{file}:1: column '{dup}' appears twice in the header")
    columns: dict[str, list[Any]] = {h: [] for h in header}
    for _line, fields in rows:
        for h, v in zip(header, fields, strict=True):
            columns[h].append(v)
    return header, columns, [line for line, _ in rows]


def _read_parquet_columns(file: Path) -> tuple[list[str], dict[str, list[Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(
            f"reading {file} needs pyarrow, which is not installed",
            help="pip install pyarrow (or save the table as CSV)",
        ) from None
    import pyarrow as pa

    try:
        tab = pq.read_table(file)
    except (OSError, pa.ArrowException) as e:
        raise DatasetError(
            f"cannot read {file}: {e}", help="the file is not a readable Parquet file"
        ) from e
    header: list[str] = []
    columns: dict[str, list[Any]] = {}
    for fld, col in zip(tab.schema, tab.columns, strict=True):
        if not _comparable(pa, fld.type):
            continue  # lists, structs, binary: not a column a concept can compare
        header.append(fld.name)
        columns[fld.name] = col.to_pylist()
    return header, columns


def _comparable(pa: Any, t: Any) -> bool:
    """Whether a Parquet column's type is one a concept can compare (the columns loaded)."""
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_dictionary(t)
    )


def header_columns(
    root: Path | str, *, split_column: str | None = None, **_options: Any
) -> tuple[str, ...]:
    """The columns `load_table` gives this table, from the CSV header or the Parquet schema
    only (no rows, no images): every column, plus `split` when `split_column` names another
    column. The compiler checks recipes' columns against them."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"table dataset root not found: {root}")
    file = find_root(root)
    if file.suffix.lower() == ".csv":
        header = read_csv_header(file)
    else:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise DatasetError(f"reading {file} needs pyarrow, which is not installed") from None
        try:
            schema = pq.read_schema(file)
        except (OSError, pa.ArrowException) as e:
            raise DatasetError(f"cannot read {file}: {e}") from e
        header = [f.name for f in schema if _comparable(pa, f.type)]
    if split_column and "split" not in header:
        header.append("split")
    return tuple(header)
