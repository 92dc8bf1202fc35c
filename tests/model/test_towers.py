"""Vision towers beyond open_clip's own ViT: timm ViTs (SigLIP), Hugging Face CLIP / SigLIP, the
OpenAI QuickGELU weights, refused towers and reference aliases (steerlang/model/towers.py)."""

from __future__ import annotations

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from steerlang.errors import CheckpointError, OfflineError, SteerError
from steerlang.facts import SITE_KINDS, model_depth, model_has_cls
from steerlang.model.clip import load_model, random_clip
from steerlang.model.hooks import steer
from steerlang.model.refs import resolve_alias
from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
from steerlang.model.sites import capture
from steerlang.plan import FeatureEdit, InterventionPlan, SitePlan


def _register_tiny_siglip() -> str:
    """A tiny timm VisionTransformer built the way timm builds SigLIP's (no class token,
    attention-pool head), as an open_clip model config."""
    import timm
    from timm.models import register_model
    from timm.models.vision_transformer import VisionTransformer

    if "vit_steer_test_siglip" not in timm.list_models("vit_steer_test_siglip"):

        @register_model
        def vit_steer_test_siglip(pretrained: bool = False, **kw: object) -> VisionTransformer:
            kw = {"global_pool": "map", **kw}
            for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
                kw.pop(key, None)
            return VisionTransformer(
                img_size=32,
                patch_size=8,
                embed_dim=32,
                depth=3,
                num_heads=4,
                class_token=False,
                **kw,  # type: ignore[arg-type]
            )

    return "vit_steer_test_siglip"


@pytest.fixture(scope="module")
def siglip():
    timm_name = _register_tiny_siglip()
    cfg = {
        "embed_dim": 32,
        "custom_text": True,
        "vision_cfg": {
            "image_size": 32,
            "timm_model_name": timm_name,
            "timm_model_pretrained": False,
            "timm_pool": "map",
            "timm_proj": "none",
        },
        "text_cfg": {
            "context_length": 16,
            "vocab_size": 100,
            "width": 32,
            "heads": 2,
            "layers": 1,
            "hf_tokenizer_name": "timm/ViT-B-16-SigLIP",
            "no_causal_mask": True,
            "pool_type": "last",
            "proj_bias": True,
        },
    }
    return random_clip(cfg, seed=1)


PIX = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_timm_siglip_tower_sites(siglip) -> None:
    h = siglip
    assert (h.n_layers, h.width, h.grid_size, h.n_tokens, h.has_cls) == (3, 32, (4, 4), 16, False)
    trunk = h.model.visual.trunk
    names = [f"blocks.{layer}.hook_{k}" for layer in range(3) for k in SITE_KINDS]
    with torch.no_grad(), capture(h, names) as cap:
        acts = cap.run(PIX)
        # timm's own intermediate residual stream, block by block
        x = trunk.patch_embed(PIX)
        x = trunk._pos_embed(x)
        x = trunk.norm_pre(x)
        for layer, blk in enumerate(trunk.blocks):
            assert torch.equal(acts[f"blocks.{layer}.hook_resid_pre"], x)
            a = blk.ls1(blk.attn(blk.norm1(x)))
            assert torch.equal(acts[f"blocks.{layer}.hook_attn_out"], a)
            x = blk(x)
            assert torch.equal(acts[f"blocks.{layer}.hook_resid_post"], x)
    assert acts["blocks.0.hook_resid_post"].shape == (2, 16, 32)


def test_no_cls_scopes(siglip) -> None:
    with pytest.raises(SteerError, match="no CLS token"):
        with capture(siglip, ["blocks.1.hook_resid_post"], tokens="cls"):
            pass
    with torch.no_grad(), capture(siglip, ["blocks.1.hook_resid_post"], tokens="patches") as c:
        got = c.run(PIX)["blocks.1.hook_resid_post"]
    assert got.shape[1] == 16  # every token is a patch
    # Steering a no-CLS tower: patches = every token; cls refused.
    cfg = SAEConfig(d_in=32, d_sae=64, hook=SAEHook(layer=1, site="resid_post"))
    sae = SAE.random(cfg, seed=2)

    def plan(tokens: object) -> InterventionPlan:
        sp = SitePlan(
            layer=1,
            site="resid_post",
            sae="x",
            edits=[
                FeatureEdit(feature=3, op="clamp", value=5.0, tokens=tokens, rule="r", rule_index=0)  # type: ignore[arg-type]
            ],
        )
        return InterventionPlan(recipe="t", model="m", sites=[sp])

    with torch.no_grad():
        base = siglip.encode_image(PIX)
        with steer(siglip, plan("patches"), {(1, "resid_post"): sae}):
            steered = siglip.encode_image(PIX)
    assert not torch.allclose(base, steered)
    with pytest.raises(SteerError, match="no CLS token"):
        with steer(siglip, plan("cls"), {(1, "resid_post"): sae}):
            pass


