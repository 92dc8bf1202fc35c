"""Content-keyed, atomically written on-disk cache for derived tables (feature statistics,
steerability sweeps).

Why content keys: a cached table must be reused exactly when everything that determines it is
unchanged (model weights, SAE weights, site, data split, concept definitions, limits) and never
otherwise, so the key is a hash of those inputs rather than of names or timestamps. Why atomic:
a run killed mid-write must never leave a half-written entry that a later run would trust, so
each entry is written into a temporary folder and renamed into place in one `os.replace`.
Why no pickles: entries are safetensors (numeric columns) plus JSON (strings and metadata), so
loading a cache never executes code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from steerlang.errors import SteerError
from steerlang.files import default_cache_dir, json_default

CACHE_FORMAT_VERSION = 1


class CacheError(SteerError):
    """A cache entry or cache folder that cannot be read or written."""


class TableCache:
    """A folder of cache entries `<root>/<kind>/<key>/{columns.safetensors, meta.json}`.

    Numeric columns are stored as float64 safetensors; string columns and free-form metadata
    as JSON. An entry is valid only when `meta.json` exists and names this format version:
    `meta.json` is written last inside the temporary folder, and the folder is renamed into place
    whole, so a partial entry is never visible.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def entry_dir(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def has(self, kind: str, key: str) -> bool:
        return (self.entry_dir(kind, key) / "meta.json").is_file()

    def load(self, kind: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """Columns and metadata of an entry, or None when absent or unreadable (a corrupt
        entry is treated as a miss and recomputed, never trusted)."""
        d = self.entry_dir(kind, key)
        meta_path = d / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            if meta.get("cache_format") != CACHE_FORMAT_VERSION:
                return None
            columns: dict[str, np.ndarray] = {}
            if (d / "columns.safetensors").is_file():
                from safetensors.numpy import load_file

                columns.update(load_file(str(d / "columns.safetensors")))
            for name, values in meta.get("string_columns", {}).items():
                columns[name] = np.asarray(values, dtype=object)
            return columns, meta.get("meta", {})
        except (OSError, ValueError, KeyError):
            return None

    def store(
        self, kind: str, key: str, columns: dict[str, np.ndarray], meta: dict[str, Any]
    ) -> Path:
        """Write an entry atomically and return its folder."""
        from safetensors.numpy import save_file

        final = self.entry_dir(kind, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
        try:
            numeric: dict[str, np.ndarray] = {}
            strings: dict[str, list[str]] = {}
            for name, col in columns.items():
                arr = np.asarray(col)
                if arr.dtype.kind in "OUS":
                    strings[name] = [str(v) for v in arr.tolist()]
                else:
                    numeric[name] = np.ascontiguousarray(arr, dtype=np.float64)
            if numeric:
                save_file(numeric, str(tmp / "columns.safetensors"))
            payload = {
                "cache_format": CACHE_FORMAT_VERSION,
                "kind": kind,
                "key": key,
                "string_columns": strings,
                "meta": meta,
            }
            (tmp / "meta.json").write_text(
                json.dumps(payload, indent=1, default=json_default), "utf-8"
            )
            if final.exists():
                if self.load(kind, key) is not None:
                    # Another process finished the same entry first; identical content by key.
                    shutil.rmtree(tmp, ignore_errors=True)
                    return final
                # A corrupt or outdated entry: replace it rather than trust it.
                shutil.rmtree(final, ignore_errors=True)
            try:
                os.replace(tmp, final)
            except OSError:
                if (final / "meta.json").is_file():
                    shutil.rmtree(tmp, ignore_errors=True)
                    return final
                raise
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CacheError(
                f"cannot write cache entry {kind}/{key} under {self.root}: {e}",
                help="check that the cache folder is writable, or set STEER_CACHE "
                "(or `cache_dir` in steer.yaml) to a writable folder",
            ) from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final
