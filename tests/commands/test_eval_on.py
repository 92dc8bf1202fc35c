"""`steer run --eval-on` (steerlang/pipeline/eval_on.py, steerlang/commands/eval_on.py): the
run's plan evaluated on a second dataset with the same classifier. On the tiny random model
and two waterbirds-layout fixtures of different sizes (fast)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from steerlang.cli import main

RECIPE = """steer 1
recipe two "two datasets"
model default
dataset a
task classify y as ["landbird", "waterbird"]
groups y, place
concept water = place == 1
set batch_size = 32
rule bg: at layer 3 suppress top 5 features by corr(water)
"""


@pytest.fixture(scope="module", autouse=True)
def tiny_model_name() -> None:
    from steerlang.model.clip import TINY_CONFIG, register_model_config

    register_model_config("steer-tiny-evalon", TINY_CONFIG)


def test_same_plan_on_two_datasets(
    tmp_path: Path, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from steerlang.data import fixtures as F
    from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
    from steerlang.model.sae.load import save_sae

    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    a = F.make_waterbirds_fixture(tmp_path / "a", scale=200, image_size=32)
    b = F.make_waterbirds_fixture(tmp_path / "b", scale=400, image_size=32)
    cfg = SAEConfig(d_in=64, d_sae=48, hook=SAEHook(layer=3, site="resid_post"))
    sae = save_sae(SAE.random(cfg, seed=3), tmp_path / "L3")
    recipe = tmp_path / "two.steer"
    recipe.write_text(RECIPE)
    common = ["--model", "openclip:steer-tiny-evalon@random", "--device", "cpu"]
    common += ["--data", f"a=waterbirds:{a}", "--data", f"b=waterbirds:{b}", "--sae", f"3={sae}"]
    common += ["--out", str(tmp_path / "runs")]
    rc = main(["run", str(recipe), "--json", "--eval-on", "b", *common])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    rep = json.loads(cap.out)
    ev = rep["evaluations"]
    assert list(ev) == ["a", "b"]
    assert ev["a"]["metrics"] == rep["metrics"]
    assert ev["b"]["dataset"]["n_eval"] != ev["a"]["dataset"]["n_eval"]
    assert set(ev["b"]["metrics"]) >= {"baseline", "steered"}
    on_disk = json.loads((Path(rep["run_dir"]) / "report.json").read_text())
    assert on_disk["evaluations"]["b"] == ev["b"]
    # b's baseline does not depend on the plan: run with b as the recipe's own dataset.
    args_b = ["--model", "openclip:steer-tiny-evalon@random", "--device", "cpu"]
    args_b += ["--data", f"a=waterbirds:{b}", "--sae", f"3={sae}", "--out", str(tmp_path / "r2")]
    rc = main(["run", str(recipe), "--json", *args_b])
    rep_b = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert rep_b["metrics"]["baseline"] == ev["b"]["metrics"]["baseline"]
