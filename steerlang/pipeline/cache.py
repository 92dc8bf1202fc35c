"""Content-keyed, atomically written, verified on-disk cache for derived tables (feature
statistics, steerability sweeps, vocabulary embeddings).

Why content keys: a cached table must be reused exactly when everything that determines it is
unchanged (model weights, SAE weights, site, data, concept values, limits) and never otherwise,
so the key is a hash of those inputs rather than of names or timestamps (the keys themselves are
built by `steerlang.pipeline.statistics.stats_cache_key` and
`steerlang.pipeline.steerability.steer_cache_key`).

Why atomic: a run killed mid-write must never leave a half-written entry that a later run would
trust, so each entry is written into a temporary folder and renamed into place in one
`os.replace`.

Why verified: a disk error, a copy that stopped half-way or a hand edit can still damage an
entry after it was written. Every read checks the entry against what `meta.json` (written last)
recorded about it: the sha256 of the columns file, each column's name, shape and dtype, and
which columns were finite. An entry that fails is reported once (a warning naming it), moved
aside and deleted, and the caller recomputes it, so one bad entry never breaks later runs.

Why no pickles: entries are safetensors (numeric columns) plus JSON (strings and metadata), so
loading a cache never executes code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from steerlang.errors import SteerError
from steerlang.files import default_cache_dir, json_default, temp_dir

log = logging.getLogger("steerlang.cache")

# 2: meta.json records the columns file's sha256 and each column's shape, dtype and finiteness.
CACHE_FORMAT_VERSION = 2

COLUMNS_FILE = "columns.safetensors"
META_FILE = "meta.json"

# A temporary folder older than this is left over from a killed run and is removed when a cache
# is opened. Why this is safe next to a concurrent run: a temporary folder exists only while
# `store` writes one entry's two files (after the statistics are computed, not during), which
# takes well under a second even for a 49,152-feature table, so a folder whose newest file is
# this old has no live writer. The margin covers slow and network disks.
STALE_TEMP_SECONDS = 15 * 60

# `tempfile.mkdtemp(prefix=".KEY.")` names: a dot, the key, a dot and 8 random characters.
_TEMP_NAME = re.compile(r"^\.[^/]+\.[a-z0-9_]{8}$")
_ENTRY_FILES = frozenset({COLUMNS_FILE, META_FILE})

# A caller's own check of an entry's columns and metadata: None when usable, else the reason.
EntryCheck = Callable[[dict[str, np.ndarray], dict[str, Any]], str | None]


class CacheError(SteerError):
    """A cache entry or cache folder that cannot be read or written."""


class _BadEntry(Exception):
    """Raised inside `_read` with the reason an entry cannot be trusted."""


class _OutdatedEntry(_BadEntry):
    """An entry written by an older steerlang in another cache format: nothing is wrong with
    it, so it is replaced without a warning (an upgrade would otherwise warn once per entry)."""


class TableCache:
    """A folder of cache entries `<root>/<kind>/<key>/{columns.safetensors, meta.json}`.

    Numeric columns are stored as float64 safetensors; string columns and free-form metadata
    as JSON. `meta.json` is written last inside the temporary folder and records what a reader
    verifies (see the module docstring); the folder is renamed into place whole, so a partial
    entry is never visible.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        remove_stale_temporaries(self.root)

    def entry_dir(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def has(self, kind: str, key: str) -> bool:
        return (self.entry_dir(kind, key) / META_FILE).is_file()

    def load(
        self, kind: str, key: str, *, check: EntryCheck | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """Columns and metadata of an entry, or None when it is absent or bad.

        A bad entry (files missing, unparsable, not matching what `meta.json` recorded, or
        rejected by the caller's `check`) is reported with a warning, discarded and read as a
        miss, so the caller recomputes and stores it again.
        """
        d = self.entry_dir(kind, key)
        if not d.exists():
            return None
        try:
            columns, meta = _read(d)
            reason = check(columns, meta) if check is not None else None
            if reason is not None:
                raise _BadEntry(reason)
        except _OutdatedEntry as e:
            log.info("cache entry %s/%s %s; recomputing it", kind, key, e)
            self._discard(d)
            return None
        except _BadEntry as e:
            log.warning(
                "cache entry %s/%s (%s) is unusable: %s; discarding it, it will be recomputed",
                kind,
                key,
                d,
                e,
            )
            self._discard(d)
            return None
        return columns, meta

    def store(
        self, kind: str, key: str, columns: dict[str, np.ndarray], meta: dict[str, Any]
    ) -> Path:
        """Write an entry atomically and return its folder (under torchrun, only rank 0 writes;
        the others return the folder rank 0 writes)."""
        final = self.entry_dir(kind, key)
        from steerlang.pipeline.distributed import is_main

        if not is_main():
            return final
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_dir(final.parent, f".{key}.")
        except OSError as e:
            raise _write_error(self.root, kind, key, e) from e
        try:
            _write_entry(tmp, kind, key, columns, meta)
            if final.exists():
                try:
                    _read(final)
                    # Another process finished the same entry first; identical content by key.
                    shutil.rmtree(tmp, ignore_errors=True)
                    return final
                except _BadEntry:
                    # A corrupt or outdated entry: replace it rather than trust it.
                    self._discard(final)
            try:
                os.replace(tmp, final)
            except OSError:
                if (final / META_FILE).is_file():
                    shutil.rmtree(tmp, ignore_errors=True)
                    return final
                raise
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _write_error(self.root, kind, key, e) from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def _discard(self, d: Path) -> None:
        """Remove a bad entry: first renamed aside (one atomic step, so no reader sees it
        half-deleted), then deleted. The aside name has the temporary-folder form, so if the
        deletion is interrupted the next `TableCache` start removes it."""
        aside = d.parent / f".{d.name}.{_random_suffix()}"
        try:
            os.replace(d, aside)
        except OSError:
            aside = d
        if aside.is_dir() and not aside.is_symlink():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.unlink(missing_ok=True)


def _write_error(root: Path, kind: str, key: str, e: OSError) -> CacheError:
    return CacheError(
        f"cannot write cache entry {kind}/{key} under {root}: {e}",
        help="check that the cache folder is writable, or set STEER_CACHE "
        "(or `cache_dir` in steer.yaml) to a writable folder",
    )


def _write_entry(
    folder: Path, kind: str, key: str, columns: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """The entry's files in `folder`: the columns file first, `meta.json` (which records the
    columns file's checksum and every column's shape, dtype and finiteness) last."""
    from safetensors.numpy import save

    numeric: dict[str, np.ndarray] = {}
    strings: dict[str, list[str]] = {}
    described: dict[str, dict[str, Any]] = {}
    for name, col in columns.items():
        arr = np.asarray(col)
        if arr.dtype.kind in "OUS":
            strings[name] = [str(v) for v in arr.tolist()]
            described[name] = {"shape": list(arr.shape), "dtype": "str"}
        else:
            num = np.ascontiguousarray(arr, dtype=np.float64)
            numeric[name] = num
            described[name] = {
                "shape": list(num.shape),
                "dtype": "float64",
                "finite": bool(np.isfinite(num).all()),
            }
    checksum = None
    if numeric:
        data = save(numeric)
        (folder / COLUMNS_FILE).write_bytes(data)
        checksum = hashlib.sha256(data).hexdigest()
    payload = {
        "cache_format": CACHE_FORMAT_VERSION,
        "kind": kind,
        "key": key,
        "columns": described,
        "columns_sha256": checksum,
        "string_columns": strings,
        "meta": meta,
    }
    (folder / META_FILE).write_text(json.dumps(payload, indent=1, default=json_default), "utf-8")


def _read(d: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """An entry's columns and metadata, verified against what `meta.json` recorded; raises
    `_BadEntry` with the reason when anything does not match."""
    meta_path = d / META_FILE
    if not meta_path.is_file():
        raise _BadEntry(f"{META_FILE} is missing")
    try:
        doc = json.loads(meta_path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise _BadEntry(f"{META_FILE} cannot be read ({e})") from None
    if not isinstance(doc, dict):
        raise _BadEntry(f"{META_FILE} is not a JSON object")
    fmt = doc.get("cache_format")
    if fmt != CACHE_FORMAT_VERSION:
        cls = _OutdatedEntry if type(fmt) is int else _BadEntry
        raise cls(f"is in cache format {fmt!r}, this version reads {CACHE_FORMAT_VERSION}")
    described = doc.get("columns")
    strings = doc.get("string_columns")
    meta = doc.get("meta")
    if not isinstance(described, dict) or not isinstance(strings, dict):
        raise _BadEntry(f"{META_FILE} does not describe the columns")
    if not isinstance(meta, dict):
        raise _BadEntry(f"{META_FILE} has no metadata object")
    numeric_names = {
        n for n, c in described.items() if isinstance(c, dict) and c.get("dtype") != "str"
    }
    columns: dict[str, np.ndarray] = {}
    if numeric_names:
        columns.update(_read_columns(d / COLUMNS_FILE, doc.get("columns_sha256")))
    elif (d / COLUMNS_FILE).exists():
        raise _BadEntry(f"{COLUMNS_FILE} is present but {META_FILE} records no numeric column")
    for name, values in strings.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _BadEntry(f"string column `{name}` is not a list of strings")
        columns[name] = np.asarray(values, dtype=object)
    if set(columns) != set(described):
        missing = sorted(set(described) - set(columns))
        extra = sorted(set(columns) - set(described))
        raise _BadEntry(f"columns differ from {META_FILE} (missing {missing}, unexpected {extra})")
    for name, arr in columns.items():
        want = described[name]
        if not isinstance(want, dict) or list(arr.shape) != want.get("shape"):
            raise _BadEntry(f"column `{name}` has shape {list(arr.shape)}, recorded {want}")
        if want.get("dtype") == "float64":
            if arr.dtype != np.float64:
                raise _BadEntry(f"column `{name}` has dtype {arr.dtype}, recorded float64")
            # Only what was true when the entry was written is required: some columns hold NaN
            # on purpose (steerability of features a sweep skipped).
            if want.get("finite") and not np.isfinite(arr).all():
                raise _BadEntry(f"column `{name}` holds non-finite values, it was written finite")
    return columns, meta


def _read_columns(path: Path, checksum: Any) -> dict[str, np.ndarray]:
    """The numeric columns, parsed from the same bytes whose sha256 is checked."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _BadEntry(f"{COLUMNS_FILE} is missing") from None
    except OSError as e:
        raise _BadEntry(f"{COLUMNS_FILE} cannot be read ({e})") from None
    if not isinstance(checksum, str) or hashlib.sha256(data).hexdigest() != checksum:
        raise _BadEntry(
            f"{COLUMNS_FILE} ({len(data)} bytes) does not match the checksum in {META_FILE}"
        )
    try:
        return dict(load(data))
    except (SafetensorError, ValueError, TypeError) as e:  # pragma: no cover - checksum first
        raise _BadEntry(f"{COLUMNS_FILE} cannot be parsed ({e})") from None


def remove_stale_temporaries(root: Path, *, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove the temporary entry folders (`<root>/<kind>/.KEY.xxxxxxxx`) that killed runs
    left behind, when their newest file is older than `older_than` seconds (see
    `STALE_TEMP_SECONDS` for why a younger one may belong to a live run and is kept).

    Only folders with the temporary-name form that hold nothing but entry files are touched,
    so other data sharing the cache folder is never removed. Best effort: a cache folder that
    cannot be listed or written is left as it is (writing to it reports the problem).
    Returns the folders removed.
    """
    removed: list[Path] = []
    now = time.time()
    try:
        kinds = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return removed
    for kind in kinds:
        try:
            candidates = [p for p in kind.iterdir() if _TEMP_NAME.match(p.name)]
        except OSError:
            continue
        for tmp in candidates:
            try:
                if tmp.is_symlink() or not tmp.is_dir():
                    continue
                children = list(tmp.iterdir())
                if any(c.name not in _ENTRY_FILES or c.is_symlink() for c in children):
                    continue
                newest = max([tmp.stat().st_mtime] + [c.stat().st_mtime for c in children])
            except OSError:
                continue
            if now - newest > older_than:
                shutil.rmtree(tmp, ignore_errors=True)
                if not tmp.exists():
                    removed.append(tmp)
    return removed


def _random_suffix() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_"
    return "".join(secrets.choice(alphabet) for _ in range(8))
