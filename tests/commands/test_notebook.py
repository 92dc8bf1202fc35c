"""The notebook API (steerlang/commands/notebook.py) as a notebook uses it: nothing imported but
`steerlang`. On the zoo, with small statistics and evaluation subsets so the module stays fast;
the grid's points must report exactly what single runs report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import steerlang

REPO = Path(__file__).resolve().parents[2]

RECIPE = """steer 1
recipe nb "notebook"
model default
dataset waterbirds
task classify y as ["landbird", "waterbird"] prompt "a photo of a {}."
groups y, place
concept water = place == 1
param thr = 0.3
param L = 7
set stats_split = "train"
set eval_split = "test"
set stats_limit = 64
set eval_limit = 64
rule bg: at layer L suppress features where corr(water) > thr
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    mp = pytest.MonkeyPatch()
    mp.setenv("STEER_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.chdir(tmp_path_factory.mktemp("work"))  # the built-in profile, runs/ under here
    yield tmp_path_factory.mktemp("runs")
    mp.undo()


def test_compile_is_torch_free_and_applies_params() -> None:
    ir = steerlang.compile(str(REPO / "recipes/waterbirds.steer"), params={"L": 5, "thr": 0.25})
    assert ir.rules[0].scope.layers == [5] and ir.params["thr"].value == 0.25
    assert steerlang.compile(RECIPE).rules[0].scope.layers == [7]  # text works too
    with pytest.raises(steerlang.errors.SteerError) as e:
        steerlang.compile(RECIPE, params={"L": 12})
    assert "E201" in e.value.message and "layer 12 (param `L`)" in e.value.message
    # `steerlang.plan` is both the plan types' module and the notebook's plan().
    assert steerlang.plan.RecipeIR is type(ir)


def test_import_steerlang_and_compile_load_no_torch() -> None:
    import subprocess

    code = (
        "import sys, steerlang; steerlang.compile('recipes/waterbirds.steer', params={'L': 3}); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def single(env: Path) -> Any:
    """One run at the recipe's own params (L = 7), shared by the tests below."""
    return steerlang.run(RECIPE, device="cpu", out=str(env))


def test_plan_run_and_metrics_by_group_name(single: Any) -> None:
    res = single
    m = res.metrics
    assert set(m["steered"]["per_group"]) == {  # readable names (pipeline/group_names.py)
        "landbird, water=no",
        "landbird, water=yes",
        "waterbird, water=no",
        "waterbird, water=yes",
    }
    worst = min(v for v in m["steered"]["per_group"].values() if v is not None)
    assert m["steered"]["worst_group"] == pytest.approx(worst)
    p = res.predictions
    assert len(p["labels"]) == len(p["baseline"]) == len(p["steered"]) == 64
    assert m["steered"]["accuracy"] == pytest.approx(float((p["steered"] == p["labels"]).mean()))
    assert m["baseline"]["accuracy"] == pytest.approx(float((p["baseline"] == p["labels"]).mean()))
    assert res.report_dir is not None and (res.report_dir / "plan.json").is_file()
    # steerlang.plan gives the run's plan (statistics now from the cache).
    plan = steerlang.plan(RECIPE, device="cpu")
    assert plan.n_edits > 0 and [s.layer for s in plan.sites] == [7]
    assert res.plan.model_dump() == plan.model_dump()


def test_grid_points_equal_single_runs(single: Any, env: Path) -> None:
    grid = steerlang.run(RECIPE, grid={"L": [5, 7]}, device="cpu", out=str(env))
    assert [p.params for p in grid.points] == [{"L": 5}, {"L": 7}]
    # The grid reuses the first point's baseline: the second point matches a single run.
    assert grid.points[1].metrics == single.metrics
    assert grid.points[1].plan.model_dump() == single.plan.model_dump()
    assert grid.points[0].metrics["baseline"] == single.metrics["baseline"]
    assert [s.layer for s in grid.points[0].plan.sites] == [5]
    folder = grid.report_dir
    assert folder is not None
    assert (folder / "grid.csv").read_text().splitlines()[0].startswith("point,L,n_edits,")
    assert (folder / "points" / "1" / "plan.json").is_file()
    assert "<svg" in (folder / "report.html").read_text()
    assert [e["params"] for e in grid.report["grid"]] == [{"L": 5}, {"L": 7}]
    rows = grid.metrics
    assert rows[1]["params"] == {"L": 7} and "steered" in rows[1]


def test_to_pandas_when_installed(single: Any) -> None:
    pytest.importorskip("pandas", reason="pandas is optional")
    res = single
    df = res.to_pandas()
    assert df.loc["accuracy", "steered"] == pytest.approx(res.metrics["steered"]["accuracy"])
