"""What identifies the data of a pass, for cache keys.

A statistics table or a steerability sweep is reused only when it was computed from the same
images, the same labels and concept values, and the same preprocessing. Four parts say so:

- the image files (`files_digest`): hashing every pixel of a large dataset would cost as much as
  the pass the cache saves, so an image is identified by its path relative to the dataset root
  and its size (cheap to stat; a changed image changes its size in practice). A missing file
  hashes as size -1: reading it later raises the loader's error naming the row;
- the table files the loader read (`sources_digest`: `metadata.csv`, CelebA's attribute and
  partition files, `annotations.json`, ...), by the sha256 of their bytes, recorded by the loader
  in `ImageTable.sources`. A relabelled `metadata.csv` keeps every image path and size, so
  without this a cached table computed under the old labels would be reused;
- the values of the columns a pass reads (`columns_digest`): the arrays themselves, so a change
  that reaches a concept or a label by any route (a derived column, a table built in memory)
  changes the key;
- the preprocessing (`preprocess_fingerprint`): the image size and normalisation that turn a file
  into the pixels the model sees.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def files_digest(table: Any, indices: Sequence[int] | np.ndarray) -> str:
    """sha256 over `relative/path:size` of the rows `indices` of `table`, in that order."""
    h = hashlib.sha256()
    root = Path(getattr(table, "root", "."))
    for i in np.asarray(indices).tolist():
        p = table.path(int(i))
        try:
            rel = p.relative_to(root).as_posix()
        except ValueError:
            rel = p.as_posix()
        try:
            size = p.stat().st_size
        except OSError:
            size = -1
        h.update(f"{rel}:{size}\n".encode())
    return h.hexdigest()


def sources_digest(table: Any) -> list[list[str]]:
    """`[name, sha256]` of every table file the loader read (`ImageTable.sources`), sorted,
    with names relative to the dataset root so a moved dataset folder keeps its keys."""
    root = Path(getattr(table, "root", "."))
    out: list[list[str]] = []
    for path, digest in (getattr(table, "sources", None) or {}).items():
        p = Path(path)
        try:
            name = p.relative_to(root).as_posix()
        except ValueError:
            name = p.as_posix()
        out.append([name, str(digest)])
    return sorted(out)


def columns_digest(columns: Mapping[str, Any]) -> str:
    """sha256 over the names and values of `columns` (name -> array of one value per row),
    independent of the mapping's order. Numbers hash by dtype and bytes, anything else by its
    JSON text, so `1` and `"1"` differ (a loader that changes how it parses a column misses
    the cache rather than risking a wrong hit)."""
    h = hashlib.sha256()
    for name in sorted(columns):
        arr = np.asarray(columns[name])
        h.update(f"{name}\0{arr.dtype.kind}{arr.dtype.itemsize}\0{arr.shape}\0".encode())
        if arr.dtype.kind in "biuf":
            h.update(np.ascontiguousarray(arr).tobytes())
        else:
            h.update(json.dumps([str(v) for v in arr.tolist()]).encode())
        h.update(b"\n")
    return h.hexdigest()


def preprocess_fingerprint(preprocess: Any) -> str:
    """A stable description of an image transform: its repr (for open_clip's eval transform,
    the resize, crop, mode conversion and normalisation constants), with memory addresses
    removed so equal transforms in two processes describe equally."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(preprocess))


def dataset_fingerprint(spec: Any, table: Any, split: str, indices: np.ndarray) -> dict[str, Any]:
    """The images of a `steer run` pass: the dataset's identity (its recipe spec when given),
    the split, the number of rows, the image files' digest and the table files' digests."""
    ident = spec.to_dict() if spec is not None and hasattr(spec, "to_dict") else {}
    ident.pop("origin", None)
    return {
        "name": ident.get("name", getattr(table, "name", None)),
        "format": ident.get("format", getattr(table, "format", None)),
        "split": split,
        "n": int(len(indices)),
        "files": files_digest(table, indices),
        "sources": sources_digest(table),
    }