def test_siglip_loads_a_local_checkpoint_without_its_tokenizer(
    siglip, tmp_path, monkeypatch
) -> None:
    """A SigLIP-style model (its text side needs a Hugging Face tokenizer) loads from a local
    checkpoint without building the tokenizer: it is built on the first text encode."""
    calls: list[str] = []
    monkeypatch.setattr(open_clip, "get_tokenizer", lambda n, *a, **k: calls.append(n) or 1 / 0)
    name = siglip.ref.removeprefix("openclip:").split("@")[0]
    path = tmp_path / "siglip.safetensors"
    save_file({k: v.contiguous() for k, v in siglip.model.state_dict().items()}, str(path))
    h = load_model(f"openclip:{name}@{path}")
    assert calls == [] and not h.has_cls
    assert torch.equal(h.encode_image(PIX), siglip.encode_image(PIX))
    with pytest.raises(OfflineError, match="hf download timm/ViT-B-16-SigLIP"):
        h.encode_text(["a bird"])
    assert calls == [name]
    # the language side's facts for the real SigLIP names
    assert model_has_cls("openclip:ViT-B-16-SigLIP@webli") is False
    assert model_depth("openclip:ViT-B-16-SigLIP@webli") == 12
    assert model_has_cls("openclip:ViT-B-32@openai") is True


@pytest.mark.parametrize("name", ["RN50", "convnext_base", "EVA02-B-16"])
def test_unsupported_towers_are_named(name: str) -> None:
    with pytest.raises(SteerError, match=f"open_clip model {name} has a") as ei:
        load_model(f"openclip:{name}@random")
    assert "SigLIP" in str(ei.value) and "hf:" in str(ei.value)


# ----------------------------------------------------------------- QuickGELU (OpenAI weights)


def test_openai_tag_uses_quick_gelu_bit_for_bit(tmp_path) -> None:
    """openclip:ViT-B-32@openai from a local HF cache == open_clip's own QuickGELU model on the
    same file (weights written by open_clip, random, no download)."""
    src = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None)
    repo = "timm/vit_base_patch32_clip_224.openai"
    sha = "0123456789abcdef0123456789abcdef01234567"
    root = tmp_path / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(sha)
    snap = root / "snapshots" / sha
    snap.mkdir(parents=True)
    wfile = snap / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(wfile))
    del src
    h = load_model("openclip:ViT-B-32@openai", allow_download=False, cache_dir=str(tmp_path))
    acts = {type(b.mlp.gelu).__name__ for b in h.model.visual.transformer.resblocks}
    assert acts == {"QuickGELU"}
    ref = open_clip.create_model("ViT-B-32", pretrained=str(wfile), force_quick_gelu=True).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = h.model.encode_image(x)
        theirs = ref.encode_image(x)
    assert torch.equal(ours, theirs)


def test_checkpoint_folder_is_named(tmp_path) -> None:
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "open_clip_model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is a folder") as ei:
        load_model(f"openclip:ViT-B-32@{tmp_path / 'ck'}")
    assert "open_clip_model.safetensors" in str(ei.value)


# ----------------------------------------------------------------- aliases


def test_hub_aliases() -> None:
    want = "openclip:ViT-B-32@datacomp_xl_s13b_b90k"
    assert resolve_alias("hf-hub:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K") == want
    assert resolve_alias("open-clip:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K") == want
    assert resolve_alias("openclip:hf-hub:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K") == want
    assert resolve_alias("zoo:tiny-clip") == "zoo:tiny-clip"
    with pytest.raises(SteerError, match="no open_clip pretrained tag uses the repo"):
        resolve_alias("hf-hub:someone/not-a-clip")
    with pytest.raises(SteerError, match="ORG/NAME"):
        resolve_alias("hf-hub:justone")
    with pytest.raises(OfflineError):  # the alias resolves, then the weights are not cached
        load_model(
            "hf-hub:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K",
            allow_download=False,
            cache_dir="/nonexistent-steer-cache",
        )


# ----------------------------------------------------------------- Hugging Face transformers

transformers = pytest.importorskip("transformers", reason="transformers is not installed")


