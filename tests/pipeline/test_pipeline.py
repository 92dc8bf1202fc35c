"""The run pipeline as a library (`run_ir` on a hand-built RecipeIR): cache reuse, metric
values against the predictions, selection against the statistics, the run folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_helpers import waterbirds_ir

from steerlang.pipeline.run import RunOptions, run_ir


@pytest.fixture(scope="module")
def wb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from steerlang.data.fixtures import make_waterbirds_fixture

    return make_waterbirds_fixture(tmp_path_factory.mktemp("wb"), scale=200, image_size=32)


def _opts(tmp: Path, root: Path, fmt: str = "waterbirds", name: str = "wb") -> RunOptions:
    return RunOptions(data=[f"{name}={fmt}:{root}"], out=str(tmp / "runs"), device="cpu")


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def two_runs(
    tiny_handle: Any, sae_dirs: Any, wb_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Any, str, str]:
    """The same recipe run twice against one cache folder, with the log of each run."""
    tmp = tmp_path_factory.mktemp("two_runs")
    logger = logging.getLogger("steerlang")
    old = logger.level
    logger.setLevel(logging.INFO)
    logs = []
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("STEER_CACHE", str(tmp / "cache"))
            for _ in range(2):
                h = _Messages()
                logger.addHandler(h)
                try:
                    out = run_ir(waterbirds_ir(sae_dirs), _opts(tmp, wb_root), handle=tiny_handle)
                finally:
                    logger.removeHandler(h)
                logs.append((out, "\n".join(h.lines)))
    finally:
        logger.setLevel(old)
    (first, log1), (second, log2) = logs
    return first, second, log1, log2


def test_run_twice_reuses_cached_statistics_and_numbers(two_runs: Any, tiny_handle: Any) -> None:
    first, second, log1, log2 = two_runs
    assert "computing statistics" in log1
    assert len(first.report["statistics"]["computed"]) == 3  # L3 all, L7 patches, L7 all
    for key in first.report["statistics"]["keys"].values():
        assert f"using cached statistics {key}" in log2
    assert "computing statistics" not in log2
    assert second.report["statistics"]["computed"] == []
    assert second.report["metrics"] == first.report["metrics"]
    assert second.plan.selection.plan == first.plan.selection.plan

    # The run folder has every artefact, all valid JSON / HTML with inline SVG.
    run_dir = first.run_dir
    assert run_dir is not None and run_dir.parent.name == "runs"
    for name in ("plan.json", "report.json", "explain.json", "manifest.json", "report.html"):
        assert (run_dir / name).is_file()
    rep = json.loads((run_dir / "report.json").read_text())
    assert rep["metrics"]["baseline"]["n"] == first.eval_result.n
    man = json.loads((run_dir / "manifest.json").read_text())
    assert man["hashes"]["model"] == tiny_handle.content_hash
    assert set(man["hashes"]["saes"]) == {"3:resid_post", "7:resid_post"}
    html = (run_dir / "report.html").read_text()
    assert html.count("<svg") >= 2 and "per-group accuracy" in html
    # One row per evaluated image in predictions.csv; every figure also as PNG and PDF.
    rows = (run_dir / "predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + first.eval_result.n and rows[0].startswith("image,split,label")
    pngs = sorted(p.stem for p in (run_dir / "figures").glob("*.png"))
    assert "per_group_accuracy" in pngs
    assert pngs == sorted(p.stem for p in (run_dir / "figures").glob("*.pdf"))
    assert rep["predictions"] == {"file": "predictions.csv", "rows": first.eval_result.n}


def test_metrics_match_predictions_and_plan_matches_statistics(two_runs: Any) -> None:
    out = two_runs[0]
    ev = out.eval_result
    y, g = ev.labels, ev.groups
    for which in ("baseline", "steered"):
        p = ev.preds[which]
        m = out.report["metrics"][which]
        assert m["accuracy"] == pytest.approx(float(np.mean(p == y)))
        per = [float(np.mean(p[g == k] == y[g == k])) for k in range(4)]
        assert m["per_group"] == pytest.approx(per)
        assert m["worst_group"] == pytest.approx(min(per))
    # Waterbirds group = 2*y + place.
    assert out.report["group_keys"] == ["y=0,place=0", "y=0,place=1", "y=1,place=0", "y=1,place=1"]
    # Readable names: the task's classes and the recipe's concept `water = place == 1`.
    assert out.report["groups"] == [
        "landbird, water=no",
        "landbird, water=yes",
        "waterbird, water=no",
        "waterbird, water=yes",
    ]
    # Selection agrees with the statistics table: rule `bg` picks exactly corr(water) > thr.
    t3 = out.plan.stats.tables[(3, "resid_post", "all")]
    want = np.flatnonzero(t3.columns["corr:water"] > 0.05).tolist()
    (bg,) = [r for r in out.plan.selection.per_rule if r.rule == "bg"]
    assert bg.selected == want
    # mean_ablate edits carry the statistics mean of the feature.
    t7 = out.plan.stats.tables[(7, "resid_post", "all")]
    site7 = [s for s in out.plan.selection.plan.sites if s.layer == 7][0]
    means = {e.feature: e.value for e in site7.edits if e.op == "mean_ablate"}
    assert means == {
        1: pytest.approx(t7.columns["mean"][1]),
        2: pytest.approx(t7.columns["mean"][2]),
    }


def test_steerability_sweeps_only_features_that_can_change_the_selection(
    tiny_handle: Any, sae_dirs: Any, wb_root: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    from steerlang.pipeline import run as pipeline
    from steerlang.pipeline import steer_pass
    from steerlang.plan import (
        Action,
        And,
        Compare,
        Num,
        RecipeIR,
        Rule,
        Scope,
        Stat,
        TopSelector,
    )

    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    words = tmp_path / "words.txt"
    words.write_text("bird\nwater\nland\ntree\nsky\ntext\n")
    base = waterbirds_ir(sae_dirs)
    freq_cut = Compare(op=">", left=Stat(fn="freq"), right=Num(value=0.5))
    rule = Rule(
        name="steer_top",
        index=0,
        scope=Scope(layers=[11]),
        action=Action(op="clamp", value=Num(value=5.0)),
        selector=TopSelector(
            k=3,
            by=Stat(fn="steerability"),
            where=And(
                args=[freq_cut, Compare(op=">", left=Stat(fn="steerability"), right=Num(value=0.0))]
            ),
        ),
    )
    ir = RecipeIR(
        name="steer-test",
        dataset="wb",
        concepts=base.concepts,
        saes=base.saes,
        settings={"steer_images": 6, "vocabulary": str(words), "batch_size": 16},
        rules=[rule],
    )
    opts = _opts(tmp_path, wb_root)
    fast = pipeline.plan_ir(ir, opts, handle=tiny_handle)
    freq = fast.stats.tables[(11, "resid_post", "all")].columns["freq"]
    swept = fast.stats.steerability["11:resid_post"].units
    assert swept.tolist() == np.flatnonzero(freq > 0.5).tolist()
    assert 0 < len(swept) < len(freq)
    monkeypatch.setattr(steer_pass, "steer_units_needed", lambda *a: None)
    full = pipeline.plan_ir(ir, opts, handle=tiny_handle)
    assert len(full.stats.steerability["11:resid_post"].units) == len(freq)
    assert full.selection.plan.sites == fast.selection.plan.sites


def test_steer_curve_setting_adds_the_curve_to_the_runs_steerability(
    tiny_handle: Any, sae_dirs: Any, wb_root: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    """`set steer_curve = "2,40"`: the report's steerability summary carries, per strength, the
    fraction of the swept SAE features, of the neurons and of the push-matched neurons, each
    equal to what a single sweep at that strength gives."""
    from steerlang.pipeline import run as pipeline
    from steerlang.pipeline.bind import bind
    from steerlang.pipeline.steer_pass import steerability_for
    from steerlang.plan import Action, Compare, Num, RecipeIR, Rule, Scope, Stat, TopSelector

    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    words = tmp_path / "words.txt"
    words.write_text("bird\nwater\nland\ntree\nsky\ntext\n")
    base = waterbirds_ir(sae_dirs)
    rule = Rule(
        name="steer_top",
        index=0,
        scope=Scope(layers=[11]),
        action=Action(op="clamp", value=Num(value=5.0)),
        selector=TopSelector(
            k=2,
            by=Stat(fn="steerability"),
            where=Compare(op=">", left=Stat(fn="freq"), right=Num(value=0.5)),
        ),
    )
    ir = RecipeIR(
        name="curve-test",
        dataset="wb",
        concepts=base.concepts,
        saes=base.saes,
        settings={
            "steer_images": 4,
            "vocabulary": str(words),
            "batch_size": 16,
            "steer_curve": "2, 40",
            "steer_threshold": 0.001,
        },
        rules=[rule],
    )
    opts = _opts(tmp_path, wb_root)
    out = pipeline.plan_ir(ir, opts, handle=tiny_handle)
    res = out.stats.steerability["11:resid_post"]
    curve = res.summary()["curve"]
    assert [(r["units"], r["strength"]) for r in curve] == [
        (u, s) for s in (2.0, 40.0) for u in ("SAE features", "neurons", "neurons (matched push)")
    ]
    b = bind(ir, opts, sites=[(11, "resid_post")], handle=tiny_handle)
    for r in curve:
        one = steerability_for(
            ir,
            b,
            (11, "resid_post"),
            units=None if r["push"] != "clamp" else res.units,
            neurons=r["push"] != "clamp",
            push="matched" if r["push"] == "matched" else "overwrite",
            strength=r["strength"],
        )
        assert r["n_units"] == len(one.units)
        assert r["fraction_steerable"] == pytest.approx(one.fraction_steerable)
