"""The content-keyed cache: atomic, never trusts a corrupt entry, keys from content."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from steerlang.files import atomic_write_json, content_key
from steerlang.pipeline.cache import TableCache


def test_cache_roundtrip_and_corruption(tmp_path: Path) -> None:
    c = TableCache(tmp_path)
    cols = {"mean": np.array([1.0, 2.5]), "top_concept": np.array(["a", "b"], dtype=object)}
    assert c.load("stats", "k1") is None
    c.store("stats", "k1", cols, {"n": 2})
    got, meta = c.load("stats", "k1")  # type: ignore[misc]
    assert got["mean"].tolist() == [1.0, 2.5] and got["top_concept"].tolist() == ["a", "b"]
    assert meta == {"n": 2}
    # A corrupt entry reads as a miss and is replaced by the next store.
    (tmp_path / "stats" / "k1" / "meta.json").write_text("{not json")
    assert c.load("stats", "k1") is None
    c.store("stats", "k1", cols, {"n": 3})
    assert c.load("stats", "k1")[1] == {"n": 3}  # type: ignore[index]
    # A half-written temporary folder is never an entry.
    (tmp_path / "stats" / ".k2.tmp").mkdir()
    assert c.load("stats", ".k2.tmp") is None
    assert sorted(p.name for p in (tmp_path / "stats").iterdir() if not p.name.startswith(".")) == [
        "k1"
    ]


def test_content_key_is_order_insensitive_and_sensitive_to_values() -> None:
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})


def test_atomic_json_leaves_no_temporaries(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
