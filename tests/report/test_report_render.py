"""Report rendering: strict JSON, the matplotlib figures (inline SVG, PNG, PDF; thresholds with
their selected side shaded), and the Jinja2 page (autoescaped, figures and examples in it)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

import numpy as np

from steerlang.report import figures as F
from steerlang.report.build import clean_json
from steerlang.report.templates import render

SVG = "{http://www.w3.org/2000/svg}"


def test_clean_json_has_no_nan() -> None:
    out = clean_json({"a": math.nan, "b": [np.float64(1.5), math.inf], "c": np.int64(3)})
    assert out == {"a": None, "b": [1.5, None], "c": 3}
    json.dumps(out, allow_nan=False)


def test_a_figure_renders_as_inline_svg_png_and_pdf() -> None:
    fig = F.grouped_bars(
        ["g <0>", "g & 1"],
        [("base", [0.5, None], [[0.4, 0.6], None], "#000"), ("st", [1.0, 0.2], None, "#f00")],
        title="acc <&>",
        marked=0,
    )
    out = F.render(fig, "bars", "caption")
    root = ET.fromstring(out.svg)  # well-formed, no XML prolog
    assert root.tag == f"{SVG}svg"
    texts = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    assert "acc <&>" in texts and "g <0>" in texts  # text kept as text, escaped by matplotlib
    assert "accuracy (%)" in texts  # the y axis is labelled
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert ids and all(i.startswith("bars-") for i in ids)  # unique on a page of figures
    assert out.png.startswith(b"\x89PNG") and out.pdf.startswith(b"%PDF")
    # Deterministic: the same figure renders to the same bytes.
    again = F.render(
        F.grouped_bars(
            ["g <0>", "g & 1"],
            [("base", [0.5, None], [[0.4, 0.6], None], "#000"), ("st", [1.0, 0.2], None, "#f00")],
            title="acc <&>",
            marked=0,
        ),
        "bars",
    )
    assert again.svg == out.svg and again.pdf == out.pdf


def test_error_bars_are_the_intervals_in_points() -> None:
    err = F._err([50.0, 80.0], [[0.4, 0.55], None])
    assert np.allclose(err, [[10.0, 0.0], [5.0, 0.0]])


def _shade_spans(fig: Any) -> list[tuple[float, float]]:
    from matplotlib.colors import to_hex

    ax = fig.axes[0]
    spans = []
    for p in ax.patches:
        if to_hex(p.get_facecolor()) == F.SELECTED_SHADE:
            xs = p.get_xy()[:, 0] if hasattr(p, "get_xy") and np.ndim(p.get_xy()) == 2 else None
            if xs is None:
                x0 = p.get_x()
                xs = np.array([x0, x0 + p.get_width()])
            spans.append((float(np.min(xs)), float(np.max(xs))))
    return spans


def test_a_histogram_shades_the_side_its_threshold_selects() -> None:
    v = np.array([-0.8, -0.1, 0.0, 0.2, 0.5, 0.9, np.nan])
    above = F.histogram(v, title="corr", xlabel="corr:water", thresholds=[(0.4, ">")])
    (lo, hi) = _shade_spans(above)[0]
    xmin, xmax = above.axes[0].get_xlim()
    assert lo == 0.4 and hi == xmax  # from the threshold to the right edge
    below = F.histogram(v, title="corr", xlabel="x", thresholds=[(-0.5, "<=")])
    (lo, hi) = _shade_spans(below)[0]
    assert lo == below.axes[0].get_xlim()[0] and hi == -0.5
    # A threshold outside the data still shows (the axis widens to it).
    far = F.histogram(v, title="corr", xlabel="x", thresholds=[(2.0, ">")])
    assert far.axes[0].get_xlim()[1] > 2.0
    ax = above.axes[0]
    assert ax.get_xlabel() == "corr:water" and "features" in ax.get_ylabel()
    assert len(ax.get_xticks()) > 2  # ticks on the axis


def test_steer_curve_is_a_decreasing_fraction() -> None:
    t, frac = F.steer_curve(np.array([0.0, 0.05, 0.2, 0.6]))
    assert frac[0] == 0.75 and frac[-1] == 0.0 and np.all(np.diff(frac) <= 0)


def _page(**over: Any) -> str:
    report = {
        "recipe": {"name": "<script>alert(1)</script>", "description": "a & b"},
        "model": {"ref": "zoo:tiny-clip"},
        "device": "cpu",
        "started": "now",
        "wall_seconds": 1.0,
        "dataset": None,
        "plan": {"n_edits": 0, "sites": [], "overrides": 0, "rules": []},
        "reproduce": "steer run 'x y.steer'",
        "predictions": None,
    }
    ctx: dict[str, Any] = {
        "r": report,
        "dataset_note": "",
        "metric_rows": [],
        "attack_rows": [],
        "group_rows": [],
        "incomplete": None,
        "metric_figures": [],
        "other_figures": [],
        "steerability": [],
        "examples": {},
        "cards": [],
        "warnings": [{"code": "guard:x", "message": "<b>bold</b>"}],
    }
    ctx.update(over)
    return render("report.html.j2", **ctx)


def test_the_page_escapes_everything_it_is_given() -> None:
    page = _page()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "a &amp; b" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "steer run &#39;x y.steer&#39;" in page


def test_the_page_shows_examples_and_attack_pairs() -> None:
    thumb = "data:image/png;base64,AAAA"
    item = {"image": "a/b.jpg", "thumb": thumb, "label": "x", "baseline": "y", "steered": "x"}
    page = _page(
        examples={
            "fixed_broken": [
                {"group": "g1", "n": 3, "n_fixed": 1, "n_broken": 0, "fixed": [item], "broken": []}
            ],
            "attack_pairs": [
                {
                    **item,
                    "attacked_thumb": thumb,
                    "word": "dog",
                    "baseline_attacked": "dog",
                    "steered_attacked": "x",
                }
            ],
        }
    )
    assert "Images steering changed" in page and "(n=3: 1 fixed, 0 broken)" in page
    assert page.count(f'src="{thumb}"') == 3  # the fixed image, the clean and attacked copy
    assert "with “dog”" in page


def test_rendered_group_rows_mark_the_worst_and_colour_the_change() -> None:
    from steerlang.report.html import _group_rows

    m = {
        "baseline": {"per_group": [0.9, 0.5], "group_counts": [40, 12], "worst_group_id": 1},
        "steered": {"per_group": [0.85, 0.7], "worst_group_id": 0},
        "intervals": {"baseline": {"per_group": [[0.8, 0.95], [0.25, 0.75]]}},
    }
    rows = _group_rows(m, {"groups": ["a", "b"]})
    assert rows[1]["worst_baseline"] and rows[0]["worst_steered"]
    assert rows[0]["sign"] == "bad" and rows[1]["sign"] == "good"
    assert rows[1]["baseline_ci"] == "[25.0, 75.0]" and rows[1]["n"] == 12
    page = _page(group_rows=rows)
    assert "worst (baseline)" in page and 'class="good">+20.0' in page


def test_figures_of_a_report_cover_groups_and_attack() -> None:
    report = {
        "groups": ["landbird, water=no", "waterbird, water=no"],
        "metrics": {
            "baseline": {"per_group": [0.9, 0.5], "group_counts": [40, 12], "worst_group_id": 1},
            "steered": {"per_group": [0.85, 0.7]},
            "attack": {
                "baseline": {"clean": 0.9, "attacked": 0.3},
                "steered": {"clean": 0.88, "attacked": 0.6},
            },
        },
    }
    rec = SimpleNamespace(selection=SimpleNamespace(per_rule=[]), rule_tables={}, steerability={})
    names = [f.name for f in F.report_figures(rec, report)]
    assert names == ["per_group_accuracy", "attack_accuracy"]
