"""What identifies the images of a pass, for cache keys.

A statistics table or an activation cache entry is reused only when it was computed from the
same images. Hashing every pixel of a large dataset would cost as much as the pass the cache
saves, so files are identified by their path relative to the dataset root and their size
(cheap to stat; a changed file changes its size in practice). A missing file hashes as size -1:
reading it later raises the loader's error naming the row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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


def dataset_fingerprint(spec: Any, table: Any, split: str, indices: np.ndarray) -> dict[str, Any]:
    """The images of a `steer run` pass: the dataset's identity (its recipe spec when given),
    the split, the number of rows and the files' digest."""
    ident = spec.to_dict() if spec is not None and hasattr(spec, "to_dict") else {}
    ident.pop("origin", None)
    return {
        "name": ident.get("name", getattr(table, "name", None)),
        "format": ident.get("format", getattr(table, "format", None)),
        "split": split,
        "n": int(len(indices)),
        "files": files_digest(table, indices),
    }
