"""The running top-k of the statistics pass (steerlang/pipeline/topk.py) against a brute-force
pass: same rows, activations to float tolerance, exact merges across batches and processes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steerlang.pipeline.statistics import StatsSpec, compute_statistics
from steerlang.pipeline.topk import RunningTopK, TopKError, patch_grid


def _brute(pooled: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows [M, k] and values by (value descending, row ascending), from all pooled [N, M]."""
    n, m = pooled.shape
    rows = np.full((m, k), -1)
    vals = np.full((m, k), -np.inf)
    for f in range(m):
        order = np.lexsort((np.arange(n), -pooled[:, f]))[:k]
        rows[f, : len(order)] = order
        vals[f, : len(order)] = pooled[order, f]
    return rows, vals


def test_patch_grid() -> None:
    assert (
        patch_grid(50) == 7 and patch_grid(17) == 4 and patch_grid(11) == 0 and patch_grid(10) == 3
    )
    # CLS-less towers (SigLIP): every token is a patch
    assert patch_grid(196, 0) == 14 and patch_grid(16, 0) == 4 and patch_grid(16) == 0


def test_cls_less_maps_read_every_token_and_survive_the_store() -> None:
    rng = np.random.default_rng(4)
    acts = torch.from_numpy(rng.random((6, 4, 5)).astype(np.float32))
    pooled = acts.double().mean(dim=1)
    top = RunningTopK(5, 2, n_patches=4, prefix_tokens=0)
    top.update(pooled, acts, np.arange(6))
    rows, _ = _brute(pooled.numpy(), 2)
    assert top.maps is not None
    for f in range(5):
        for j in range(2):
            assert torch.equal(top.maps[f, j], acts[rows[f, j], :, f])
    back = RunningTopK.from_columns(top.to_columns(), top.meta())
    assert back.prefix_tokens == 0
    with pytest.raises(TopKError, match="expects 4 patch tokens, the batch has 3"):
        RunningTopK(5, 2, n_patches=4).update(pooled, acts, np.arange(6))
    with pytest.raises(TopKError, match="cannot merge"):
        top.merge(RunningTopK(5, 2, n_patches=4))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    m=st.integers(1, 24),  # > 8 features: the sparse map copy of `_fold` runs too
    k=st.integers(1, 5),
    cuts=st.lists(st.integers(0, 30), max_size=4),
    seed=st.integers(0, 10_000),
)
def test_batches_and_merges_equal_one_pass(
    n: int, m: int, k: int, cuts: list[int], seed: int
) -> None:
    """Many ties (small integer activations): the order and the merge are still exact."""
    rng = np.random.default_rng(seed)
    t, p = 5, 4
    acts = torch.from_numpy(rng.integers(0, 3, size=(n, t, m)).astype(np.float32))
    pooled = acts.double().mean(dim=1)
    bounds = sorted({0, n, *[c for c in cuts if c < n]})
    parts = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        part = RunningTopK(m, k, n_patches=p)
        part.update(pooled[lo:hi], acts[lo:hi], np.arange(lo, hi))
        parts.append(part)
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    rows, vals = _brute(pooled.numpy(), k)
    assert np.array_equal(merged.rows_np(), rows)
    np.testing.assert_allclose(merged.values.numpy(), vals.astype(np.float32))
    assert merged.n_rows == n
    assert merged.maps is not None
    for f in range(m):
        for j in range(k):
            r = rows[f, j]
            if r >= 0:
                assert torch.equal(merged.maps[f, j], acts[r, 1:, f])


def test_tracked_subset_and_store_round_trip() -> None:
    rng = np.random.default_rng(3)
    acts = torch.from_numpy(rng.random((12, 5, 9)).astype(np.float32))
    pooled = acts.double().amax(dim=1)
    top = RunningTopK(9, 3, features=[7, 2], n_patches=4)
    top.update(pooled[:5], acts[:5], np.arange(5))
    top.update(pooled[5:], acts[5:], np.arange(5, 12))
    rows, _ = _brute(pooled.numpy(), 3)
    assert np.array_equal(top.rows_np(), rows[[7, 2]])
    got = top.top(2)
    assert [r for r, _, _ in got] == rows[2].tolist()
    back = RunningTopK.from_columns(top.to_columns(), top.meta())
    assert np.array_equal(back.rows_np(), top.rows_np())
    assert back.maps is not None and top.maps is not None
    torch.testing.assert_close(back.maps, top.maps, rtol=1e-3, atol=1e-3)
    with pytest.raises(TopKError, match="not tracked"):
        top.top(5)
    with pytest.raises(TopKError, match="out of range"):
        RunningTopK(9, 3, features=[9])
    with pytest.raises(TopKError, match="cannot merge"):
        top.merge(RunningTopK(9, 4, features=[7, 2], n_patches=4))


def test_statistics_pass_fills_the_top_k_like_a_brute_force_pass(
    tiny_handle: Any, sae_dirs: Any
) -> None:
    """The top-k kept inside `compute_statistics` equals sorting every image's pooled
    activation after the fact: exact rows, activations and patch maps to float tolerance."""
    from steerlang.model.sae.load import load_sae
    from steerlang.model.sites import capture

    sae = load_sae(sae_dirs[7])
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(20, 3, 32, 32, generator=g)
    spec_all = StatsSpec(7, "resid_post", "all")
    spec_patch = StatsSpec(7, "resid_post", "patches")
    k = 4
    galleries = {s: RunningTopK(sae.d_sae, k, n_patches=16) for s in (spec_all, spec_patch)}
    batches = [(np.arange(lo, min(lo + 6, 20)), pixels[lo : lo + 6]) for lo in range(0, 20, 6)]
    tables = compute_statistics(
        tiny_handle,
        {(7, "resid_post"): sae},
        [spec_all, spec_patch],
        batches,
        {},
        pooling="mean",
        galleries=galleries,
    )
    assert set(tables) == {spec_all, spec_patch}
    with torch.inference_mode(), capture(tiny_handle, [(7, "resid_post")]) as cap:
        h = cap.run(pixels)["blocks.7.hook_resid_post"]
        a = sae.encode(h).double()
    for spec, pooled in ((spec_all, a.mean(dim=1)), (spec_patch, a[:, 1:].mean(dim=1))):
        rows, vals = _brute(pooled.numpy(), k)
        top = galleries[spec]
        assert np.array_equal(top.rows_np(), rows), spec
        np.testing.assert_allclose(top.values.numpy(), vals, rtol=1e-5, atol=1e-6)
        assert top.maps is not None
        want = torch.stack([a[rows[f], 1:, f] for f in range(sae.d_sae)]).float()
        torch.testing.assert_close(top.maps, want, rtol=1e-5, atol=1e-5)
        # The table's `max` column agrees with the strongest patch seen in the maps.
        assert top.n_rows == 20
