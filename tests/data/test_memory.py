"""In-memory data (steerlang/data/memory.py) through the notebook API: the same images given as
PIL images plus a label table report exactly what the dataset folder they came from reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import steerlang

RECIPE = """steer 1
recipe mem "in memory"
model default
dataset d
task classify y as ["landbird", "waterbird"]
groups y, place
concept water = place == 1
set batch_size = 32
rule bg: at layer 3 suppress top 5 features by corr(water)
"""


def test_memory_table_matches_the_folder(tmp_path: Path, monkeypatch: Any) -> None:
    from steerlang.data import fixtures as F
    from steerlang.data.formats import load_dataset
    from steerlang.data.memory import memory_table
    from steerlang.errors import DatasetError
    from steerlang.model.clip import TINY_CONFIG, register_model_config
    from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
    from steerlang.model.sae.load import save_sae

    register_model_config("steer-tiny-memory", TINY_CONFIG)
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    root = F.make_waterbirds_fixture(tmp_path / "wb", scale=200, image_size=32)
    table = load_dataset("waterbirds", root)
    cfg = SAEConfig(d_in=64, d_sae=48, hook=SAEHook(layer=3, site="resid_post"))
    sae = save_sae(SAE.random(cfg, seed=3), tmp_path / "L3")
    opts: dict[str, Any] = {
        "model": "openclip:steer-tiny-memory@random",
        "device": "cpu",
        "sae": [f"3={sae}"],
        "write": False,
    }
    from_folder = steerlang.run(RECIPE, data=[f"d=waterbirds:{root}"], **opts)
    images = [table.image(i) for i in range(len(table))]
    labels = {c: table.column(c) for c in ("y", "place", "split")}
    in_memory = steerlang.run(RECIPE, images=images, labels=labels, **opts)
    assert in_memory.metrics == from_folder.metrics
    assert [e.feature for e in in_memory.plan.sites[0].edits] == [
        e.feature for e in from_folder.plan.sites[0].edits
    ]
    # The cache key follows the pixels: another image in a row gives another key.
    t1 = memory_table(images, labels)
    t2 = memory_table([images[1], *images[1:]], labels)
    assert t1.paths[1:] == t2.paths[1:] and t1.paths[0] != t2.paths[0]
    with pytest.raises(DatasetError, match="has 3 values"):
        memory_table(images, {"y": [0, 1, 0]})
