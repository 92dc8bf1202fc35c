"""`set stats_images`: statistics over clean images, attacked copies, or both, so a recipe can
find the features that fire when a word is written and report the defence's clean cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from steerlang.errors import SteerError
from steerlang.lang.api import compile_text
from steerlang.pipeline.run import RunOptions, plan_ir, run_ir

RECIPE = """steer 1
recipe typo "stats images"
model default
dataset d
task classify label_name as ["car", "cat", "dog"]
set attack = "typographic"
set stats_images = "{mode}"
set batch_size = 8
{concept}rule reading: at layer 3 suppress features where {where}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from steerlang.data.fixtures import make_imagefolder_fixture

    return make_imagefolder_fixture(tmp_path_factory.mktemp("if"), n_per_class=3, image_size=32)


def _text(mode: str, where: str = "mean() > 0", concept: bool = True) -> str:
    c = "concept written = attacked == 1\n" if concept else ""
    return RECIPE.format(mode=mode, where=where, concept=c)


def _ir(mode: str, where: str = "mean() > 0", concept: bool = True) -> Any:
    res = compile_text(_text(mode, where, concept))
    assert res.ir is not None, [d.message for d in res.diagnostics]
    return res.ir


def _opts(tmp: Path, root: Path, sae_dirs: dict[int, Path], fmt: str = "imagefolder") -> Any:
    return RunOptions(
        data=[f"d={fmt}:{root}"], sae=[f"3={sae_dirs[3]}"], out=str(tmp / "runs"), device="cpu"
    )


def _mean(ir: Any, opts: Any, handle: Any) -> np.ndarray:
    po = plan_ir(ir, opts, handle=handle)
    (table,) = po.stats.tables.values()
    return np.asarray(table.columns["mean"], dtype=np.float64)


def test_both_is_the_union_of_clean_and_attacked(
    folder: Path, sae_dirs: dict[int, Path], tiny_handle: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    opts = _opts(tmp_path, folder, sae_dirs)
    clean = _mean(_ir("clean", concept=False), opts, tiny_handle)
    attacked = _mean(_ir("attacked"), opts, tiny_handle)
    both = _mean(_ir("both"), opts, tiny_handle)
    # each image once clean and once attacked: the mean over 2N is the average of the two means
    np.testing.assert_allclose(both, (clean + attacked) / 2, rtol=1e-5, atol=1e-6)
    assert not np.allclose(clean, attacked)  # the written word changes the activations
    # three modes, three cache entries (the rendering is part of the key)
    assert len(list((tmp_path / "cache").rglob("stats-*"))) >= 3


def test_a_run_reports_clean_and_attacked_from_one_recipe(
    folder: Path, sae_dirs: dict[int, Path], tiny_handle: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    ir = _ir("both", "corr(written) > 0.0")
    out = run_ir(ir, _opts(tmp_path, folder, sae_dirs), handle=tiny_handle, write=False)
    rep = out.report
    assert rep["dataset"]["stats_images"] == "both"
    assert rep["dataset"]["attack_style"] == "dp"  # auto on a non-zoo dataset
    a = rep["metrics"]["attack"]
    assert a["baseline"]["n"] == 9 and set(a) >= {"baseline", "steered", "recovered"}
    # corr(written) over N clean + N attacked rows: some feature fires more on attacked copies
    assert out.plan.selection.plan.n_edits > 0


def test_style_setting_overrides_auto(
    folder: Path, sae_dirs: dict[int, Path], tiny_handle: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    opts = _opts(tmp_path, folder, sae_dirs)
    dp = _mean(_ir("attacked"), opts, tiny_handle)
    text = _text("attacked") + 'set attack_style = "note"\n'
    res = compile_text(text)
    assert res.ir is not None
    note = _mean(res.ir, opts, tiny_handle)
    assert not np.allclose(dp, note)


def test_attack_columns_on_clean_statistics_name_the_setting(
    folder: Path, sae_dirs: dict[int, Path], tiny_handle: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SteerError) as e:
        plan_ir(
            _ir("clean", "corr(written) > 0.1"),
            _opts(tmp_path, folder, sae_dirs),
            handle=tiny_handle,
        )
    assert "`attacked`" in e.value.message and 'stats_images = "both"' in (e.value.help or "")


def test_stats_images_needs_a_task_and_clean_data(
    sae_dirs: dict[int, Path], tiny_handle: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from steerlang.data.fixtures import make_typographic_fixture

    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    root = make_typographic_fixture(tmp_path / "typo", n_per_class=1, image_size=32)
    ir = _ir("both")
    with pytest.raises(SteerError, match="already carry words"):
        plan_ir(ir, _opts(tmp_path, root, sae_dirs, "typographic"), handle=tiny_handle)
    no_task = ir.model_copy(update={"task": None})
    with pytest.raises(SteerError, match="no task"):
        plan_ir(no_task, _opts(tmp_path, root, sae_dirs, "typographic"), handle=tiny_handle)
