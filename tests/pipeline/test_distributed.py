"""Data-parallel runs (steerlang/pipeline/distributed.py): exact merge of the statistics'
sufficient statistics, contiguous shards, and `steer run` under torchrun with two gloo
processes giving the statistics, plan and metrics of one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from steerlang.pipeline.distributed import (
    gather_rows,
    is_main,
    merge_stats,
    shard,
    shard_bounds,
    stats_state,
    world_size,
)
from steerlang.pipeline.statistics import FeatureStatsAccumulator

ROOT = Path(__file__).resolve().parents[2]


def test_shards_are_contiguous_cover_everything_and_differ_by_at_most_one() -> None:
    for n in (0, 1, 5, 64, 101):
        for ranks in (1, 2, 3, 8):
            bounds = [shard_bounds(n, ranks, r) for r in range(ranks)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1


def test_one_process_is_the_identity() -> None:
    assert world_size() == 1 and is_main()
    x = np.arange(7)
    assert shard(x) is x
    rows = {"a": np.arange(3)}
    assert gather_rows(rows) is rows


def _acc(acts: torch.Tensor, concepts: torch.Tensor, pooling: str) -> FeatureStatsAccumulator:
    acc = FeatureStatsAccumulator(acts.shape[-1], ["c0", "c1"], pooling=pooling)
    for lo in range(0, acts.shape[0], 5):  # batches of 5, as a pass would feed them
        acc.update(acts[lo : lo + 5], concepts[lo : lo + 5])
    return acc


@pytest.mark.parametrize("pooling", ["mean", "max"])
@pytest.mark.parametrize("cut", [0, 7, 13, 23])
def test_merged_shards_give_the_statistics_of_all_images(pooling: str, cut: int) -> None:
    g = torch.Generator().manual_seed(cut)
    acts = torch.relu(torch.randn(23, 6, 40, generator=g) + 0.3) * 1e3  # large offset: cancellation
    concepts = (torch.rand(23, 2, generator=g) < 0.4).to(torch.float32)
    whole = _acc(acts, concepts, pooling)
    a, b = _acc(acts[:cut], concepts[:cut], pooling), _acc(acts[cut:], concepts[cut:], pooling)
    merged = merge_stats(stats_state(a), stats_state(b))
    ref = stats_state(whole)
    assert merged["n_images"] == ref["n_images"] == 23
    assert merged["n_tokens"] == ref["n_tokens"]
    assert torch.equal(merged["fire"], ref["fire"]) and torch.equal(merged["max"], ref["max"])
    for k in ("mean", "m2", "concept_sum", "concept_n"):
        torch.testing.assert_close(merged[k], ref[k], rtol=1e-12, atol=1e-9)
    # and the finished columns
    for name, v in merged.items():
        setattr(a, name, v)
    cols_m, cols_w = a.finalize(), whole.finalize()
    assert set(cols_m) == set(cols_w)
    for k in cols_w:
        np.testing.assert_allclose(cols_m[k], cols_w[k], rtol=1e-9, atol=1e-12)


# ---- two gloo processes under torchrun --------------------------------------------------------

RECIPE = """steer 1
recipe small "waterbirds on a few images"
model default
dataset waterbirds
task classify y as ["landbird", "waterbird"] prompt "a photo of a {}."
groups y, place
concept water = place == 1
set stats_limit = 40
set eval_limit = 30
set batch_size = 8
set steer_images = 24
rule background: at layer 7 suppress features where corr(water) > 0.1
"""


def _run(cmd: list[str], cache: Path, out: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STEER_CACHE": str(cache),
        "STEER_WORKERS": "0",
        "OMP_NUM_THREADS": "1",
    }
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=out)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def _entries(cache: Path, kind: str) -> dict[str, dict[str, np.ndarray]]:
    """Every cache entry of one kind (steerlang/pipeline/cache.py layout)."""
    from safetensors.numpy import load_file

    return {d.name: load_file(d / "columns.safetensors") for d in (cache / kind).iterdir()}


def _stats_entries(cache: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every statistics table in a cache folder."""
    return _entries(cache, "stats")


