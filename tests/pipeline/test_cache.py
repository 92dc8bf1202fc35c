"""The content-keyed cache: atomic, verified on read (a bad entry is reported, discarded and
read as a miss), stale temporary folders of killed runs removed at start, keys from content."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pipeline_helpers import CacheWarnings

from steerlang.files import atomic_write_json, content_key
from steerlang.pipeline.cache import (
    STALE_TEMP_SECONDS,
    TableCache,
    remove_stale_temporaries,
)

COLS = {
    "mean": np.array([1.0, 2.5, 0.0]),
    # A column that is NaN on purpose (a feature a sweep skipped): allowed, as written.
    "steerability": np.array([0.5, np.nan, 0.1]),
    "top_concept": np.array(["a", "b", ""], dtype=object),
}


def _same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for k, v in want.items():
        if v.dtype == object:
            assert got[k].tolist() == v.tolist()
        else:
            np.testing.assert_array_equal(got[k], v)


def test_roundtrip_keeps_values_and_allowed_nan(
    tmp_path: Path, cache_warnings: CacheWarnings
) -> None:
    c = TableCache(tmp_path)
    assert c.load("stats", "k1") is None
    c.store("stats", "k1", COLS, {"n": 3})
    got, meta = c.load("stats", "k1")  # type: ignore[misc]
    _same(got, COLS)
    assert meta == {"n": 3} and cache_warnings.lines == []
    doc = json.loads((tmp_path / "stats" / "k1" / "meta.json").read_text())
    assert doc["columns"]["mean"] == {"shape": [3], "dtype": "float64", "finite": True}
    assert doc["columns"]["steerability"]["finite"] is False


def _rewrite_columns(d: Path, fn: Callable[[dict[str, np.ndarray]], None], *, fix: bool) -> None:
    """Change the stored numbers; with `fix`, also update the checksum in meta.json (a careful
    tamper that only the finiteness record can catch)."""
    import hashlib

    from safetensors.numpy import load, save

    cols = dict(load((d / "columns.safetensors").read_bytes()))
    fn(cols)
    data = save(cols)
    (d / "columns.safetensors").write_bytes(data)
    if fix:
        doc = json.loads((d / "meta.json").read_text())
        doc["columns_sha256"] = hashlib.sha256(data).hexdigest()
        (d / "meta.json").write_text(json.dumps(doc))


def _set(cols: dict[str, np.ndarray], name: str, value: float) -> None:
    cols[name] = cols[name].copy()
    cols[name][0] = value


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (
        lambda d: (d / "columns.safetensors").write_bytes(
            (d / "columns.safetensors").read_bytes()[:40]
        ),
        "checksum",
    ),
    "empty": (lambda d: (d / "columns.safetensors").write_bytes(b""), "checksum"),
    "garbage": (
        lambda d: (d / "columns.safetensors").write_bytes(os.urandom(300)),
        "checksum",
    ),
    "deleted": (lambda d: (d / "columns.safetensors").unlink(), "columns.safetensors is missing"),
    "value changed": (
        lambda d: _rewrite_columns(d, lambda c: _set(c, "mean", 7.0), fix=False),
        "checksum",
    ),
    "nan where finite": (
        lambda d: _rewrite_columns(d, lambda c: _set(c, "mean", np.nan), fix=True),
        "non-finite",
    ),
    "column dropped": (
        lambda d: _rewrite_columns(d, lambda c: c.pop("mean"), fix=True),
        "missing ['mean']",
    ),
    "meta missing": (lambda d: (d / "meta.json").unlink(), "meta.json is missing"),
    "meta garbage": (lambda d: (d / "meta.json").write_text("{not json"), "cannot be read"),
    "string column cut": (
        lambda d: (d / "meta.json").write_text(
            (d / "meta.json").read_text().replace('"b",', "", 1)
        ),
        "shape",
    ),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_bad_entry_is_reported_once_discarded_and_missed(
    name: str, tmp_path: Path, cache_warnings: CacheWarnings
) -> None:
    corrupt, reason = CORRUPTIONS[name]
    c = TableCache(tmp_path)
    d = c.store("stats", "k1", COLS, {"n": 3})
    corrupt(d)
    assert c.load("stats", "k1") is None
    (line,) = cache_warnings.lines
    assert "stats/k1" in line and "recomputed" in line and reason in line, line
    # Discarded, with nothing left beside it; the next read is a quiet miss, not a second report.
    assert not d.exists() and list(d.parent.iterdir()) == []
    assert c.load("stats", "k1") is None and len(cache_warnings.lines) == 1
    # The recomputed entry is stored and trusted again.
    c.store("stats", "k1", COLS, {"n": 3})
    _same(c.load("stats", "k1")[0], COLS)  # type: ignore[index]
    assert len(cache_warnings.lines) == 1


def test_store_replaces_a_bad_entry_and_keeps_a_good_one(tmp_path: Path) -> None:
    c = TableCache(tmp_path)
    d = c.store("stats", "k1", COLS, {"n": 3})
    (d / "columns.safetensors").write_bytes(b"")
    c.store("stats", "k1", COLS, {"n": 4})  # a concurrent writer finding a bad entry
    assert c.load("stats", "k1")[1] == {"n": 4}  # type: ignore[index]
    c.store("stats", "k1", COLS, {"n": 5})  # a good entry of the same key is kept
    assert c.load("stats", "k1")[1] == {"n": 4}  # type: ignore[index]
    assert [p.name for p in (tmp_path / "stats").iterdir()] == ["k1"]


def test_the_callers_check_rejects_an_entry(tmp_path: Path, cache_warnings: CacheWarnings) -> None:
    c = TableCache(tmp_path)
    c.store("stats", "k1", COLS, {"n": 3})
    assert c.load("stats", "k1", check=lambda cols, meta: "it lacks `corr:x`") is None
    assert "it lacks `corr:x`" in cache_warnings.lines[0]
    assert not (tmp_path / "stats" / "k1").exists()


def _temp(parent: Path, name: str, age: float) -> Path:
    d = parent / name
    d.mkdir(parents=True)
    (d / "columns.safetensors").write_bytes(b"half")
    when = time.time() - age
    for p in (d / "columns.safetensors", d):
        os.utime(p, (when, when))
    return d


def test_start_removes_stale_temporaries_and_keeps_fresh_ones(tmp_path: Path) -> None:
    stale = _temp(tmp_path / "stats", ".stats-0123.ab_cd9xy", STALE_TEMP_SECONDS + 60)
    fresh = _temp(tmp_path / "stats", ".stats-4567.zz0011aa", 5)  # a live run writing now
    # Not ours: another tool's hidden folder, or one holding other files, is never touched.
    other = _temp(tmp_path / "stats", ".git", STALE_TEMP_SECONDS + 60)
    foreign = _temp(tmp_path / "zoo", ".data.abcdefgh", STALE_TEMP_SECONDS + 60)
    (foreign / "images.npz").write_bytes(b"x")
    os.utime(foreign, (0, 0))
    TableCache(tmp_path)
    assert not stale.exists()
    assert fresh.is_dir() and other.is_dir() and foreign.is_dir()
    assert remove_stale_temporaries(tmp_path / "missing") == []  # no cache folder yet: fine


def test_a_killed_store_leaves_a_temporary_that_a_later_start_removes(tmp_path: Path) -> None:
    c = TableCache(tmp_path)

    class Killed(BaseException):
        pass

    def die(*a: object, **k: object) -> None:
        raise Killed

    # Simulate SIGKILL after the columns file: nothing cleans up, as with a real kill.
    orig = os.replace
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("shutil.rmtree", lambda *a, **k: None)
        mp.setattr(os, "replace", die)
        with pytest.raises(Killed):
            c.store("stats", "k1", COLS, {})
    assert os.replace is orig
    (left,) = (tmp_path / "stats").iterdir()
    assert left.name.startswith(".k1.")
    TableCache(tmp_path)
    assert left.exists()  # young: may be a live writer
    old = time.time() - STALE_TEMP_SECONDS - 1
    for p in [*left.iterdir(), left]:
        os.utime(p, (old, old))
    TableCache(tmp_path)
    assert not left.exists()
    assert c.load("stats", "k1") is None


def test_content_key_is_order_insensitive_and_sensitive_to_values() -> None:
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})


def test_atomic_json_leaves_no_temporaries(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_an_entry_of_an_older_format_is_replaced_quietly(
    tmp_path: Path, cache_warnings: CacheWarnings
) -> None:
    c = TableCache(tmp_path)
    d = c.store("text", "k1", COLS, {})
    doc = json.loads((d / "meta.json").read_text())
    (d / "meta.json").write_text(json.dumps({**doc, "cache_format": 1}))
    assert c.load("text", "k1") is None and not d.exists()
    assert cache_warnings.lines == []  # an upgrade is not damage


def test_a_file_in_place_of_an_entry_is_discarded(
    tmp_path: Path, cache_warnings: CacheWarnings
) -> None:
    c = TableCache(tmp_path)
    (tmp_path / "stats").mkdir()
    (tmp_path / "stats" / "k1").write_text("not a folder")
    assert c.load("stats", "k1") is None and len(cache_warnings.lines) == 1
    assert list((tmp_path / "stats").iterdir()) == []
    c.store("stats", "k1", COLS, {})
    _same(c.load("stats", "k1")[0], COLS)  # type: ignore[index]
