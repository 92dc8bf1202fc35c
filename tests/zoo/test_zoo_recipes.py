"""The shipped recipes on the shipped zoo, through `steer run --json`: issue 5's bars as the
tool itself measures them (not the zoo's own evaluation helpers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from steerlang.cli import main
from steerlang.zoo import zoo_clip_path

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

pytestmark = pytest.mark.skipif(
    not zoo_clip_path().is_file(), reason="zoo weights not built (steer zoo build)"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("steer-cache")


def _run(recipe: str, cache: Path, tmp: Path, monkeypatch: Any, capsys: Any) -> dict[str, Any]:
    monkeypatch.setenv("STEER_CACHE", str(cache))
    monkeypatch.chdir(tmp)  # no stray steer.yaml: the built-in default profile
    rc = main(["run", str(RECIPES / recipe), "--json", "--device", "cpu", "--out", str(tmp)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return json.loads(cap.out)


def test_waterbirds_recipe_removes_the_shortcut(
    cache: Path, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    rep = _run("waterbirds.steer", cache, tmp_path, monkeypatch, capsys)
    b, s = rep["metrics"]["baseline"], rep["metrics"]["steered"]
    assert b["average_plain"] - b["worst_group"] >= 0.20  # the shortcut is there
    assert s["worst_group"] - b["worst_group"] >= 0.10  # and the recipe removes much of it
    assert s["average_plain"] >= b["average_plain"] - 0.05
    # The guards stay silent: a real shortcut (a 30-point gap), 168 of 1,024 features (16%),
    # 480 statistics images, 100 evaluation images per group.
    assert _guards(rep) == []
    assert rep["groups"][2] == "waterbird, water=no"
    assert rep["predictions"]["rows"] == rep["dataset"]["n_eval"]
    lo, hi = rep["metrics"]["intervals"]["delta"]["worst_group"]
    assert lo <= s["worst_group"] - b["worst_group"] <= hi and lo > 0


def test_typographic_recipe_defends_at_small_clean_cost(
    cache: Path, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    rep = _run("typographic.steer", cache, tmp_path, monkeypatch, capsys)
    assert rep["dataset"]["stats_images"] == "both"
    assert rep["dataset"]["attack_style"] == "note"  # auto on a zoo dataset
    a = rep["metrics"]["attack"]
    b, s = a["baseline"], a["steered"]
    assert b["clean"] - b["attacked"] >= 0.30  # the written word fools the model
    assert b["text_rate"] >= 0.9  # by being read
    assert a["recovered"] >= 0.5
    assert s["clean"] >= b["clean"] - 0.05
    assert a["recovered"] == pytest.approx((s["attacked"] - b["attacked"]) / b["drop"])
    # No groups, 68 of 1,024 features, 480 clean + 480 attacked statistics images: silent.
    assert _guards(rep) == []
    # One row per clean image and one per attacked copy.
    assert rep["predictions"]["rows"] == 2 * rep["dataset"]["n_eval"]


def _guards(rep: dict[str, Any]) -> list[str]:
    return [w["code"] for w in rep["warnings"] if w["code"].startswith("guard:")]
