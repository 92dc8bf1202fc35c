"""Evaluation that cannot report a wrong number quietly (issue 14): non-finite steered or
baseline outputs stop the run naming the cause, an empty group marks worst-group accuracy
incomplete in every report, and task classes map to integer labels by index."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from steerlang.errors import SteerError
from steerlang.pipeline.evaluate import EvaluationError
from steerlang.pipeline.run import RunOptions, run_ir
from steerlang.plan import Action, IdsSelector, Num, RecipeIR, Rule, Scope, Task


@pytest.fixture(scope="module")
def wb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from steerlang.data.fixtures import make_waterbirds_fixture

    return make_waterbirds_fixture(tmp_path_factory.mktemp("wb"), scale=100, image_size=32)


@pytest.fixture(scope="module")
def wb_without_group(wb_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same images, with waterbirds on land (y=1, place=0) removed from the test split."""
    root = tmp_path_factory.mktemp("wb_cut")
    text = (wb_root / "metadata.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    head, body = rows[0], rows[1:]
    pos = {c: i for i, c in enumerate(head)}

    def cut(r: list[str]) -> bool:
        return (r[pos["split"]], r[pos["y"]], r[pos["place"]]) == ("2", "1", "0")

    assert any(cut(r) for r in body)  # the fixture has the group to remove
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([head] + [r for r in body if not cut(r)])
    (root / "metadata.csv").write_text(out.getvalue())
    for r in body:  # images by absolute link (the loader resolves paths under the root)
        src = wb_root / r[pos["img_filename"]]
        dst = root / r[pos["img_filename"]]
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            dst.symlink_to(src)
    return root


def _ir(
    label: str = "y",
    classes: tuple[str, ...] = ("landbird", "waterbird"),
    *,
    rules: list[Rule] | None = None,
    saes: dict[str, str] | None = None,
    classifier: str = "zero_shot",
) -> RecipeIR:
    return RecipeIR(
        name="trust",
        model="default",
        dataset="wb",
        task=Task(label=label, classes=list(classes)),
        groups=["y", "place"],
        saes=saes or {},
        settings={"batch_size": 32, "classifier": classifier},
        rules=rules or [],
    )


def _run(ir: RecipeIR, handle: Any, root: Path, tmp: Path, **kw: Any) -> Any:
    opts = RunOptions(data=[f"wb=waterbirds:{root}"], out=str(tmp / "runs"), device="cpu")
    return run_ir(ir, opts, handle=handle, **kw)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------ item 3: finite or fail


def _clamp_rule(op: str, value: float) -> Rule:
    return Rule(
        name="boom",
        index=0,
        scope=Scope(layers=[3]),
        action=Action(op=op, value=Num(value=value)),  # type: ignore[arg-type]
        selector=IdsSelector(ids=[0, 1, 2, 3]),
    )


@pytest.mark.parametrize(
    ("op", "value", "shown"),
    [("clamp", 1e30, "1e+30"), ("add", 3e38, "3e+38"), ("clamp", 1e308, "1e+308")],
)
def test_a_value_that_overflows_stops_the_run_naming_rule_site_and_value(
    tiny_handle: Any,
    sae_dirs: Any,
    wb_root: Path,
    tmp_path: Path,
    op: str,
    value: float,
    shown: str,
) -> None:
    ir = _ir(rules=[_clamp_rule(op, value)], saes={"3:resid_post": str(sae_dirs[3])})
    with pytest.raises(SteerError) as e:
        _run(ir, tiny_handle, wb_root, tmp_path, write=False)
    msg = str(e.value)
    assert "boom" in msg and "blocks.3.hook_resid_post" in msg and shown in msg, msg


def test_a_normal_plan_reports_numbers_from_finite_logits(
    tiny_handle: Any, sae_dirs: Any, wb_root: Path, tmp_path: Path
) -> None:
    from steerlang.data.formats.waterbirds import load_waterbirds
    from steerlang.model.hooks import steer

    ir = _ir(rules=[_clamp_rule("clamp", 5.0)], saes={"3:resid_post": str(sae_dirs[3])})
    out = _run(ir, tiny_handle, wb_root, tmp_path, write=False)
    ev = out.eval_result
    # The predictions are the argmax of the steered logits, recomputed here image by image.
    from steerlang.data.batches import image_batches
    from steerlang.pipeline.evaluate import zero_shot_classifier

    test = load_waterbirds(wb_root).split("test")
    clf = zero_shot_classifier(tiny_handle, ["landbird", "waterbird"], ["a photo of a {}."])
    saes = out.plan.binding.saes
    preds = []
    with torch.inference_mode():
        for _, px in image_batches(test, np.arange(len(test)), tiny_handle.preprocess, 32):
            with steer(tiny_handle, out.plan.selection.plan, saes):
                preds.append(clf.predict(tiny_handle.encode_image(px)))
    assert np.array_equal(np.concatenate(preds), ev.preds["steered"])
    assert out.report["metrics"]["steered"]["accuracy"] == pytest.approx(
        float(np.mean(ev.preds["steered"] == ev.labels))
    )


def test_a_baseline_model_with_nan_weights_is_an_error_naming_the_model(
    tiny_handle: Any, wb_root: Path, tmp_path: Path
) -> None:
    broken = copy.deepcopy(tiny_handle)
    with torch.no_grad():
        broken.model.visual.proj.fill_(float("nan"))
    with pytest.raises(EvaluationError, match="unsteered model `.*` gives non-finite"):
        _run(_ir(), broken, wb_root, tmp_path, write=False)


# ------------------------------------------------------------------ item 4: empty groups


def test_a_group_missing_from_the_test_split_marks_worst_group_incomplete(
    tiny_handle: Any, wb_without_group: Path, tmp_path: Path
) -> None:
    from rich.console import Console

    from steerlang.report.terminal import print_summary

    out = _run(_ir(), tiny_handle, wb_without_group, tmp_path)
    rep = out.report
    # Named from the classes and the format's value names (this IR defines no concept).
    assert rep["empty_groups"] == ["waterbird, place=land"]
    for which in ("baseline", "steered"):
        m = rep["metrics"][which]
        assert m["worst_group_complete"] is False
        assert m["group_counts"][2] == 0 and m["per_group"][2] is None
        present = [a for a in m["per_group"] if a is not None]
        assert m["worst_group"] == pytest.approx(min(present))
    on_disk = json.loads((out.run_dir / "report.json").read_text())
    assert on_disk["empty_groups"] == ["waterbird, place=land"]
    assert on_disk["metrics"]["baseline"]["worst_group_complete"] is False
    html = (out.run_dir / "report.html").read_text()
    assert "Incomplete:" in html and "waterbird, place=land" in html
    assert "worst-group accuracy (incomplete)" in html
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_summary(rep, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "worst-group accuracy (incomplete)" in text
    assert "1 of 4 group has no images in the test split (waterbird, place=land)" in text


def test_a_full_test_split_is_complete(tiny_handle: Any, wb_root: Path, tmp_path: Path) -> None:
    out = _run(_ir(), tiny_handle, wb_root, tmp_path)
    rep = out.report
    assert rep["empty_groups"] == []
    ev = out.eval_result
    for which in ("baseline", "steered"):
        m = rep["metrics"][which]
        assert m["worst_group_complete"] is True
        p = ev.preds[which]
        per = [float(np.mean(p[ev.groups == k] == ev.labels[ev.groups == k])) for k in range(4)]
        assert m["per_group"] == pytest.approx(per) and m["worst_group"] == pytest.approx(min(per))
    assert "Incomplete" not in (out.run_dir / "report.html").read_text()


# ------------------------------------------------------------------ item 8: labels by index


def test_renamed_classes_map_by_index_and_give_the_same_numbers(
    tiny_handle: Any, wb_root: Path, tmp_path: Path
) -> None:
    # A linear probe sees only the labels, so the same labels give the same numbers.
    a = _run(_ir(classifier="linear_probe"), tiny_handle, wb_root, tmp_path, write=False)
    b = _run(
        _ir(classes=("a land bird", "a water bird"), classifier="linear_probe"),
        tiny_handle,
        wb_root,
        tmp_path,
        write=False,
    )
    assert np.array_equal(a.eval_result.labels, b.eval_result.labels)
    assert a.report["metrics"] == b.report["metrics"]


def test_classify_place_uses_the_place_column(
    tiny_handle: Any, wb_root: Path, tmp_path: Path
) -> None:
    from steerlang.data.formats.waterbirds import load_waterbirds

    out = _run(
        _ir(label="place", classes=("land", "water")), tiny_handle, wb_root, tmp_path, write=False
    )
    test = load_waterbirds(wb_root).split("test")
    assert out.eval_result.labels.tolist() == test.column("place").tolist()


def test_a_class_count_that_does_not_fit_names_the_column_and_values(
    tiny_handle: Any, wb_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(EvaluationError) as e:
        _run(_ir(classes=("sea", "land", "sky")), tiny_handle, wb_root, tmp_path, write=False)
    msg = str(e.value)
    assert "column `y`" in msg and "0 landbird, 1 waterbird" in msg and "3 classes" in msg
