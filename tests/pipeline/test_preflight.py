"""Cheap errors first (steerlang/pipeline/preflight.py): missing or mismatched SAEs, missing
dataset columns and unreachable pretrained weights are reported before any model loads."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

import steerlang.model.clip as clip
from steerlang.errors import CheckpointError, DatasetError, OfflineError, SteerError
from steerlang.lang.api import compile_file
from steerlang.pipeline import preflight
from steerlang.pipeline.bind import RunOptions, bind

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "waterbirds.steer"


@pytest.fixture
def ir() -> Any:
    res = compile_file(str(RECIPE))
    assert res.ir is not None
    return res.ir


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the model was loaded before the references were checked")

    monkeypatch.setattr(clip, "load_model", refuse)


def test_a_missing_sae_is_reported_before_the_model_loads(ir: Any, no_model: None) -> None:
    with pytest.raises(CheckpointError, match="/nowhere/sae does not exist"):
        bind(ir, RunOptions(sae=["7=/nowhere/sae"]))


def _native_sae(root: Path, d_in: int, layer: int, site: str = "resid_post") -> Path:
    from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
    from steerlang.model.sae.load import save_sae

    cfg = SAEConfig(d_in=d_in, d_sae=8, hook=SAEHook(layer=layer, site=site))  # type: ignore[arg-type]
    return save_sae(SAE.random(cfg, seed=0), root)


def test_width_and_site_mismatches_are_reported_from_the_headers(
    ir: Any, no_model: None, tmp_path: Path
) -> None:
    wide = _native_sae(tmp_path / "wide", 768, 7)
    with pytest.raises(SteerError, match="reads 768-wide activations but zoo:tiny-clip has width"):
        bind(ir, RunOptions(sae=[f"7={wide}"]))
    width = preflight.model_shape("default")
    assert width is not None and width.n_layers == 12
    other = _native_sae(tmp_path / "other", width.width, 3, "mlp_out")
    with pytest.raises(SteerError, match="trained on blocks.3.hook_mlp_out"):
        bind(ir, RunOptions(sae=[f"7={other}"]))


def test_a_truncated_weights_header_is_a_checkpoint_error(tmp_path: Path) -> None:
    width = preflight.model_shape("default")
    assert width is not None
    d = _native_sae(tmp_path / "t", width.width, 7)
    (d / "sae.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        preflight.check_sae(str(d), width, "default", 7, "resid_post")


def test_header_shapes_are_read_without_the_data(tmp_path: Path) -> None:
    d = _native_sae(tmp_path / "s", 64, 7)
    shapes = preflight.safetensors_shapes(d / "sae.safetensors")
    assert shapes["W_enc"] == [64, 8] and shapes["W_dec"] == [8, 64]


def test_model_references_are_checked_from_config_files(tmp_path: Path) -> None:
    s = preflight.model_shape("openclip:ViT-B-32@laion2b_s34b_b79k")
    assert s is not None and (s.n_layers, s.width) == (12, 768)
    with pytest.raises(SteerError, match="did you mean ViT-B-32"):
        preflight.model_shape("openclip:ViT-B-23@laion2b_s34b_b79k")
    with pytest.raises(CheckpointError, match="not found"):
        preflight.model_shape(f"openclip:ViT-B-32@{tmp_path}/none.safetensors")
    with pytest.raises(SteerError, match="has 12 blocks"):
        preflight.check_references("default", {(12, "resid_post"): "zoo:sae/L7/resid_post"})


def test_a_missing_dataset_column_is_reported_before_the_model_loads(
    ir: Any, no_model: None
) -> None:
    bad = ir.model_copy(update={"groups": ["y", "plcae"]})
    with pytest.raises(DatasetError, match="reads the column 'plcae'"):
        bind(bad, RunOptions())


def test_the_pretrained_registry_is_read_without_importing_open_clip() -> None:
    import open_clip

    reg = preflight._pretrained_registry()
    for name, tag in [
        ("ViT-B-32", "laion2b_s34b_b79k"),
        ("ViT-B-32", "datacomp_xl_s13b_b90k"),
        ("ViT-L-14", "openai"),
        ("ViT-B-16-quickgelu", "metaclip_fullcc"),
    ]:
        assert reg[name][tag] == open_clip.get_pretrained_cfg(name, tag)["hf_hub"]


@pytest.fixture
def empty_hf_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("STEER_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_an_unreachable_hub_fails_at_once_with_the_loader_help(
    monkeypatch: pytest.MonkeyPatch, empty_hf_cache: None
) -> None:
    monkeypatch.setattr(preflight, "network_available", lambda: False)
    ref = "openclip:ViT-B-32@laion2b_s34b_b79k"
    with pytest.raises(OfflineError, match="cannot be reached") as err:
        preflight.check_pretrained_reachable(ref)
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in str(err.value)
    assert err.value.help and (
        "`hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K open_clip_pytorch_model.bin`"
        in err.value.help
    )
    monkeypatch.setenv("STEER_OFFLINE", "1")
    with pytest.raises(OfflineError, match="downloads are off"):
        preflight.check_pretrained_reachable(ref)
    monkeypatch.delenv("STEER_OFFLINE")
    monkeypatch.setattr(preflight, "network_available", lambda: True)
    preflight.check_pretrained_reachable(ref)  # reachable: the loader downloads


def test_the_network_probe_is_quick_when_nothing_listens() -> None:
    import time

    with socket.socket() as s:  # a port that was just free: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    assert preflight.network_available("127.0.0.1", port) is False
    assert time.perf_counter() - t0 < preflight.NETWORK_TIMEOUT_S + 1


def test_saelens_and_prisma_headers(tmp_path: Path) -> None:
    sl = tmp_path / "sl"
    sl.mkdir()
    (sl / "cfg.json").write_text(
        json.dumps({"d_in": 64, "d_sae": 8, "metadata": {"hook_name": "blocks.5.hook_mlp_out"}})
    )
    (sl / "sae_weights.safetensors").write_bytes(b"")
    h = preflight.sae_header(sl, "sl")
    assert h is not None and (h.format, h.d_in, h.layer, h.site) == ("SAELens", 64, 5, "mlp_out")
    pr = tmp_path / "pr"
    pr.mkdir()
    (pr / "config.json").write_text(
        json.dumps({"d_in": 32, "hook_point_layer": 2, "layer_subtype": "hook_resid_pre"})
    )
    (pr / "w.pt").write_bytes(b"")
    h = preflight.sae_header(pr, "pr")
    assert h is not None and (h.format, h.d_in, h.layer, h.site) == (
        "ViT-Prisma",
        32,
        2,
        "resid_pre",
    )
