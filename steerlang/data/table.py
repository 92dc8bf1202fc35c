"""`ImageTable`: one loaded dataset, columnar, with lazy image reads.

Every loader (Waterbirds, CelebA, typographic sets, Disentangling, ImageFolder) returns this one
type so the runtime can treat datasets uniformly: concepts and groups are plain columns, splits
are a column mapped from each format's own codes, and images are read only when asked for (a
200k-image CelebA table costs a few arrays, not 200k open files).

Storage is columnar (one list per column) because statistics and metrics consume whole columns;
`rows` builds per-row dicts lazily for code that prefers records.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from steerlang.errors import DatasetError, did_you_mean
from steerlang.facts import SPLIT_ALIASES, SPLIT_NAMES

SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}


def normalize_split(name: str) -> str:
    """Map a split name or alias ('valid', 'validation', ...) to 'train' | 'val' | 'test'."""
    key = str(name).strip().lower()
    if key in SPLIT_ALIASES:
        return SPLIT_ALIASES[key]
    close = did_you_mean(key, SPLIT_ALIASES)
    hint = f"did you mean '{SPLIT_ALIASES[close]}'? " if close else ""
    raise DatasetError(
        f"unknown split '{name}'",
        help=f"{hint}splits are named {', '.join(repr(s) for s in SPLIT_NAMES)}",
    )


class ImageTable:
    """A dataset: image paths plus named columns (ints or strings), one row per image.

    `source` optionally records, per row, the metadata file and 1-based line the row came
    from, so every error about a row can name where to fix it. `sources` records the table
    files the loader read (path -> sha256 of their bytes), so cache keys follow the labels and
    attributes, not only the image files (steerlang/data/fingerprint.py).
    """

    def __init__(
        self,
        *,
        name: str,
        format: str,
        root: Path | str,
        paths: Sequence[str],
        data: dict[str, Sequence[Any]],
        classes: list[str] | None = None,
        meta: dict[str, Any] | None = None,
        source: Sequence[tuple[str, int]] | None = None,
        sources: dict[str, str] | None = None,
    ) -> None:
        n = len(paths)
        for col, values in data.items():
            if len(values) != n:
                raise ValueError(f"column {col!r} has {len(values)} values for {n} paths")
        if source is not None and len(source) != n:
            raise ValueError("source must have one entry per row")
        self.name = name
        self.format = format
        self.root = Path(root)
        self._paths: list[str] = [str(p) for p in paths]
        # int columns may be numpy arrays (cheap for 200k-row tables); others are lists
        self._data: dict[str, list[Any] | np.ndarray] = {
            k: v if isinstance(v, np.ndarray) else list(v) for k, v in data.items()
        }
        self.classes: list[str] | None = list(classes) if classes is not None else None
        self.meta: dict[str, Any] = dict(meta or {})
        self._source: list[tuple[str, int]] | None = list(source) if source is not None else None
        self.sources: dict[str, str] = dict(sources or {})
        self._rows: list[dict[str, Any]] | None = None

    # ---- shape -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._paths)

    def __repr__(self) -> str:
        return (
            f"ImageTable(name={self.name!r}, format={self.format!r}, rows={len(self)}, "
            f"columns={self.columns})"
        )

    @property
    def columns(self) -> list[str]:
        return list(self._data)

    @property
    def paths(self) -> list[str]:
        return list(self._paths)

    @property
    def has_splits(self) -> bool:
        return "split" in self._data

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            cols = [(k, _as_list(v)) for k, v in self._data.items()]
            self._rows = [
                {"path": p, **{k: v[i] for k, v in cols}} for i, p in enumerate(self._paths)
            ]
        return self._rows

    def row(self, i: int) -> dict[str, Any]:
        self._check_index(i)
        return {"path": self._paths[i], **{k: _item(v[i]) for k, v in self._data.items()}}

    def path(self, i: int) -> Path:
        self._check_index(i)
        return Path(self._paths[i])

    def where(self, i: int) -> str:
        """Human description of row i's origin ('row 12 of /data/metadata.csv')."""
        if self._source is not None:
            file, line = self._source[i]
            return f"row {i} (line {line} of {file})" if line > 0 else f"row {i} (from {file})"
        return f"row {i}"

    # ---- columns -----------------------------------------------------------------------
    def column(self, name: str) -> np.ndarray:
        if name == "path":
            return np.asarray(self._paths)
        if name not in self._data:
            guess = did_you_mean(name, self.columns)
            raise DatasetError(
                f"dataset '{self.name}' ({self.format}) has no column '{name}'",
                help=(f"did you mean '{guess}'? " if guess else "")
                + f"available columns: {', '.join(self.columns)}",
            )
        values = self._data[name]
        if isinstance(values, np.ndarray):
            out = values.view()
            out.flags.writeable = False
            return out
        if values and all(isinstance(v, bool | int | np.integer) for v in values):
            return np.asarray(values, dtype=np.int64)
        if not values:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(values)

    # ---- subsets -----------------------------------------------------------------------
    def subset(self, indices: Sequence[int] | np.ndarray, *, name: str | None = None) -> ImageTable:
        arr = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if arr.size and (arr.min() < -n or arr.max() >= n):
            raise IndexError(f"subset index out of range for dataset '{self.name}' ({n} rows)")
        arr = np.where(arr < 0, arr + n, arr)
        idx = arr.tolist()
        return ImageTable(
            name=name or self.name,
            format=self.format,
            root=self.root,
            paths=[self._paths[i] for i in idx],
            data={
                k: v[arr] if isinstance(v, np.ndarray) else [v[i] for i in idx]
                for k, v in self._data.items()
            },
            classes=self.classes,
            meta=self.meta,
            source=[self._source[i] for i in idx] if self._source is not None else None,
            sources=self.sources,
        )

    def split(self, name: str) -> ImageTable:
        """Rows of one split ('train' | 'val' | 'test', aliases accepted).

        Formats without splits (typographic sets, Disentangling, flat ImageFolder) are
        evaluation-only: every split name returns the whole table and `has_splits` is False,
        so callers can warn that statistics and evaluation share images.
        """
        split = normalize_split(name)
        if not self.has_splits:
            return self
        code = SPLIT_CODES[split]
        idx = np.flatnonzero(np.asarray(self._data["split"]) == code)
        sub = self.subset(idx, name=self.name)
        sub.meta = {**self.meta, "split": split}
        return sub

    # ---- images ------------------------------------------------------------------------
    def image(self, i: int) -> Image.Image:
        """Read row i as an RGB image; a missing or unreadable file is a DatasetError."""
        self._check_index(i)
        path = Path(self._paths[i])
        if not path.is_file():
            raise DatasetError(
                f"image not found: {path} ({self.where(i)} of dataset '{self.name}')",
                help="restore the file from the original archive, or remove its row from the "
                "metadata so the table matches the files on disk",
            )
        try:
            with Image.open(path) as im:
                im.load()
                return im.convert("RGB")
        except Image.DecompressionBombError as e:
            # Pillow refuses images of more than 2 x Image.MAX_IMAGE_PIXELS pixels before
            # decoding them (a few-KB file can claim gigapixels and exhaust memory).
            raise DatasetError(
                f"image {path} ({self.where(i)} of dataset '{self.name}') is too large to "
                f"decode safely: {e}",
                help="it is probably a decompression bomb: remove it, or its row from the "
                "metadata; a genuine huge image must be downscaled first",
            ) from None
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
            raise DatasetError(
                f"cannot read image {path} ({self.where(i)} of dataset '{self.name}'): {e}",
                help="the file is corrupt or truncated; re-extract it from the original "
                "archive, or remove its row from the metadata",
            ) from e

    def _check_index(self, i: int) -> None:
        if not -len(self) <= i < len(self):
            raise IndexError(f"row {i} out of range for dataset '{self.name}' ({len(self)} rows)")


def _as_list(v: list[Any] | np.ndarray) -> list[Any]:
    return v.tolist() if isinstance(v, np.ndarray) else v


def _item(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
