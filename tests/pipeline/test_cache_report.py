"""The content-keyed cache (atomic, never trusts a corrupt entry) and report rendering."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from steerlang.files import atomic_write_json, content_key
from steerlang.pipeline.cache import TableCache
from steerlang.report.build import clean_json
from steerlang.report.svg import steer_curve, svg_curves, svg_grouped_bars, svg_histogram


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


def test_clean_json_has_no_nan() -> None:
    out = clean_json({"a": math.nan, "b": [np.float64(1.5), math.inf], "c": np.int64(3)})
    assert out == {"a": None, "b": [1.5, None], "c": 3}
    json.dumps(out, allow_nan=False)


def test_svgs_are_well_formed_and_draw_thresholds() -> None:
    bars = svg_grouped_bars(
        ["g0", "g1"], [("base", [0.5, None], "#000"), ("st", [1.0, 0.2], "#f00")], title="acc <&>"
    )
    ET.fromstring(bars)
    hist = svg_histogram(
        np.array([0.0, 0.1, 0.5, np.nan]), title="corr", thresholds=[(0.3, "> 0.3")]
    )
    root = ET.fromstring(hist)
    lines = [e for e in root.iter("{http://www.w3.org/2000/svg}line")]
    assert any(e.get("stroke") == "#d1495b" for e in lines)  # the threshold line
    t, frac = steer_curve(np.array([0.0, 0.05, 0.2, 0.6]))
    assert frac[0] == 0.75 and frac[-1] == 0.0 and np.all(np.diff(frac) <= 0)
    ET.fromstring(
        svg_curves([("sae", t, frac, "#000")], title="c", xlabel="t", ylabel="f", vline=0.1)
    )
