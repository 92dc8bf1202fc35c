"""Feature cards of a run (steerlang/pipeline/feature_cards.py, steerlang/report/cards.py): which
features get cards and in what order, their images from the statistics pass's top-k (also
when the statistics come from the cache), report.json's edited features, the HTML partial."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_helpers import waterbirds_ir

from steerlang.pipeline.run import RunOptions, run_ir
from steerlang.report.cards import CardImage, FeatureCard, overlay
from steerlang.report.templates import render


@pytest.fixture(scope="module")
def wb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from steerlang.data.fixtures import make_waterbirds_fixture

    return make_waterbirds_fixture(tmp_path_factory.mktemp("wb"), scale=100, image_size=32)


@pytest.fixture(scope="module")
def runs(
    tiny_handle: Any, sae_dirs: Any, wb_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[Any]:
    """The test recipe run twice on one cache (the second reads statistics and images back),
    with two cards per rule and site and k = 3."""
    tmp = tmp_path_factory.mktemp("cards")
    ir = waterbirds_ir(sae_dirs)
    settings = {**ir.settings, "gallery_k": 3, "gallery_cards": 2, "eval_limit": 8}
    ir = ir.model_copy(update={"settings": settings})
    opts = RunOptions(data=[f"wb=waterbirds:{wb_root}"], out=str(tmp / "runs"), device="cpu")
    logger = logging.getLogger("steerlang")
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("STEER_CACHE", str(tmp / "cache"))
            return [run_ir(ir, opts, handle=tiny_handle) for _ in range(2)]
    finally:
        logger.setLevel(old)


def _cards(out: Any) -> list[FeatureCard]:
    from steerlang.pipeline.run import run_record

    return run_record(out.plan).feature_cards


def test_cards_are_the_strongest_edited_features_per_rule(runs: list[Any]) -> None:
    out = runs[0]
    cards = _cards(out)
    sel = out.plan.selection
    edits = {(s.layer, s.site, e.feature): e.rule for s in sel.plan.sites for e in s.edits}
    for res in sel.per_rule:
        mine = [c for c in cards if (c.rule, c.layer, c.site) == (res.rule, res.layer, res.site)]
        want = [f for f in res.strongest() if f in set(res.won)][:2]
        assert [c.feature for c in mine] == want, res.rule
        for c in mine:
            assert edits[(c.layer, c.site, c.feature)] == c.rule
            assert c.rank == res.strongest().index(c.feature) + 1
            assert c.stats == res.values[c.feature]
    top = [c for c in cards if c.rule == "top"]
    assert [c.rank for c in top] == [1, 2]  # `top 3 by corr(water)`: its own rank order


def test_card_images_come_from_the_statistics_pass(runs: list[Any], wb_root: Path) -> None:
    out = runs[0]
    stats = out.plan.stats
    for card in _cards(out):
        if card.rule == "pin":  # `features [1, 2]` with mean-ablate reads the L7 statistics
            assert card.summary["mean"] == pytest.approx(card.stats["mean"])
        key = (card.layer, card.site, "patches" if card.rule == "top" else "all")
        table = stats.tables[key]
        for k in ("mean", "freq", "max"):
            assert card.summary[k] == table.column(k)[card.feature]
        want = [(r, v) for r, v, _ in stats.galleries[key].top(card.feature) if v > 0]
        assert [(im.row, im.activation) for im in card.images] == want
        acts = [im.activation for im in card.images]
        assert acts == sorted(acts, reverse=True) and len(acts) <= 3
        for im in card.images:
            assert im.pixels.shape == (32, 32, 3) and im.pixels.dtype == np.uint8
            assert im.patch_map is not None and im.patch_map.shape == (4, 4)
            assert im.vmax == pytest.approx(max(float(i.patch_map.max()) for i in card.images))
            assert re.fullmatch(r"y=[01] place=[01]", im.label)
            assert im.source.endswith(f"(row {im.row})")
        # The strongest patch of any statistics image is at most the table's `max`.
        if card.images:
            # maps are kept at float16 precision (RunningTopK.top): within 2**-11 relative
            peak = table.column("max")[card.feature]
            assert max(im.peak for im in card.images) <= peak * (1 + 2**-11) + 1e-5


def test_cached_run_shows_the_same_cards(runs: list[Any]) -> None:
    first, second = runs
    assert second.report["statistics"]["computed"] == []
    a, b = _cards(first), _cards(second)
    assert [(c.rule, c.feature) for c in a] == [(c.rule, c.feature) for c in b]
    for ca, cb in zip(a, b, strict=True):
        assert [im.row for im in ca.images] == [im.row for im in cb.images]
        for ia, ib in zip(ca.images, cb.images, strict=True):
            # Maps are cached as float16 (they are only drawn).
            np.testing.assert_allclose(ia.patch_map, ib.patch_map, rtol=1e-3, atol=1e-3)


def test_report_json_lists_every_edited_feature_and_the_html_has_cards(runs: list[Any]) -> None:
    out = runs[0]
    rep = json.loads((out.run_dir / "report.json").read_text())
    edited = rep["plan"]["edited_features"]
    plan = out.plan.selection.plan
    assert len(edited) == plan.n_edits
    rules = {r.name: r for r in out.plan.ir.rules}
    for e in edited:
        res = next(
            r
            for r in out.plan.selection.per_rule
            if (r.rule, r.layer, r.site) == (e["rule"], e["layer"], e["site"])
        )
        assert set(e["stats"]) == set(res.stats)  # exactly the statistics its rule read
        assert e["op"] == rules[e["rule"]].action.op
    cards = rep["plan"]["feature_cards"]
    assert [c["feature"] for c in cards] == [c.feature for c in _cards(out)]
    html = (out.run_dir / "report.html").read_text()
    assert html.count('class="fc-card"') == len(cards)
    cards_html = html.split('class="fc-cards"', 1)[1]  # the fixed/broken examples come before
    assert cards_html.count("data:image/png;base64,") == sum(len(c["images"]) for c in cards)


def test_overlay_and_template_escape() -> None:
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pmap = np.array([[0.0, 1.0], [2.0, 0.0]])
    img = np.asarray(overlay(pixels, pmap, 2.0))
    side = img.shape[0]
    assert img.shape == (side, side, 3) and side % 2 == 0
    # Silent patches keep the image; the strongest gets the heat colour at MAX_ALPHA.
    assert img[0, 0].tolist() == [0, 0, 0]
    assert img[-1, 0, 0] == round(255 * 0.75) and img[0, -1, 0] == round(255 * 0.75 * 0.5)
    card = FeatureCard(
        layer=1,
        site="resid_post",
        feature=3,
        rule="<b>r</b>",
        rule_text="rule r: suppress features where corr(a) > 0.3 & <script>",
        stats={"corr:a": 0.5},
        summary={"mean": 0.1, "freq": 0.2, "max": 2.0},
        images=[CardImage(0, 1.5, "a<b>.png (row 0)", "y=1", pixels, pmap, 2.0)],
        grid=2,
    )
    html = render("_cards.html.j2", cards=[card])
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;r&lt;/b&gt;" in html
    assert 'class="fc-used"' in html and "corr:a" in html and "0.500" in html
    assert "(2×2 grid)" in html
    assert "no feature cards" in render("_cards.html.j2", cards=[])
