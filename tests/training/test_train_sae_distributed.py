"""`steer train-sae` under torchrun (steerlang/training/data_parallel.py): two gloo processes,
each capturing half of the images' activations and training on half of every global batch with
DistributedDataParallel, give the weights one process gives with the same global batch.

Tolerance: the two runs differ only in float32 summation order (each rank sums the gradient
over its half of the batch, gloo adds the two halves; one process sums all tokens in one
matmul), about 1e-7 relative per step; Adam's division by √v can amplify it over the steps.
Measured here: at most 6.7e-8 absolute on weights of order 0.4-1.2 (rows of W_dec are
unit-norm). We assert 1e-5 absolute, 150 times that; an error in the split (AuxK normalised by
a rank's own residual instead of the global batch's, a latent's firing not shared between the
ranks) moves the weights by 1e-3 or more.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from steerlang.model.sae.load import load_sae

ROOT = Path(__file__).resolve().parents[2]


def _env(cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STEER_CACHE": str(cache),
        "STEER_WORKERS": "0",
        "OMP_NUM_THREADS": "1",
    }


@pytest.mark.parametrize("arch", ["topk"])
def test_train_sae_under_torchrun_matches_one_process(tmp_path: Path, arch: str) -> None:
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not on PATH")
    args = ["train-sae", "--model", "zoo:tiny-clip", "--dataset", "waterbirds", "--layer", "1"]
    # 12 training images; 5 held-out images measured by both ranks (3 + 2) and merged
    args += ["--device", "cpu", "--max-images", "12", "--eval-images", "5", "--steps", "12"]
    # a dead window of 2 batches so AuxK (the term with all-reduced denominators) is exercised
    args += ["--arch", arch, "--k", "4", "--batch-tokens", "30", "--warmup-steps", "2"]
    args += ["--expansion", "2", "--checkpoint-every", "6", "--json"]
    runs = {}
    for name, cmd in (
        ("one", [sys.executable, "-m", "steerlang", *args]),
        ("two", [torchrun, "--nproc-per-node", "2", "-m", "steerlang", *args]),
    ):
        out = tmp_path / name
        res = subprocess.run(
            [*cmd, "--out", str(out)],
            env=_env(tmp_path / "cache"),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        runs[name] = (json.loads(res.stdout), load_sae(out))
    (doc1, sae1), (doc2, sae2) = runs["one"], runs["two"]
    t1 = doc1["saes"]["blocks.1.hook_resid_post"]["training"]
    t2 = doc2["saes"]["blocks.1.hook_resid_post"]["training"]
    assert t1["tokens_seen"] == t2["tokens_seen"] == 12 * 30
    assert t1["init"] == t2["init"]  # same tokens on every rank: same b_dec and input scale
    for k, v in t1["final"].items():  # the logged numbers are summed over the ranks' shares
        assert t2["final"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    assert t1["final"]["aux"] > 0  # AuxK was active
    m1 = doc1["saes"]["blocks.1.hook_resid_post"]["metrics"]
    m2 = doc2["saes"]["blocks.1.hook_resid_post"]["metrics"]
    assert m1["splice"]["n_images"] == m2["splice"]["n_images"] == 5
    for k in ("fvu", "l0", "dead_fraction"):  # held-out metrics of the (nearly) same weights
        assert m2[k] == pytest.approx(m1[k], rel=1e-4, abs=1e-6), k
    w1, w2 = sae1.state_dict(), sae2.state_dict()
    assert w1.keys() == w2.keys()
    for k in w1:
        diff = float((w1[k] - w2[k]).abs().max())
        assert diff <= 1e-5, f"{k}: max |one - two| = {diff:.3g}"
    # only rank 0 wrote: one checkpoint folder with the two kept steps
    ckpts = sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir())
    assert ckpts == ["step-0000006", "step-0000012"]
