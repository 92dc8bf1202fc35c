"""SAE file formats: golden tests against the libraries' own forward, round-trips, bad files.

Fixtures are written the way each library writes them (the config keys of SAELens' `cfg.json`
and ViT-Prisma's `config.json`, tensors saved directly with safetensors / torch.save), and the reference forward passes below
are re-statements of the libraries' formulas, independent of steerlang's SAE class.
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from steerlang.errors import CheckpointError, OfflineError, SteerError
from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
from steerlang.model.sae.load import load_sae, save_sae

D, M = 16, 48


def raw_tensors(seed: int = 0, threshold: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = {
        "W_enc": torch.randn(D, M, generator=g) / math.sqrt(D),
        "b_enc": 0.1 * torch.randn(M, generator=g),
        "W_dec": torch.randn(M, D, generator=g) / math.sqrt(M),
        "b_dec": 0.2 * torch.randn(D, generator=g),
    }
    if threshold:
        t["threshold"] = 0.05 + 0.1 * torch.rand(M, generator=g)
    return t


# ----------------------------------------------------------------- reference forwards


def saelens_forward(cfg: dict, t: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """SAELens SAE.forward (v6 semantics)."""
    norm = cfg.get("normalize_activations", "none")
    if norm == "layer_norm":
        mu = x.mean(-1, keepdim=True)
        xc = x - mu
        std = xc.std(-1, keepdim=True)
        x_in = xc / (std + 1e-5)
    elif norm == "constant_norm_rescale":
        scale = math.sqrt(cfg["d_in"]) / x.norm(dim=-1, keepdim=True)
        x_in = x * scale
    else:
        x_in = x
    if cfg.get("apply_b_dec_to_input", True):
        x_in = x_in - t["b_dec"]
    pre = x_in @ t["W_enc"] + t["b_enc"]
    arch = cfg.get("architecture", "standard")
    if arch == "standard":
        f = torch.relu(pre)
    elif arch == "jumprelu":
        f = torch.relu(pre) * (pre > t["threshold"])
    else:
        v, i = pre.topk(cfg.get("k", 100), dim=-1)
        f = torch.zeros_like(pre).scatter(-1, i, torch.relu(v))
    out = f @ t["W_dec"] + t["b_dec"]
    if norm == "layer_norm":
        out = out * std + mu  # SAELens: x * ln_std + ln_mu
    elif norm == "constant_norm_rescale":
        out = out / scale
    return out


def prisma_forward(cfg: dict, t: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """ViT-Prisma SparseAutoencoder.forward."""
    if cfg.get("normalize_activations", "layer_norm") == "layer_norm":
        mu = x.mean(-1, keepdim=True)
        std = (x - mu).std(-1, keepdim=True)
        xt = (x - mu) / (std + 1e-5)
    else:
        xt = x
    pre = (xt - t["b_dec"]) @ t["W_enc"] + t["b_enc"]
    if cfg.get("activation_fn_str") == "topk":
        v, i = pre.topk(cfg["activation_fn_kwargs"]["k"], dim=-1)
        f = torch.zeros_like(pre).scatter(-1, i, torch.relu(v))
    else:
        f = torch.relu(pre)
    out = f @ t["W_dec"] + t["b_dec"]
    if cfg.get("normalize_activations", "layer_norm") == "layer_norm":
        out = out * std + mu  # Prisma undoes it with sigma (no eps)
    return out


def write_saelens(path: Path, cfg: dict, t: dict[str, torch.Tensor]) -> Path:
    path.mkdir(parents=True)
    (path / "cfg.json").write_text(json.dumps(cfg))
    save_file(t, str(path / "sae_weights.safetensors"))
    return path


def saelens_v6_cfg(arch: str = "standard", norm: str = "none", **extra: object) -> dict:
    cfg = {
        "d_in": D,
        "d_sae": M,
        "dtype": "float32",
        "device": "cuda",
        "architecture": arch,
        "apply_b_dec_to_input": True,
        "normalize_activations": norm,
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": "6.5.1",
            "sae_lens_training_version": "6.5.1",
            "model_name": "open-clip:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K",
            "model_class_name": "HookedViT",
            "hook_name": "blocks.8.hook_resid_pre",
            "hook_head_index": None,
            "prepend_bos": False,
            "context_size": 50,
            "dataset_path": "imagenet",
            "neuronpedia_id": None,
        },
    }
    cfg.update(extra)
    return cfg


X = torch.randn(4, 5, D, generator=torch.Generator().manual_seed(9)) * 3 + 1


# ----------------------------------------------------------------- SAELens


@pytest.mark.parametrize(
    "arch,norm,extra",
    [
        ("standard", "none", {}),
        ("standard", "layer_norm", {}),
        ("standard", "constant_norm_rescale", {}),
        ("jumprelu", "none", {}),
        ("topk", "layer_norm", {"k": 7, "rescale_acts_by_decoder_norm": False}),
    ],
)
def test_saelens_v6_golden(tmp_path, arch: str, norm: str, extra: dict) -> None:
    cfg = saelens_v6_cfg(arch, norm, **extra)
    t = raw_tensors(threshold=arch == "jumprelu")
    sae = load_sae(write_saelens(tmp_path / "s", cfg, t))
    assert sae.cfg.hook.layer == 8 and sae.cfg.hook.site == "resid_pre"
    assert sae.cfg.d_sae == M and sae.cfg.pre_center
    with torch.no_grad():
        torch.testing.assert_close(sae(X)[0], saelens_forward(cfg, t, X), rtol=1e-5, atol=1e-5)


def test_saelens_pre6_migration(tmp_path) -> None:
    """A flat pre-6.0 config: hook_point, activation_fn_str topk + kwargs, bool normalize,
    apply_b_dec_to_input absent (defaults to true)."""
    cfg = {
        "d_in": D,
        "d_sae": M,
        "dtype": "torch.float32",
        "hook_point": "blocks.3.hook_mlp_out",
        "hook_point_layer": 3,
        "activation_fn_str": "topk",
        "activation_fn_kwargs": {"k": 6},
        "normalize_activations": False,
        "model_name": "gpt2-small",
        "sae_lens_training_version": "3.13.0",
        "some_unknown_key": 1,
    }
    t = raw_tensors(1)
    t["scaling_factor"] = torch.ones(M)  # legacy, all ones: dropped
    sae = load_sae(write_saelens(tmp_path / "old", cfg, t))
    assert (sae.cfg.activation, sae.cfg.k, sae.cfg.pre_center) == ("topk", 6, True)
    assert (sae.cfg.hook.layer, sae.cfg.hook.site) == (3, "mlp_out")
    assert sae.cfg.metadata["saelens_pre_6"] is True
    ref_cfg = {"architecture": "topk", "k": 6, "d_in": D, "apply_b_dec_to_input": True}
    with torch.no_grad():
        torch.testing.assert_close(sae(X)[0], saelens_forward(ref_cfg, t, X), rtol=1e-5, atol=1e-5)


def test_saelens_expected_average_scaling(tmp_path) -> None:
    cfg = saelens_v6_cfg("standard", "expected_average_only_in")
    t = raw_tensors(2)
    d = write_saelens(tmp_path / "s", cfg, t)
    with pytest.raises(CheckpointError, match="no scaling factor"):
        load_sae(d)
    (d / "activation_scaler.json").write_text(json.dumps({"scaling_factor": 0.25}))
    sae = load_sae(d)
    ref = saelens_forward(saelens_v6_cfg(), t, X * 0.25) / 0.25
    with torch.no_grad():
        torch.testing.assert_close(sae(X)[0], ref, rtol=1e-5, atol=1e-5)
    # Written back as SAELens, the factor is folded into the weights (no side file needed).
    out = save_sae(sae, tmp_path / "folded", format="saelens")
    back = load_sae(out)
    assert back.cfg.input_norm == "none"
    with torch.no_grad():
        torch.testing.assert_close(back(X)[0], ref, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- ViT-Prisma


def prisma_cfg(**extra: object) -> dict:
    cfg = {
        "model_class_name": "HookedViT",
        "model_name": "open-clip:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K",
        "hook_point_layer": 11,
        "layer_subtype": "hook_resid_post",
        "hook_point_head_index": None,
        "context_size": 50,
        "use_cached_activations": False,
        "d_in": D,
        "activation_fn_str": "relu",
        "activation_fn_kwargs": {},
        "expansion_factor": M // D,
        "d_sae": 999,  # ignored by Prisma (read M from W_enc)
        "normalize_activations": "layer_norm",
        "cls_token_only": False,
        "use_patches_only": False,
        "image_size": 224,
        "is_transcoder": False,
        "l1_coefficient": 1e-5,
        "lr": 0.0004,
    }
    cfg.update(extra)
    return cfg


@pytest.mark.parametrize(
    "extra,fname",
    [
        ({}, "n_images_2600058.pt"),
        ({"activation_fn_str": "topk", "activation_fn_kwargs": {"k": 5}}, "weights.pt"),
        ({"normalize_activations": "none", "use_patches_only": True}, "weights.pt"),
    ],
)
def test_prisma_golden(tmp_path, extra: dict, fname: str) -> None:
    cfg = prisma_cfg(**extra)
    t = raw_tensors(3)
    d = tmp_path / "prisma"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    torch.save(OrderedDict(t), d / fname)
    sae = load_sae(d)
    assert sae.cfg.d_sae == M and sae.cfg.hook.layer == 11 and sae.cfg.pre_center
    assert sae.cfg.metadata["weights_file"] == fname
    if extra.get("use_patches_only"):
        assert sae.cfg.hook.tokens == "patches"
    with torch.no_grad():
        torch.testing.assert_close(sae(X)[0], prisma_forward(cfg, t, X), rtol=1e-5, atol=1e-5)
    # Our writer produces a folder the Prisma reference reads back identically.
    out = save_sae(sae, tmp_path / "again", format="prisma")
    back_cfg = json.loads((out / "config.json").read_text())
    back_t = torch.load(out / "weights.pt", weights_only=True)
    with torch.no_grad():
        torch.testing.assert_close(
            prisma_forward(back_cfg, back_t, X), sae(X)[0], rtol=1e-5, atol=1e-5
        )


class Payload:
    """Unpickling this would call os.system: the loader must never do it."""

    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("echo pwned > /tmp/steer_pwned",))


class VisionModelSAERunnerConfig:  # stands in for the pickled Prisma config class
    def __init__(self) -> None:
        self.d_in = D


@pytest.mark.parametrize("payload", [Payload(), VisionModelSAERunnerConfig()])
def test_prisma_pickled_code_is_refused(tmp_path, payload: object) -> None:
    d = tmp_path / "evil"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(prisma_cfg()))
    torch.save({"cfg": payload, "state_dict": raw_tensors()}, d / "weights.pt")
    if os.path.exists("/tmp/steer_pwned"):
        os.unlink("/tmp/steer_pwned")
    with pytest.raises(CheckpointError, match="refusing to unpickle") as ei:
        load_sae(d)
    assert "weights.pt" in str(ei.value) and "weights_only" in str(ei.value)
    assert not os.path.exists("/tmp/steer_pwned")


# ----------------------------------------------------------------- our format + writers


@pytest.mark.parametrize("activation,k", [("relu", None), ("jumprelu", None), ("topk", 5)])
def test_our_format_roundtrip_is_exact(tmp_path, activation: str, k: int | None) -> None:
    cfg = SAEConfig(
        d_in=D,
        d_sae=M,
        activation=activation,  # type: ignore[arg-type]
        k=k,
        pre_center=True,
        input_norm="per_token_ln",
    )
    sae = SAE.random(cfg, seed=1, threshold=0.05)
    sae.cfg.metadata["trained_on"] = "synthworld"
    out = save_sae(sae, tmp_path / "s")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "sae.safetensors"]
    back = load_sae(out)
    assert back.cfg == sae.cfg
    assert back.content_hash() == sae.content_hash()
    for name, t in sae.tensors().items():
        assert torch.equal(back.tensors()[name], t), name
    with torch.no_grad():
        assert torch.equal(back(X)[0], sae(X)[0])


def test_our_format_detects_modified_weights(tmp_path) -> None:
    cfg = SAEConfig(d_in=D, d_sae=M)
    save_sae(SAE.random(cfg, seed=1), tmp_path / "a")
    other = SAE.random(cfg, seed=1)
    with torch.no_grad():
        other.b_dec.add_(1.0)
    save_sae(other, tmp_path / "b")
    (tmp_path / "b" / "sae.safetensors").replace(tmp_path / "a" / "sae.safetensors")
    with pytest.raises(CheckpointError, match="content hash mismatch"):
        load_sae(tmp_path / "a")


@pytest.mark.parametrize("activation,k", [("relu", None), ("jumprelu", None), ("topk", 4)])
@pytest.mark.parametrize("norm", ["none", "per_token_ln", "constant_norm_rescale", "scalar"])
def test_roundtrip_every_writer(tmp_path, activation: str, k: int | None, norm: str) -> None:
    cfg = SAEConfig(
        d_in=D,
        d_sae=M,
        activation=activation,  # type: ignore[arg-type]
        k=k,
        pre_center=True,
        input_norm=norm,  # type: ignore[arg-type]
        norm_scale=1.7,
        hook=SAEHook(layer=2, site="attn_out", model="openclip:ViT-B-32@random"),
    )
    sae = SAE.random(cfg, seed=4, threshold=0.05)
    with torch.no_grad():
        ref = sae(X)[0]
    ours = load_sae(save_sae(sae, tmp_path / "ours"))
    assert ours.content_hash() == sae.content_hash()
    lens = load_sae(save_sae(sae, tmp_path / "lens", format="saelens"))
    assert (lens.cfg.hook.layer, lens.cfg.hook.site) == (2, "attn_out")
    assert lens.cfg.activation == activation and lens.cfg.k == k
    with torch.no_grad():
        assert torch.equal(ours(X)[0], ref)
        torch.testing.assert_close(lens(X)[0], ref, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- malformed files


def test_malformed_files(tmp_path) -> None:
    good = write_saelens(tmp_path / "good", saelens_v6_cfg(), raw_tensors())
    # Truncated safetensors.
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    (trunc / "cfg.json").write_text((good / "cfg.json").read_text())
    data = (good / "sae_weights.safetensors").read_bytes()
    (trunc / "sae_weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="sae_weights.safetensors") as ei:
        load_sae(trunc)
    assert "truncated" in str(ei.value)
    # Transposed W_dec.
    t = raw_tensors()
    t["W_dec"] = t["W_dec"].T.contiguous()
    with pytest.raises(CheckpointError, match="'W_dec' has shape") as ei:
        load_sae(write_saelens(tmp_path / "transposed", saelens_v6_cfg(), t))
    assert "transposed" in str(ei.value)
    # Wrong width.
    t = raw_tensors()
    t["b_dec"] = torch.zeros(D + 1)
    with pytest.raises(CheckpointError, match=r"'b_dec' has shape \[17\]"):
        load_sae(write_saelens(tmp_path / "wide", saelens_v6_cfg(), t))
    # NaN.
    t = raw_tensors()
    t["W_enc"][3, 4] = float("nan")
    with pytest.raises(CheckpointError, match="'W_enc' contains 1 NaN/Inf"):
        load_sae(write_saelens(tmp_path / "nan", saelens_v6_cfg(), t))
    # Missing threshold for jumprelu.
    with pytest.raises(CheckpointError, match="'threshold' is missing"):
        load_sae(write_saelens(tmp_path / "nothr", saelens_v6_cfg("jumprelu"), raw_tensors()))
    # Broken JSON.
    bad = tmp_path / "badjson"
    bad.mkdir()
    (bad / "cfg.json").write_text('{"d_in": 16, ')
    (bad / "sae_weights.safetensors").write_bytes(data)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_sae(bad)
    # Truncated Prisma .pt.
    d = tmp_path / "ptrunc"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(prisma_cfg()))
    torch.save(raw_tensors(), d / "weights.pt")
    blob = (d / "weights.pt").read_bytes()
    (d / "weights.pt").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(CheckpointError, match="weights.pt"):
        load_sae(d)
    # Unknown folder, missing path.
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no known SAE format"):
        load_sae(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_sae(tmp_path / "nope")


def test_unsupported_saelens_variants(tmp_path) -> None:
    t = raw_tensors()
    with pytest.raises(CheckpointError, match="gated"):
        load_sae(write_saelens(tmp_path / "g", saelens_v6_cfg("gated"), t))
    cfg = saelens_v6_cfg()
    cfg["metadata"]["hook_name"] = "blocks.3.attn.hook_z"
    with pytest.raises(CheckpointError, match="not a steerable"):
        load_sae(write_saelens(tmp_path / "z", cfg, t))


# ----------------------------------------------------------------- hub + zoo references


def _fake_hf_cache(cache: Path, repo: str, files: dict[str, bytes]) -> None:
    """The on-disk layout huggingface_hub uses: models--org--name/{refs/main,snapshots/<sha>/}."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(sha)
    for rel, data in files.items():
        p = root / "snapshots" / sha / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def test_hf_reference_from_cache_and_offline(tmp_path) -> None:
    src = write_saelens(tmp_path / "src", saelens_v6_cfg(), raw_tensors())
    files = {f"layer_8/{p.name}": p.read_bytes() for p in src.iterdir()}
    cache = tmp_path / "hub"
    _fake_hf_cache(cache, "Prisma-Multimodal/test-saes", files)
    sae = load_sae("hf:Prisma-Multimodal/test-saes/layer_8", cache_dir=str(cache))
    ref = load_sae(src)
    assert sae.content_hash() == ref.content_hash()
    with pytest.raises(OfflineError, match="Prisma-Multimodal/missing") as ei:
        load_sae("hf:Prisma-Multimodal/missing/x", cache_dir=str(cache), allow_download=False)
    assert "hf download Prisma-Multimodal/missing --include 'x/*'" in str(ei.value)
    with pytest.raises(SteerError, match="not a Hugging Face repo"):
        load_sae("hf:justone", allow_download=False)


