"""`steer sae-stats` under torchrun (steerlang/training/sae_metrics.py): two gloo processes,
each measuring a contiguous share of the images, merge their sufficient statistics exactly
and give one process's numbers (<= 1e-6 relative)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _close(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isfinite(a):
        assert b == pytest.approx(a, rel=1e-6, abs=1e-12), where
    else:
        assert a == b, where


def test_sae_stats_under_torchrun_matches_one_process(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not on PATH")
    # 15 images: the ranks get 8 and 7 (an uneven split); accuracy and splicing included
    args = ["sae-stats", "zoo:sae/L7/resid_post", "--dataset", "waterbirds"]
    args += ["--max-images", "15", "--batch-size", "4", "--device", "cpu", "--json"]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STEER_CACHE": str(tmp_path / "cache"),
        "STEER_WORKERS": "0",
        "OMP_NUM_THREADS": "1",
    }
    docs = []
    for cmd in (
        [sys.executable, "-m", "steerlang", *args],
        [torchrun, "--nproc-per-node", "2", "-m", "steerlang", *args],
    ):
        res = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert res.returncode == 0, res.stderr[-3000:]
        docs.append(json.loads(res.stdout))  # one JSON document: rank 0 alone prints
    one, two = docs
    row = one["saes"]["zoo:sae/L7/resid_post"]
    assert row["splice"]["n_images"] == 15 and row["n_tokens"] == 15 * 17
    _close(one, two, "sae-stats")
