"""Files written so that a reader never sees half of one, and keys derived from content.

Why atomic: a run killed mid-write must never leave a half-written file that a later run would
trust, so each file is written to a temporary name beside it and renamed into place with one
`os.replace`. Why content keys: a derived artefact (statistics, a dataset copy) is reused exactly
when everything that determines it is unchanged, so its key hashes those inputs rather than names
or timestamps. The statistics cache (`steerlang/pipeline/cache.py`), the dataset writers, the SAE
writers and model hashing all use these, and none of them needs anything above this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) so equal inputs hash equally."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=json_default)


def json_default(o: Any) -> Any:
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"cannot hash object of type {type(o).__name__}")


def content_key(obj: Any, *, prefix: str = "") -> str:
    """A short, stable hex key of `obj` (any JSON-able value, pydantic models allowed)."""
    digest = hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:20]
    return f"{prefix}{digest}"


def sha256_file(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> None:
    """Write `data` to `path` so readers see either the old file or the complete new one.

    `fsync=False` skips the flush to disk for bulk writers (thousands of dataset images),
    where a crash costs a rerun rather than a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600; the file is the user's like any other
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, default=json_default) + "\n")


def default_cache_dir() -> Path:
    """`$STEER_CACHE`, else `~/.cache/steerlang`: where derived data (statistics, the zoo's
    datasets, activations) is kept unless a profile's `cache:` names another folder."""
    env = os.environ.get("STEER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "steerlang"


def current_umask() -> int:
    """The process umask. Linux reports it in /proc/self/status; elsewhere it is read by setting
    and restoring it (there is no getter), which is only a race between threads."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from the user's umask (`tempfile` would make it 0600)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode a new folder gets from the user's umask (`tempfile.mkdtemp` makes 0700)."""
    return 0o777 & ~current_umask()


def temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A fresh folder in `parent` to fill and then rename into place, with the umask's mode."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, dir_mode())
    return path


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """`write(tmp)` fills a temporary file beside `path` (for writers that take a path, such as
    safetensors, which create the file 0600 themselves); it then gets the umask's mode and is
    renamed into place, so readers see the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
