"""95% intervals (steerlang/pipeline/uncertainty.py) against hand-computed values and a
brute-force image-by-image bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steerlang.pipeline.uncertainty import (
    intervals,
    paired_bootstrap,
    percentile_interval,
    wilson,
)


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        # Hand-computed from the Wilson formula with z = 1.96 (the textbook table values):
        # centre = (p + z²/2n)/(1 + z²/n), half = z·sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n).
        (8, 10, 0.4902, 0.9433),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (50, 100, 0.4038, 0.5962),
        (1, 3, 0.0615, 0.7923),
    ],
)
def test_wilson_matches_hand_computed_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson(k, n)
    assert got is not None
    assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)


def test_wilson_of_no_images_is_none_and_stays_in_the_unit_interval() -> None:
    assert wilson(0, 0) is None
    for n in (1, 2, 7, 1000):
        for k in range(0, n + 1, max(1, n // 5)):
            lo, hi = wilson(k, n)  # type: ignore[misc]
            assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_certain_outcomes_give_degenerate_bootstrap_intervals() -> None:
    y = np.zeros(50, dtype=np.int64)
    base = np.ones(50, dtype=np.int64)  # all wrong
    steer = np.zeros(50, dtype=np.int64)  # all right
    gids = np.repeat([0, 1], 25)
    iv = intervals(base, steer, y, gids, 2, seed=0, n_boot=200)
    assert iv["delta"]["accuracy"] == (1.0, 1.0)
    assert iv["delta"]["worst_group"] == (1.0, 1.0)
    assert iv["delta"]["per_group"] == [(1.0, 1.0), (1.0, 1.0)]
    same = intervals(steer, steer, y, gids, 2, seed=0, n_boot=200)
    assert same["delta"]["accuracy"] == (0.0, 0.0)  # paired: identical predictions, no spread


def test_the_paired_bootstrap_matches_resampling_images_one_by_one() -> None:
    """The multinomial draw per group has the distribution of resampling the group's images
    with replacement: percentiles agree with a brute-force bootstrap to sampling error."""
    rng = np.random.default_rng(1)
    n_per, n_groups = 60, 3
    gids = np.repeat(np.arange(n_groups), n_per)
    c0 = rng.random(n_per * n_groups) < np.repeat([0.9, 0.5, 0.7], n_per)
    c1 = np.where(rng.random(c0.size) < 0.8, c0, ~c0)
    boot = paired_bootstrap(
        c0, c1, gids, n_groups, seed=3, n_boot=20000
    )  # cheap: one multinomial per group
    brute_d, brute_w = [], []
    for _ in range(6000):
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(gids == g), n_per, replace=True) for g in range(n_groups)]
        )
        a0 = np.array([c0[idx][gids[idx] == g].mean() for g in range(n_groups)])
        a1 = np.array([c1[idx][gids[idx] == g].mean() for g in range(n_groups)])
        brute_d.append(c1[idx].mean() - c0[idx].mean())
        brute_w.append(a1.min() - a0.min())
    mine_d = percentile_interval(boot["accuracy_steer"] - boot["accuracy_base"])
    mine_w = percentile_interval(boot["worst_steer"] - boot["worst_base"])
    assert mine_d is not None and mine_w is not None
    assert np.allclose(mine_d, percentile_interval(np.array(brute_d)), atol=0.015)
    assert np.allclose(mine_w, percentile_interval(np.array(brute_w)), atol=0.025)


def test_intervals_are_seeded_and_cover_the_point_estimates() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    base = np.where(rng.random(300) < 0.7, y, 1 - y)
    steer = np.where(rng.random(300) < 0.8, y, 1 - y)
    gids = rng.integers(0, 4, 300)
    a = intervals(base, steer, y, gids, 4, seed=5, n_boot=500)
    b = intervals(base, steer, y, gids, 4, seed=5, n_boot=500)
    assert a == b
    d = float(np.mean(steer == y) - np.mean(base == y))
    lo, hi = a["delta"]["accuracy"]
    assert lo <= d <= hi
    worst = min(float(np.mean(base[gids == g] == y[gids == g])) for g in range(4))
    lo, hi = a["baseline"]["worst_group"]
    assert lo <= worst + 1e-12 and hi >= worst - 0.1  # the minimum's bootstrap sits low
    assert a["baseline"]["accuracy"] == wilson(int(np.sum(base == y)), 300)


def test_an_empty_group_has_no_interval_and_is_left_out_of_the_worst_group() -> None:
    y = np.zeros(20, dtype=np.int64)
    pred = np.zeros(20, dtype=np.int64)
    gids = np.zeros(20, dtype=np.int64)  # group 1 has no images
    iv = intervals(pred, pred, y, gids, 2, seed=0, n_boot=100)
    assert iv["baseline"]["per_group"][1] is None
    assert iv["delta"]["per_group"][1] is None
    assert iv["baseline"]["worst_group"] == (1.0, 1.0)
    assert not math.isnan(iv["baseline"]["accuracy"][0])
