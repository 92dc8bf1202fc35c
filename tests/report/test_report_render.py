"""Report rendering: strict JSON and well-formed inline SVG charts."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np

from steerlang.report.build import clean_json
from steerlang.report.svg import steer_curve, svg_curves, svg_grouped_bars, svg_histogram


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
