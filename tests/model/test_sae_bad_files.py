"""Malformed SAE folders (issue 17's list, and folder layouts users bring): each one a
CheckpointError naming the file, the key and the fix, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_sae_formats import (
    D,
    M,
    prisma_cfg,
    prisma_forward,
    raw_tensors,
    saelens_v6_cfg,
    write_saelens,
)

from steerlang.errors import CheckpointError
from steerlang.model.sae.load import load_sae


def _prisma(tmp_path: Path, cfg: dict, name: str = "weights.pt") -> Path:
    d = tmp_path / "p"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    torch.save(raw_tensors(), d / name)
    return d


def test_zero_byte_prisma_weights(tmp_path: Path) -> None:
    d = _prisma(tmp_path, prisma_cfg())
    (d / "weights.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"weights\.pt.*empty, 0 bytes") as ei:
        load_sae(d)
    assert "re-download" in str(ei.value)


@pytest.mark.parametrize("layer", ["seven", [7, 8], 7.5, -1, True])
def test_prisma_hook_point_layer_not_one_integer(tmp_path: Path, layer: object) -> None:
    with pytest.raises(CheckpointError, match="config.json: hook_point_layer must be one") as ei:
        load_sae(_prisma(tmp_path, prisma_cfg(hook_point_layer=layer)))
    assert "one folder per layer" in str(ei.value)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ([5], "activation_fn_kwargs must be an object"),
        ({"k": "many"}, "activation_fn_kwargs.k must be a positive integer, found 'many'"),
        ({"k": 0}, "must be a positive integer"),
        ({"k": 10 * M}, "larger than the SAE's width"),
    ],
)
def test_prisma_topk_kwargs(tmp_path: Path, kwargs: object, match: str) -> None:
    cfg = prisma_cfg(activation_fn_str="topk", activation_fn_kwargs=kwargs)
    with pytest.raises(CheckpointError, match=match) as ei:
        load_sae(_prisma(tmp_path, cfg))
    assert "config.json" in str(ei.value) and "help:" in str(ei.value)


def test_saelens_pre6_topk_kwargs_as_list(tmp_path: Path) -> None:
    cfg = {
        "d_in": D,
        "d_sae": M,
        "hook_point": "blocks.2.hook_resid_post",
        "activation_fn_str": "topk",
        "activation_fn_kwargs": [5],
    }
    with pytest.raises(CheckpointError, match=r"cfg\.json: activation_fn_kwargs must be an object"):
        load_sae(write_saelens(tmp_path / "s", cfg, raw_tensors()))


@pytest.mark.parametrize("k", ["many", 0, 2 * M, [5]])
def test_saelens_v6_topk_bad_k(tmp_path: Path, k: object) -> None:
    cfg = saelens_v6_cfg("topk", k=k)
    with pytest.raises(CheckpointError, match=r"cfg\.json: k") as ei:
        load_sae(write_saelens(tmp_path / "s", cfg, raw_tensors()))
    assert "help:" in str(ei.value)


def test_saelens_architecture_as_list(tmp_path: Path) -> None:
    cfg = saelens_v6_cfg()
    cfg["architecture"] = ["standard"]
    with pytest.raises(CheckpointError, match=r"cfg\.json: architecture must be a string") as ei:
        load_sae(write_saelens(tmp_path / "s", cfg, raw_tensors()))
    assert "'standard'" in str(ei.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -2.0, 0, "big"])
def test_saelens_bad_norm_scaling_factor(tmp_path: Path, value: object) -> None:
    cfg = saelens_v6_cfg(norm="expected_average_only_in", norm_scaling_factor=value)
    with pytest.raises(CheckpointError, match=r"cfg\.json: norm_scaling_factor=") as ei:
        load_sae(write_saelens(tmp_path / "s", cfg, raw_tensors()))
    assert "finite number > 0" in str(ei.value)


def test_saelens_bad_types_are_named(tmp_path: Path) -> None:
    cfg = saelens_v6_cfg(apply_b_dec_to_input="yes")
    with pytest.raises(CheckpointError, match="apply_b_dec_to_input must be true or false"):
        load_sae(write_saelens(tmp_path / "a", cfg, raw_tensors()))
    cfg = saelens_v6_cfg()
    cfg["metadata"]["hook_name"] = ["blocks.1.hook_resid_post"]
    with pytest.raises(CheckpointError, match="is not a steerable vision-tower site"):
        load_sae(write_saelens(tmp_path / "h", cfg, raw_tensors()))
    cfg = saelens_v6_cfg(d_sae="wide")
    with pytest.raises(CheckpointError, match="d_sae must be a positive integer"):
        load_sae(write_saelens(tmp_path / "d", cfg, raw_tensors()))


def test_expected_files_present_but_not_the_format(tmp_path: Path) -> None:
    """ "no known SAE format" when the folder has exactly a format's files: say what is wrong."""
    # Our file names, a SAELens config inside.
    d = tmp_path / "native"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(saelens_v6_cfg()))
    from safetensors.torch import save_file

    save_file(raw_tensors(), str(d / "sae.safetensors"))
    with pytest.raises(CheckpointError, match='has no "format": "steerlang-sae"') as ei:
        load_sae(d)
    assert "rename it to cfg.json" in str(ei.value)
    # config.json + a .pt, but not Prisma's keys.
    d = tmp_path / "prisma"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"d_in": D}))
    torch.save(raw_tensors(), d / "weights.pt")
    with pytest.raises(CheckpointError, match="none of the keys ViT-Prisma writes") as ei:
        load_sae(d)
    assert "hook_point_layer" in str(ei.value)
    # A SAELens config next to a differently named safetensors file.
    d = tmp_path / "renamed"
    d.mkdir()
    (d / "cfg.json").write_text(json.dumps(saelens_v6_cfg()))
    save_file(raw_tensors(), str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match="rename to sae_weights.safetensors"):
        load_sae(d)