def test_zoo_reference_errors_clearly() -> None:
    with pytest.raises(SteerError, match="zoo:sae/L<layer>/resid_post"):
        load_sae("zoo:sae/seven")


def test_saelens_writer_keeps_token_scope_and_topk_rescale_is_folded(tmp_path) -> None:
    """Without sae-lens: the token scope survives our SAELens writer, and a TopK cfg with
    rescale_acts_by_decoder_norm matches SAELens' formula (rank pre·n, decode (a/n)·W_dec)."""
    cfg = SAEConfig(d_in=D, d_sae=M, hook=SAEHook(layer=2, site="resid_post", tokens="cls"))
    save_sae(SAE.random(cfg, seed=4), tmp_path / "w", format="saelens")
    assert load_sae(tmp_path / "w").cfg.hook.tokens == "cls"
    t = raw_tensors(6)
    n = 0.3 + 2 * torch.rand(M, generator=torch.Generator().manual_seed(1))
    t["W_dec"] = t["W_dec"] * n[:, None]
    t["W_dec"][5] = 0.0  # a dead latent: zero decoder row
    sae = load_sae(
        write_saelens(
            tmp_path / "t", saelens_v6_cfg("topk", k=6, rescale_acts_by_decoder_norm=True), t
        )
    )
    norms = t["W_dec"].norm(dim=-1)
    pre = (X - t["b_dec"]) @ t["W_enc"] + t["b_enc"]
    v, i = (pre * norms).topk(6, dim=-1)
    a_ref = torch.zeros_like(pre).scatter(-1, i, torch.relu(v))
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    out_ref = (a_ref / safe) @ t["W_dec"] + t["b_dec"]
    with torch.no_grad():
        a = sae.encode(X)
        torch.testing.assert_close(a, a_ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(sae.decode(a), out_ref, rtol=1e-5, atol=1e-6)
