"""The parser's table cache (`steerlang/lang/grammar_cache.py`): data that cannot run code, in a
folder private to the user.

The attack (issue 14, item 1): Lark's `cache=` file is a pickle that Lark unpickles on the next
start (before it even compares the grammar hash), so a file planted where the cache is read ran
code in every later `steer` command.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import lark
import pytest

from steerlang.lang import grammar_cache, parser
from steerlang.lang.tree import TreeBuilder

REPO = Path(__file__).resolve().parents[2]
TEXT = "steer 1\nconcept water = place == 1\nat layer 1 suppress features where corr(water) > 0.3\n"
VARIANTS = [(s, lx) for s in (False, True) for lx in ("steer", "contextual")]


class _Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def _old_name(strict: bool, lexer: str) -> str:
    """The file name the pickled cache had (steerlang/lang/parser.py before issue 14)."""
    variant = f"{parser.grammar_text()}\0strict={strict}\0lexer={lexer}"
    key = hashlib.sha256((lark.__version__ + "\0" + variant).encode()).hexdigest()[:16]
    return f"steer-grammar-{key}.lark-cache"


def _new_name(strict: bool, lexer: str) -> str:
    variant = f"{parser.grammar_text()}\0strict={strict}\0lexer={lexer}"
    return f"steer-grammar-{grammar_cache.key_of(variant)}.json"


def _plant(folder: Path, payload: bytes) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    planted = []
    for strict, lexer in VARIANTS:
        for name in (_old_name(strict, lexer), _new_name(strict, lexer)):
            path = folder / name
            path.write_bytes(payload)
            planted.append(path)
    return planted


def test_a_planted_pickle_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    # Lark read the first line, then `pickle.load` twice: a payload at each place.
    payload = b"0" * 64 + b"\n" + pickle.dumps(_Payload(marker)) + pickle.dumps(_Payload(marker))
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    explicit, stats = tmp_path / "explicit", tmp_path / "stats"
    planted: list[Path] = []
    for folder in (
        explicit,  # $STEERLANG_CACHE_DIR
        xdg / "steerlang",  # the old default under $XDG_CACHE_HOME
        xdg / "steerlang" / "grammar",
        home / ".cache" / "steerlang",  # the old default under ~/.cache
        home / ".cache" / "steerlang" / "grammar",
        stats,  # $STEER_CACHE, the statistics cache a lab shares
    ):
        planted += _plant(folder, payload)
    recipe = tmp_path / "r.steer"
    recipe.write_text(TEXT, encoding="utf-8")
    script = (
        "import sys; from steerlang.lang import parser; from steerlang.lang.api import compile_file;"
        "assert compile_file(sys.argv[1]).ok;"
        "parser.build_parser(strict=True, lexer='contextual');"
        "parser.build_parser(strict=False, lexer='contextual')"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STEER", "XDG_"))}
    base.update(PYTHONPATH=str(REPO), HOME=str(home), STEER_CACHE=str(stats))
    envs = [
        {**base, "STEERLANG_CACHE_DIR": str(explicit), "XDG_CACHE_HOME": str(xdg)},
        {**base, "XDG_CACHE_HOME": str(xdg)},
        base,
    ]
    for env in envs:
        for argv in (["-c", script, str(recipe)], ["-m", "steerlang", "check", str(recipe)]):
            proc = subprocess.run(
                [sys.executable, *argv], env=env, capture_output=True, text=True, timeout=300
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert not marker.exists(), f"a planted cache file ran code ({argv}, {env})"
    # The old pickles are left alone (never opened); the new files were replaced by JSON tables.
    for path in planted:
        if path.suffix == ".lark-cache":
            assert path.read_bytes() == payload
    new = explicit / _new_name(False, "steer")
    assert json.loads(new.read_bytes())["format"] == grammar_cache.FORMAT


def _texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted((REPO / "recipes").glob("*.steer"))]


def test_tables_round_trip_and_damage_is_rebuilt(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STEERLANG_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("STEERLANG_NO_CACHE", raising=False)
    fresh = parser.build_parser(cache=False, transformer=TreeBuilder(None))
    parser.build_parser(transformer=TreeBuilder(None))  # writes the tables
    (stored,) = list(tmp_path.iterdir())
    assert stored.name == _new_name(False, "steer")
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    variant = f"{parser.grammar_text()}\0strict=False\0lexer=steer"
    loaded = grammar_cache.load_parser(variant, TreeBuilder(None))
    assert loaded is not None
    for text in _texts():
        assert loaded.parse(text + "\n") == fresh.parse(text + "\n")
    good = stored.read_bytes()
    doc = json.loads(good)
    hostile = json.dumps({**doc, "data": {"\x00class": "system"}})
    for bad in (b"", b"not json", good[: len(good) // 2], hostile.encode()):
        stored.write_bytes(bad)
        assert grammar_cache.load_parser(variant, TreeBuilder(None)) is None
        p = parser.build_parser(transformer=TreeBuilder(None))  # rebuilt, never an error
        assert p.parse(TEXT) == fresh.parse(TEXT)
        assert grammar_cache.load_parser(variant, TreeBuilder(None)) is not None  # stored again
    # a symbolic link or a FIFO in the file's place is not read (and nothing hangs)
    stored.unlink()
    (tmp_path / "elsewhere.json").write_bytes(good)
    stored.symlink_to(tmp_path / "elsewhere.json")
    assert grammar_cache.load_parser(variant, TreeBuilder(None)) is None
    stored.unlink()
    os.mkfifo(stored)
    assert grammar_cache.load_parser(variant, TreeBuilder(None)) is None
    monkeypatch.setenv("STEERLANG_NO_CACHE", "1")
    assert grammar_cache.cache_folder() is None


def test_default_folder_is_created_private(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("STEERLANG_CACHE_DIR", raising=False)
    monkeypatch.delenv("STEERLANG_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    old = os.umask(0o022)
    try:
        parser.build_parser(transformer=TreeBuilder(None))
    finally:
        os.umask(old)
    folder = tmp_path / "xdg" / "steerlang" / "grammar"
    assert grammar_cache.cache_folder() == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.suffix for p in folder.iterdir()] == [".json"]
    # an existing folder of ours that others can read is made private
    folder.chmod(0o755)
    assert grammar_cache.private_folder(folder) == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_folder_others_can_write_is_not_used(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(grammar_cache, "_warned", set())
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    monkeypatch.setenv("STEERLANG_CACHE_DIR", str(folder))
    monkeypatch.delenv("STEERLANG_NO_CACHE", raising=False)
    good = parser.build_parser(cache=False, transformer=TreeBuilder(None))
    for _ in range(3):
        p = parser.build_parser(transformer=TreeBuilder(None))
        assert p.parse(TEXT) == good.parse(TEXT)
    assert list(folder.iterdir()) == []  # nothing read or written there
    err = capsys.readouterr().err
    assert err.count("not using the parser cache folder") == 1, err
    assert "can be written by other users" in err and str(folder) in err


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs chown")
def test_a_folder_of_another_user_is_not_used(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(grammar_cache, "_warned", set())
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    monkeypatch.setenv("STEERLANG_CACHE_DIR", str(folder))
    monkeypatch.delenv("STEERLANG_NO_CACHE", raising=False)
    parser.build_parser(transformer=TreeBuilder(None))
    assert list(folder.iterdir()) == []
    assert "belongs to another user" in capsys.readouterr().err