def test_folder_where_a_file_should_be(tmp_path: Path) -> None:
    """ "not found" for a directory: a folder named like the weights file is named as a folder."""
    d = tmp_path / "s"
    d.mkdir()
    (d / "cfg.json").write_text(json.dumps(saelens_v6_cfg()))
    (d / "sae_weights.safetensors").mkdir()
    with pytest.raises(CheckpointError, match="sae_weights.safetensors is a folder, not a file"):
        load_sae(d)
    d = tmp_path / "p"
    d.mkdir()
    (d / "config.json").mkdir()
    torch.save(raw_tensors(), d / "weights.pt")
    with pytest.raises(CheckpointError, match="config.json is a folder, not a file"):
        load_sae(d)


def test_prisma_training_checkpoint_folder_loads_the_weights(tmp_path: Path) -> None:
    """Prisma's trainer writes n_images_<N>.pt and n_images_<N>_log_feature_sparsity.pt."""
    cfg = prisma_cfg()
    d = _prisma(tmp_path, cfg, name="n_images_2600058.pt")
    for n in (1300029, 2600058):
        torch.save(torch.rand(M), d / f"n_images_{n}_log_feature_sparsity.pt")
    torch.save(raw_tensors(seed=5), d / "n_images_1300029.pt")  # an earlier checkpoint
    sae = load_sae(d)
    assert sae.cfg.metadata["weights_file"] == "n_images_2600058.pt"
    x = torch.randn(3, D)
    with torch.no_grad():
        xhat, _ = sae(x)
    torch.testing.assert_close(xhat, prisma_forward(cfg, raw_tensors(), x), rtol=1e-5, atol=1e-5)
    # Only sparsity logs: said so.
    for p in d.glob("n_images_*.pt"):
        if "sparsity" not in p.name:
            p.unlink()
    with pytest.raises(CheckpointError, match="sparsity logs, not SAE weights"):
        load_sae(d)
