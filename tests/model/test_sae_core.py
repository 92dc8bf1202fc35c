"""The canonical SAE: encode/decode maths, sparse helpers, normalisation, hashing."""

from __future__ import annotations

import math

import pytest
import torch

from steerlang.model.sae.core import SAE, SAEConfig, SAEHook

ARCHS = [
    ("relu", {}),
    ("jumprelu", {}),
    ("topk", {"k": 5}),
]
NORMS = ["none", "scalar", "per_token_ln", "constant_norm_rescale"]


def _sae(activation: str, norm: str = "none", pre_center: bool = True, **kw: object) -> SAE:
    cfg = SAEConfig(
        d_in=12,
        d_sae=40,
        activation=activation,  # type: ignore[arg-type]
        pre_center=pre_center,
        input_norm=norm,  # type: ignore[arg-type]
        norm_scale=0.7,
        hook=SAEHook(layer=3),
        **kw,  # type: ignore[arg-type]
    )
    return SAE.random(cfg, seed=1, threshold=0.05)


def _reference_encode(sae: SAE, x: torch.Tensor) -> torch.Tensor:
    """Independent re-statement of the SAELens / ViT-Prisma encode (docs/runtime.md)."""
    cfg = sae.cfg
    if cfg.input_norm == "scalar":
        x = x * cfg.norm_scale
    elif cfg.input_norm == "per_token_ln":
        mu = x.mean(-1, keepdim=True)
        std = (x - mu).std(-1, keepdim=True)
        x = (x - mu) / (std + 1e-5)
    elif cfg.input_norm == "constant_norm_rescale":
        x = x * math.sqrt(cfg.d_in) / x.norm(dim=-1, keepdim=True)
    if cfg.pre_center:
        x = x - sae.b_dec
    pre = x @ sae.W_enc + sae.b_enc
    if cfg.activation == "relu":
        return pre.clamp_min(0)
    if cfg.activation == "jumprelu":
        return torch.where(pre > sae.threshold, pre, torch.zeros_like(pre)).clamp_min(0)
    out = torch.zeros_like(pre)
    v, i = pre.topk(cfg.k, dim=-1)  # type: ignore[arg-type]
    return out.scatter(-1, i, v.clamp_min(0))


def _reference_decode(sae: SAE, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    cfg = sae.cfg
    y = a @ sae.W_dec + sae.b_dec
    if cfg.input_norm == "scalar":
        return y / cfg.norm_scale
    if cfg.input_norm == "per_token_ln":
        mu = x.mean(-1, keepdim=True)
        std = (x - mu).std(-1, keepdim=True)
        return y * std + mu  # the libraries undo it with sigma, not sigma + eps
    if cfg.input_norm == "constant_norm_rescale":
        return y * x.norm(dim=-1, keepdim=True) / math.sqrt(cfg.d_in)
    return y


@pytest.mark.parametrize("arch,kw", ARCHS)
@pytest.mark.parametrize("norm", NORMS)
def test_forward_matches_reference(arch: str, kw: dict, norm: str) -> None:
    sae = _sae(arch, norm, **kw)
    x = torch.randn(3, 7, 12) * 2 + 0.5
    with torch.no_grad():
        x_hat, a = sae(x)
        ref_a = _reference_encode(sae, x)
        torch.testing.assert_close(a, ref_a, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(x_hat, _reference_decode(sae, ref_a, x), rtol=1e-5, atol=1e-5)
    assert (a > 0).any() and (a == 0).any()  # the test SAE is genuinely sparse
    if arch == "topk":
        assert int((a > 0).sum(-1).max()) <= 5


@pytest.mark.parametrize("arch,kw", ARCHS)
@pytest.mark.parametrize("norm", NORMS)
def test_subset_encode_and_delta_decode_are_exact(arch: str, kw: dict, norm: str) -> None:
    sae = _sae(arch, norm, **kw)
    x = torch.randn(2, 5, 12)
    idx = [0, 3, 17, 39]
    with torch.no_grad():
        a, ctx = sae.encode_with_ctx(x)
        torch.testing.assert_close(sae.encode_subset(x, idx), a[..., idx], rtol=1e-5, atol=1e-6)
        delta = torch.randn(2, 5, len(idx))
        a2 = a.clone()
        a2[..., idx] += delta
        full = sae.decode(a2, ctx) - sae.decode(a, ctx)
        torch.testing.assert_close(sae.decode_delta(delta, idx, ctx), full, rtol=1e-4, atol=1e-5)


def test_normalize_decoder_keeps_function_for_relu() -> None:
    sae = _sae("jumprelu")
    with torch.no_grad():
        sae.W_dec.mul_(torch.linspace(0.5, 3.0, 40)[:, None])
        x = torch.randn(4, 12)
        before = sae(x)[0]
        norms = sae.normalize_decoder_()
        after = sae(x)[0]
    assert norms.shape == (40,)
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(40))
    torch.testing.assert_close(before, after, rtol=1e-5, atol=1e-5)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="topk SAE needs"):
        SAEConfig(d_in=4, d_sae=8, activation="topk")
    with pytest.raises(ValueError):
        SAEConfig(d_in=4, d_sae=8, dtype="int8")
    assert SAEConfig(d_in=4, d_sae=8, dtype="torch.bfloat16").torch_dtype == torch.bfloat16


def test_content_hash_tracks_maths_not_metadata() -> None:
    sae = _sae("relu")
    h0 = sae.content_hash()
    sae.cfg.metadata["trained_on"] = "synthworld"
    assert sae.content_hash() == h0
    with torch.no_grad():
        sae.b_enc[0] += 1
    assert sae.content_hash() != h0


def test_bf16_sae_encodes() -> None:
    cfg = SAEConfig(d_in=12, d_sae=40, dtype="bfloat16")
    sae = SAE.random(cfg)
    assert sae.W_enc.dtype == torch.bfloat16
    with torch.no_grad():
        x_hat, a = sae(torch.randn(3, 12))
    assert x_hat.dtype == torch.bfloat16 and a.shape == (3, 40)