@pytest.mark.parametrize("kind,has_cls", [("clip", True), ("siglip", False)])
def test_hf_towers_match_hidden_states(tmp_path, kind: str, has_cls: bool) -> None:
    from steerlang.model.hf_clip import random_hf_clip

    hf = random_hf_clip(kind, seed=3)
    hf.save_pretrained(tmp_path / kind)
    h = load_model(f"hf:{tmp_path / kind}", allow_download=False)
    assert (h.n_layers, h.width, h.grid_size, h.has_cls) == (3, 32, (4, 4), has_cls)
    assert h.n_tokens == 16 + int(has_cls)
    act = h.model.hf.config.vision_config.hidden_act
    assert act == ("quick_gelu" if kind == "clip" else "gelu_pytorch_tanh")
    names = [f"blocks.{layer}.hook_{k}" for layer in range(3) for k in SITE_KINDS]
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = h.model.hf.vision_model(pixel_values=x, output_hidden_states=True)
        with capture(h, names) as cap:
            acts = cap.run(x)
    hs = out.hidden_states
    assert len(hs) == 4
    for layer in range(3):
        torch.testing.assert_close(
            acts[f"blocks.{layer}.hook_resid_pre"], hs[layer], rtol=0, atol=0
        )
        torch.testing.assert_close(
            acts[f"blocks.{layer}.hook_resid_post"], hs[layer + 1], rtol=0, atol=0
        )
        # the two branches add up to the block's update
        delta = acts[f"blocks.{layer}.hook_attn_out"] + acts[f"blocks.{layer}.hook_mlp_out"]
        torch.testing.assert_close(delta, hs[layer + 1] - hs[layer], rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        emb = h.encode_image(x)
        ref = hf.get_image_features(pixel_values=x)
        ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
    torch.testing.assert_close(emb, torch.nn.functional.normalize(ref, dim=-1))


def test_hf_reference_errors(tmp_path) -> None:
    with pytest.raises(OfflineError, match="hf download steer-test/missing"):
        load_model("hf:steer-test/missing", allow_download=False, cache_dir=str(tmp_path))


def test_steerability_sweep_refuses_other_towers_clearly(siglip) -> None:
    from steerlang.pipeline.steerability import SteerabilityError, SuffixRunner

    with pytest.raises(SteerabilityError, match="open_clip ViT towers"):
        SuffixRunner(siglip, 1, "resid_post")


def test_feature_card_heat_maps_cover_every_patch_without_cls(siglip) -> None:
    """On a CLS-less tower every token is a patch: the statistics pass keeps each top image's
    map over all 16 tokens (not none because 16 - 1 is no square, nor the first patch dropped),
    and the card lays token 4·i + j at grid cell (i, j)."""
    from types import SimpleNamespace

    import numpy as np

    from steerlang.pipeline.feature_cards import feature_card
    from steerlang.pipeline.statistics import StatsSpec, compute_statistics
    from steerlang.pipeline.stats_pass import new_gallery
    from steerlang.pipeline.topk import patch_grid

    assert (siglip.n_tokens, siglip.prefix_tokens) == (16, 0)
    assert patch_grid(siglip.n_tokens, siglip.prefix_tokens) == 4
    sae = SAE.random(SAEConfig(d_in=32, d_sae=64, hook=SAEHook(layer=1, site="resid_post")), seed=2)
    saes = {(1, "resid_post"): sae}
    spec = StatsSpec(1, "resid_post", "patches")
    k = 3
    gallery = new_gallery(SimpleNamespace(handle=siglip, saes=saes, device="cpu"), spec, k)
    assert (gallery.n_patches, gallery.prefix_tokens) == (16, 0)
    pixels = torch.randn(7, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    batches = [(np.arange(0, 4), pixels[:4]), (np.arange(4, 7), pixels[4:])]
    compute_statistics(siglip, saes, [spec], batches, {}, pooling="mean", galleries={spec: gallery})
    with torch.inference_mode(), capture(siglip, [(1, "resid_post")]) as cap:
        a = sae.encode(cap.run(pixels)["blocks.1.hook_resid_post"]).double()
    pooled = a.mean(dim=1).numpy()  # `patches` = every token here
    fired = [f for f in range(sae.d_sae) if pooled[:, f].max() > 0]
    assert fired
    for f in fired:
        rows = np.lexsort((np.arange(7), -pooled[:, f]))[:k]
        got = gallery.top(f)
        assert [r for r, _, _ in got] == rows.tolist()
        for r, _, patch_map in got:
            # maps come at the statistics cache's float16 precision (RunningTopK.top)
            np.testing.assert_allclose(patch_map, a[r, :, f].numpy(), rtol=2**-11, atol=1e-6)

    class Views:
        def source(self, row: int) -> str:
            return f"img{row}.png"

        def label(self, row: int) -> str:
            return ""

        def pixels(self, row: int) -> np.ndarray:
            return np.zeros((32, 32, 3), dtype=np.uint8)

    f = max(fired, key=lambda f: pooled[:, f].max())
    card = feature_card(1, "resid_post", f, table=None, gallery=gallery, views=Views())  # type: ignore[arg-type]
    assert card.grid == 4 and card.images
    best = card.images[0]
    assert best.patch_map is not None and best.patch_map.shape == (4, 4)
    tokens = a[best.row, :, f].numpy()
    for i in range(4):
        for j in range(4):
            assert best.patch_map[i, j] == pytest.approx(tokens[4 * i + j], rel=2**-11, abs=1e-6)
