"""What identifies the images a cached pass read (part of every statistics and steerability
cache key)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np


def dataset_fingerprint(spec: Any, table: Any, split: str, indices: np.ndarray) -> dict[str, Any]:
    """What identifies the images of a pass: the dataset's identity, the rows, and each file's
    relative path and size (cheap to stat; a changed file changes its size in practice)."""
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
    ident = spec.to_dict() if spec is not None and hasattr(spec, "to_dict") else {}
    ident.pop("origin", None)
    return {
        "name": ident.get("name", getattr(table, "name", None)),
        "format": ident.get("format", getattr(table, "format", None)),
        "split": split,
        "n": int(len(indices)),
        "files": h.hexdigest(),
    }
