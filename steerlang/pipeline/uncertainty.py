"""95% intervals for the task metrics (numpy only).

- A proportion (accuracy, one group's accuracy) gets the Wilson score interval: it stays inside
  [0, 1] and keeps its coverage for small n and for accuracies near 0 or 1, where the normal
  approximation (p ± 1.96·sqrt(p(1-p)/n)) collapses to a zero-width interval.
- A baseline -> steered difference, and worst-group accuracy (a minimum over groups, which no
  closed form covers), get a paired percentile bootstrap over images: baseline and steered are
  scored on the same images, so each resample draws images, not the two predictions
  independently. Images are resampled within their group, so every resample has the groups'
  evaluated sizes (a resample that lost a small group would have a different worst group).

The bootstrap draws, per group, how many resampled images fall in each of the four outcome
cells (baseline right/wrong x steered right/wrong) from a multinomial: the same distribution as
resampling the images one by one, at a cost independent of the number of images. It is seeded
(the recipe's `seed`), so a rerun reports the same intervals.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
N_BOOTSTRAP = 2000


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for k successes in n trials; None when n is 0."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 (k = n) the bound is exactly 0 (1); rounding would leave it a hair off.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def _cells(c0: np.ndarray, c1: np.ndarray, gids: np.ndarray, n_groups: int) -> np.ndarray:
    """[n_groups, 4] counts of (baseline, steered) outcomes 00, 01, 10, 11 per group."""
    cell = 2 * c0.astype(np.int64) + c1.astype(np.int64)
    out = np.zeros((n_groups, 4), dtype=np.int64)
    np.add.at(out, (gids, cell), 1)
    return out


def paired_bootstrap(
    correct_base: np.ndarray,
    correct_steer: np.ndarray,
    gids: np.ndarray | None,
    n_groups: int,
    *,
    seed: int,
    n_boot: int = N_BOOTSTRAP,
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of accuracy, per-group accuracy and worst-group accuracy, for the
    baseline and the steered model on the same resampled images.

    Returns arrays of shape [n_boot] (`accuracy_*`, `worst_*`) and [n_boot, n_groups]
    (`group_*`) for `*` in base/steer. Groups without images stay NaN and are left out of the
    worst group, as in the point estimate (steerlang/pipeline/metrics.py).
    """
    c0 = np.asarray(correct_base, dtype=bool)
    c1 = np.asarray(correct_steer, dtype=bool)
    if gids is None:
        gids, n_groups = np.zeros(len(c0), dtype=np.int64), 1
    cells = _cells(c0, c1, np.asarray(gids, dtype=np.int64), n_groups)
    sizes = cells.sum(1)
    rng = np.random.default_rng(seed)
    draws = np.zeros((n_boot, n_groups, 4), dtype=np.int64)
    for g in range(n_groups):
        if sizes[g]:
            draws[:, g, :] = rng.multinomial(sizes[g], cells[g] / sizes[g], size=n_boot)
    right0 = draws[:, :, 2] + draws[:, :, 3]
    right1 = draws[:, :, 1] + draws[:, :, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        g0 = np.where(sizes > 0, right0 / np.maximum(sizes, 1), np.nan)
        g1 = np.where(sizes > 0, right1 / np.maximum(sizes, 1), np.nan)
    total = max(int(sizes.sum()), 1)
    present = sizes > 0
    out = {
        "accuracy_base": right0.sum(1) / total,
        "accuracy_steer": right1.sum(1) / total,
        "group_base": g0,
        "group_steer": g1,
    }
    if present.any():
        out["worst_base"] = g0[:, present].min(1)
        out["worst_steer"] = g1[:, present].min(1)
    return out


def percentile_interval(x: np.ndarray) -> tuple[float, float] | None:
    """The central 95% of bootstrap replicates (None when there are none or all are NaN)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    if not x.size:
        return None
    lo, hi = np.percentile(x, [2.5, 97.5])
    return float(lo), float(hi)


def intervals(
    pred_base: np.ndarray,
    pred_steer: np.ndarray,
    labels: np.ndarray,
    gids: np.ndarray | None,
    n_groups: int,
    *,
    seed: int,
    n_boot: int = N_BOOTSTRAP,
) -> dict[str, Any]:
    """The `metrics.intervals` block of report.json: [low, high] per metric (fractions).

    `baseline`/`steered`: Wilson for `accuracy` and each of `per_group`, bootstrap for
    `worst_group`; `delta` (steered − baseline): paired bootstrap for `accuracy`, `per_group`
    and `worst_group`.
    """
    y = np.asarray(labels)
    c0 = np.asarray(pred_base) == y
    c1 = np.asarray(pred_steer) == y
    boot = paired_bootstrap(c0, c1, gids, n_groups, seed=seed, n_boot=n_boot)
    out: dict[str, Any] = {
        "level": 0.95,
        "method": {
            "proportion": "wilson",
            "worst_group": "paired bootstrap over images, within groups",
            "delta": "paired bootstrap over images, within groups",
        },
        "n_bootstrap": n_boot,
        "seed": seed,
    }
    for which, c, tag in (("baseline", c0, "base"), ("steered", c1, "steer")):
        block: dict[str, Any] = {"accuracy": wilson(int(c.sum()), int(c.size))}
        if gids is not None:
            g = np.asarray(gids)
            block["per_group"] = [
                wilson(int(c[g == i].sum()), int((g == i).sum())) for i in range(n_groups)
            ]
            block["worst_group"] = percentile_interval(boot.get(f"worst_{tag}", np.zeros(0)))
        out[which] = block
    delta: dict[str, Any] = {
        "accuracy": percentile_interval(boot["accuracy_steer"] - boot["accuracy_base"])
    }
    if gids is not None:
        d = boot["group_steer"] - boot["group_base"]
        delta["per_group"] = [percentile_interval(d[:, i]) for i in range(n_groups)]
        if "worst_base" in boot:
            delta["worst_group"] = percentile_interval(boot["worst_steer"] - boot["worst_base"])
    out["delta"] = delta
    return out