def test_run_under_torchrun_matches_one_process(tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 -m steerlang run` (gloo) == `steer run`: the statistics
    (<= 1e-6 relative), the plan, the metrics and the feature-card galleries (running top-k,
    merged across the ranks). Three interpreter starts and two runs of a 40-image recipe:
    about 30 s of CPU time (docs/scale.md)."""
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not on PATH")
    recipe = tmp_path / "small.steer"
    recipe.write_text(RECIPE)
    args = ["run", str(recipe), "--device", "cpu", "--no-cache", "--json", "-q"]
    one_cache, two_cache = tmp_path / "c1", tmp_path / "c2"
    one = _run([sys.executable, "-m", "steerlang", *args, "--out", "r1"], one_cache, tmp_path)
    two = _run(
        [torchrun, "--nproc-per-node", "2", "-m", "steerlang", *args, "--out", "r2"],
        two_cache,
        tmp_path,
    )
    # the same edits and feature cards (rows, labels); their float64 statistics to 1e-6
    # relative (the merged sums are added in another order)
    assert one["plan"]
    _assert_close(one["plan"], two["plan"], "plan", rel=1e-6)
    assert one["metrics"] == two["metrics"]
    assert one["statistics"] == two["statistics"]
    s1, s2 = _stats_entries(one_cache), _stats_entries(two_cache)
    assert s1 and set(s1) == set(s2)
    for key, cols in s1.items():
        for name, v in cols.items():
            np.testing.assert_allclose(s2[key][name], v, rtol=1e-6, atol=1e-12)
    g1, g2 = _entries(one_cache, "gallery"), _entries(two_cache, "gallery")
    assert g1 and set(g1) == set(g2)
    for key, cols in g1.items():
        assert np.array_equal(g2[key]["rows"], cols["rows"]), f"gallery {key}: rows"
        # values to the statistics' tolerance (a rank's batches start at other rows, so the
        # float32 encodes may differ in the last bit); maps are stored as float16: one ulp
        np.testing.assert_allclose(g2[key]["values"], cols["values"], rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(
            g2[key]["maps"].astype(np.float32),
            cols["maps"].astype(np.float32),
            rtol=1e-3,
            atol=1e-6,
        )
    assert len(list((tmp_path / "r2").iterdir())) == 1  # one run folder: rank 0 wrote it


def test_sweep_under_torchrun_matches_one_process(tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 -m steerlang sweep` shards the features over the ranks and
    gathers them: the same steerability summary as one process (24 features, 24 images:
    about 45 s of CPU time, docs/scale.md)."""
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not on PATH")
    recipe = tmp_path / "small.steer"
    recipe.write_text(RECIPE)
    args = ["sweep", str(recipe), "--layer", "7", "--features", "0:24", "--device", "cpu"]
    args += ["--no-cache", "--json", "-q"]
    one = _run([sys.executable, "-m", "steerlang", *args], tmp_path / "c1", tmp_path)
    two = _run(
        [torchrun, "--nproc-per-node", "2", "-m", "steerlang", *args], tmp_path / "c2", tmp_path
    )
    assert one["results"] and len(one["results"]) == len(two["results"])
    _assert_close(one["results"], two["results"])


def _assert_close(a: Any, b: Any, where: str = "results", rel: float = 1e-5) -> None:
    """Equal structure and values; floats to 1e-5 relative (the gathered sweep runs the same
    per-feature sums in other chunk shapes)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_close(a[k], b[k], f"{where}.{k}", rel)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{where}[{i}]", rel)
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=rel, abs=1e-9), where
    else:
        assert a == b, where


# ---- running top-k galleries under torchrun -------------------------------------------------


@pytest.mark.parametrize("features", [None, [5, 1, 3]])
def test_gathered_galleries_equal_one_pass(
    monkeypatch: pytest.MonkeyPatch, features: list[int] | None
) -> None:
    """`merge_galleries` on rank 0 (the gather replaced by the two ranks' payloads) gives the
    top-k, values and patch maps of one pass over all rows; ties included (integer values)."""
    from steerlang.pipeline import distributed
    from steerlang.pipeline.topk import RunningTopK

    g = torch.Generator().manual_seed(3)
    n, m, t = 23, 7, 5  # 23 rows: shards of 12 and 11
    acts = torch.randint(0, 4, (n, t, m), generator=g).float()
    pooled = acts.mean(1)

    def gallery(lo: int, hi: int) -> RunningTopK:
        top = RunningTopK(m, 4, features=features, n_patches=t - 1)
        for a in range(lo, hi, 5):  # batches of 5, as a rank's loader would give them
            b = min(a + 5, hi)
            top.update(pooled[a:b], acts[a:b], np.arange(a, b))
        return top

    one = gallery(0, n)
    lo, hi = shard_bounds(n, 2, 1)
    payload: list[Any] = []
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "gather_objects", lambda obj: payload.append(obj) or [obj])
    distributed.merge_galleries({"s": gallery(lo, hi)})  # rank 1: records what it sends
    monkeypatch.setattr(distributed, "gather_objects", lambda obj: [obj, payload[0]])
    rank0 = gallery(0, lo)
    distributed.merge_galleries({"s": rank0})  # rank 0: its own state, then rank 1's
    assert np.array_equal(rank0.rows_np(), one.rows_np())
    assert torch.equal(rank0.values, one.values)
    assert rank0.maps is not None and one.maps is not None
    assert torch.equal(rank0.maps, one.maps)
    assert rank0.n_rows == n
