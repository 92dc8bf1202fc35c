"""The parser's tables on disk: Lark's analysed LALR grammar as JSON, in a folder only the user
can write.

Why not Lark's own `cache=` option: Lark writes the analysed grammar as a pickle and, on the next
start, unpickles the file's second part *before* it compares the grammar hash on the first line,
so any file planted under the cache name ran its code in every later `steer` start. Analysing the
grammar costs a few hundred milliseconds per start, reading it back a few tens, so the tables are
still cached, but as data that cannot run code when read:

- the tables are Lark's own plain-data serialisation (`Lark.memo_serialize`, the one its
  standalone generator writes), stored as JSON with tagged tuples, integer-keyed dicts and the
  one class the tables name (our lexer, from an allow-list);
- reading uses `json.loads` and Lark's deserialiser, which only instantiates its own rule and
  terminal classes, so a damaged or hostile file at worst fails to load and the tables are built
  again (the file is then rewritten);
- the folder is created `0700`, must belong to the user and be writable by nobody else; a
  folder that fails this is not used (one message on stderr per process) and the parser is built
  without a cache; the file itself must be a regular file of the user's, opened without
  following a symbolic link.

Folder: `$STEERLANG_CACHE_DIR` if set, else `$XDG_CACHE_HOME/steerlang/grammar`, else
`~/.cache/steerlang/grammar`; `STEERLANG_NO_CACHE=1` turns the cache off. The old pickled files
(`steer-grammar-*.lark-cache`) are never opened and can be deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

# Bump when the stored layout changes; part of the key, so old files are simply not found.
FORMAT = "steerlang-grammar-tables/1"
MAX_BYTES = 16 * 1024 * 1024  # the tables are ~100 KB; anything larger is not ours

_TUPLE = "\x00tuple"
_ITEMS = "\x00items"
_CLASS = "\x00class"
# Options that name live objects, not data: set again by the caller when the tables are loaded.
_LIVE_OPTIONS = ("transformer", "source_path", "import_paths")

_warned: set[str] = set()


def _classes() -> dict[str, type]:
    """The only classes a stored file may name (looked up by name, never imported by name)."""
    from steerlang.lang.lexer import SteerLexer

    return {"SteerLexer": SteerLexer}


def cache_folder() -> Path | None:
    """Where the tables are kept, or None when the cache is off."""
    if os.environ.get("STEERLANG_NO_CACHE"):
        return None
    explicit = os.environ.get("STEERLANG_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path(os.path.expanduser("~")) / ".cache"
    return base / "steerlang" / "grammar"


def _warn_once(folder: Path, problem: str) -> None:
    key = f"{folder}\0{problem}"
    if key in _warned:
        return
    _warned.add(key)
    sys.stderr.write(
        f"steerlang: not using the parser cache folder {folder}: it {problem}; "
        f"run `chmod 700 {folder}` if it is yours, or delete it (it is rebuilt)\n"
    )


def private_folder(folder: Path) -> Path | None:
    """`folder`, created `0700` if missing, when it is the user's and nobody else can write it;
    None (after one message) otherwise."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(folder)
    except OSError:
        return None  # read-only home, no home: run without a cache
    problem = None
    if not stat.S_ISDIR(st.st_mode):
        problem = "is not a folder"
    elif hasattr(os, "getuid") and st.st_uid != os.getuid():
        problem = "belongs to another user"
    elif st.st_mode & 0o022:
        problem = "can be written by other users"
    if problem:
        _warn_once(folder, problem)
        return None
    if st.st_mode & 0o077:
        try:
            os.chmod(folder, 0o700)  # ours and not writable by others: make it private
        except OSError:
            pass
    return folder


def key_of(variant: str) -> str:
    """The file key: this format, the Lark version and the grammar variant (text and options)."""
    import lark

    text = f"{FORMAT}\0{lark.__version__}\0{variant}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# ------------------------------------------------------------------------------ encoding


def encode(x: Any) -> Any:
    """Lark's serialised tables as JSON values: tuples and non-string-keyed dicts tagged, the
    lexer class by name. Raises TypeError for anything else (then nothing is stored)."""
    if isinstance(x, dict):
        if all(type(k) is str and not k.startswith("\x00") for k in x):
            return {k: encode(v) for k, v in x.items()}
        return {_ITEMS: [[encode(k), encode(v)] for k, v in x.items()]}
    if isinstance(x, tuple):
        return {_TUPLE: [encode(v) for v in x]}
    if isinstance(x, list):
        return [encode(v) for v in x]
    if x is None or type(x) in (str, int, bool, float):
        return x
    if isinstance(x, type):
        for name, cls in _classes().items():
            if x is cls:
                return {_CLASS: name}
    raise TypeError(f"cannot store a {type(x).__name__} in the grammar cache")


def _hashable(k: Any) -> Any:
    return tuple(_hashable(v) for v in k) if isinstance(k, list) else k


def _decode_object(d: dict[str, Any]) -> Any:
    if len(d) == 1:
        if _TUPLE in d:
            return tuple(d[_TUPLE])
        if _ITEMS in d:
            return {_hashable(k): v for k, v in d[_ITEMS]}
        if _CLASS in d:
            return _classes()[d[_CLASS]]  # KeyError for any other name: the file is rejected
    return d


def decode(text: str | bytes) -> Any:
    return json.loads(text, object_hook=_decode_object)


# ------------------------------------------------------------------------------ files


def _read_private_file(path: Path) -> bytes | None:
    """The bytes of `path` if it is a regular file of the user's (no symbolic link followed,
    never a FIFO or device), at most MAX_BYTES; None otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
            return None
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return None
        return f.read(MAX_BYTES + 1)


def load_parser(variant: str, transformer: Any) -> Any | None:
    """The Lark parser stored for `variant`, with `transformer` attached; None when there is
    no usable stored copy (missing, damaged, foreign, or the cache is off)."""
    folder = cache_folder()
    if folder is None or private_folder(folder) is None:
        return None
    key = key_of(variant)
    raw = _read_private_file(folder / f"steer-grammar-{key}.json")
    if raw is None:
        return None
    try:
        doc = decode(raw)
        if doc.get("format") != FORMAT or doc.get("key") != key:
            return None
        data, memo = doc["data"], doc["memo"]
        data["options"] = {**data["options"], "transformer": transformer}
        from lark import Lark

        return Lark._load_from_dict(data, memo)
    except Exception:  # anything wrong with the file: build the tables again
        return None


def save_parser(variant: str, parser: Any) -> None:
    """Store `parser`'s tables for `variant` (atomically; silently skipped when impossible)."""
    folder = cache_folder()
    if folder is None or private_folder(folder) is None:
        return
    key = key_of(variant)
    try:
        from lark.grammar import Rule
        from lark.lexer import TerminalDef

        data, memo = parser.memo_serialize([TerminalDef, Rule])
        data["options"] = {k: v for k, v in data["options"].items() if k not in _LIVE_OPTIONS}
        doc = {"format": FORMAT, "key": key, "data": data, "memo": memo}
        text = json.dumps(encode(doc), separators=(",", ":"))
        if decode(text) != doc:  # a round trip that changes anything is not worth storing
            return
    except Exception:
        return
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".steer-grammar-", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, folder / f"steer-grammar-{key}.json")
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
