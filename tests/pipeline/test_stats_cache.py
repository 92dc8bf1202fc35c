"""The statistics cache through the statistics stage (issue 14 items 2 and 6): a relabelled
dataset never reads back the old statistics, and a damaged cache entry is reported once,
discarded and recomputed to the same numbers as a clean run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_helpers import CacheWarnings, waterbirds_ir

from steerlang.data.fixtures import relabel_waterbirds
from steerlang.pipeline.bind import bind
from steerlang.pipeline.run import RunOptions
from steerlang.pipeline.stats_pass import StatsOutcome, statistics_for


@pytest.fixture
def wb_root(tmp_path: Path) -> Path:
    from steerlang.data.fixtures import make_waterbirds_fixture

    return make_waterbirds_fixture(tmp_path / "wb", scale=400, image_size=32)


def _stats(ir: Any, root: Path, cache: Path, handle: Any) -> StatsOutcome:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEER_CACHE", str(cache))
        b = bind(ir, RunOptions(data=[f"wb=waterbirds:{root}"], device="cpu"), handle=handle)
    return statistics_for(ir, b)


def _columns(out: StatsOutcome) -> dict[str, dict[str, np.ndarray]]:
    return {
        f"{k[0]}:{k[1]}:{k[2]}": {c: np.asarray(v) for c, v in t.columns.items()}
        for k, t in out.tables.items()
    }


def test_relabelled_metadata_recomputes_statistics(
    wb_root: Path, tmp_path: Path, sae_dirs: Any, tiny_handle: Any
) -> None:
    ir = waterbirds_ir(sae_dirs)  # concept water = place == 1
    cache = tmp_path / "cache"
    first = _stats(ir, wb_root, cache, tiny_handle)
    assert len(first.computed) == 3

    relabel_waterbirds(wb_root, ("place",))
    relabelled = _stats(ir, wb_root, cache, tiny_handle)
    # The same images and file sizes, new concept values: nothing is read back.
    assert relabelled.cached == [] and len(relabelled.computed) == 3
    assert set(relabelled.keys.values()).isdisjoint(first.keys.values())
    # The numbers follow the new labels: flipping the indicator negates every correlation and
    # swaps the concept means, and they equal a run on a fresh cache.
    old, new = _columns(first), _columns(relabelled)
    for site, cols in new.items():
        np.testing.assert_allclose(cols["corr:water"], -old[site]["corr:water"], atol=1e-12)
        np.testing.assert_allclose(cols["mean:water"], old[site]["mean_not:water"], rtol=1e-9)
        assert np.abs(cols["corr:water"]).max() > 0.05  # not trivially zero
    fresh = _columns(_stats(ir, wb_root, tmp_path / "fresh", tiny_handle))
    for site, cols in new.items():
        for c, v in cols.items():
            np.testing.assert_array_equal(v, fresh[site][c])

    # A label the concepts do not read still changes the table file, hence the key: the
    # cache follows the bytes of every table file the loader read.
    relabel_waterbirds(wb_root, ("y",))
    again = _stats(ir, wb_root, cache, tiny_handle)
    assert again.cached == [] and set(again.keys.values()).isdisjoint(relabelled.keys.values())


def _rewrite_columns(d: Path, fn: Callable[[dict[str, np.ndarray]], None], fix: bool) -> None:
    import hashlib

    from safetensors.numpy import load, save

    cols = dict(load((d / "columns.safetensors").read_bytes()))
    fn(cols)
    data = save(cols)
    (d / "columns.safetensors").write_bytes(data)
    if fix:
        doc = json.loads((d / "meta.json").read_text())
        doc["columns_sha256"] = hashlib.sha256(data).hexdigest()
        (d / "meta.json").write_text(json.dumps(doc))


def _nan(cols: dict[str, np.ndarray]) -> None:
    cols["corr:water"] = np.full_like(cols["corr:water"], np.nan)


def _halve(cols: dict[str, np.ndarray]) -> None:
    cols["mean"] = cols["mean"][: len(cols["mean"]) // 2].copy()


def _truncate(d: Path) -> None:
    f = d / "columns.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "empty": lambda d: (d / "columns.safetensors").write_bytes(b""),
    "garbage": lambda d: (d / "columns.safetensors").write_bytes(b"\x00garbage" * 64),
    "deleted": lambda d: (d / "columns.safetensors").unlink(),
    "nan, checksum updated": lambda d: _rewrite_columns(d, _nan, True),
    "nan, checksum stale": lambda d: _rewrite_columns(d, _nan, False),
    "short column, checksum updated": lambda d: _rewrite_columns(d, _halve, True),
    "meta missing": lambda d: (d / "meta.json").unlink(),
}


@pytest.fixture(scope="module")
def clean(
    tmp_path_factory: pytest.TempPathFactory, sae_dirs: Any, tiny_handle: Any
) -> tuple[Path, Path, dict[str, dict[str, np.ndarray]], StatsOutcome]:
    """One clean run: its dataset, its filled cache folder and its numbers."""
    from steerlang.data.fixtures import make_waterbirds_fixture

    tmp = tmp_path_factory.mktemp("clean")
    root = make_waterbirds_fixture(tmp / "wb", scale=400, image_size=32)
    out = _stats(waterbirds_ir(sae_dirs), root, tmp / "cache", tiny_handle)
    return root, tmp / "cache", _columns(out), out


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corrupt_entry_is_recomputed_with_one_warning(
    name: str,
    clean: Any,
    tmp_path: Path,
    sae_dirs: Any,
    tiny_handle: Any,
    cache_warnings: CacheWarnings,
) -> None:
    import shutil

    root, clean_cache, numbers, clean_out = clean
    cache = tmp_path / "cache"
    shutil.copytree(clean_cache, cache)
    key = clean_out.keys["3:resid_post:all"]
    CORRUPTIONS[name](cache / "stats" / key)

    ir = waterbirds_ir(sae_dirs)
    out = _stats(ir, root, cache, tiny_handle)
    assert out.computed == [key] and len(out.cached) == 2
    (line,) = cache_warnings.lines
    assert f"stats/{key}" in line and "recomputed" in line
    got = _columns(out)
    for site, cols in numbers.items():
        assert set(got[site]) == set(cols)
        for c, v in cols.items():
            np.testing.assert_array_equal(got[site][c], v, err_msg=f"{site} {c}")
    # Reported once: the next run reads the recomputed entry back without a word.
    again = _stats(ir, root, cache, tiny_handle)
    assert again.computed == [] and len(cache_warnings.lines) == 1
