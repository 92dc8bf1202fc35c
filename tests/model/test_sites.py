"""Site names, site hooks and activation capture on real open_clip architectures."""

from __future__ import annotations

import pytest
import torch

from steerlang.errors import SteerError
from steerlang.model.clip import TINY_CONFIG, random_clip
from steerlang.model.sites import capture, parse_site, resolve_visual, token_mask
from steerlang.plan import SiteRef


@pytest.fixture(scope="module")
def tiny():
    return random_clip(TINY_CONFIG, seed=0)


@pytest.fixture(scope="module")
def tiny_lnd():
    return random_clip(TINY_CONFIG, seed=0, batch_first=False)


def test_parse_site_names() -> None:
    assert parse_site("blocks.7.hook_resid_post") == SiteRef(layer=7, site="resid_post")
    assert parse_site("blocks.0.hook_attn_out") == SiteRef(layer=0, site="attn_out")
    assert parse_site("3:mlp_out") == SiteRef(layer=3, site="mlp_out")
    assert parse_site((2, "resid_pre")).hook_name == "blocks.2.hook_resid_pre"
    with pytest.raises(SteerError, match="cannot parse site"):
        parse_site("blocks.7.hook_resid_mid")
    with pytest.raises(SteerError, match="unknown site kind"):
        parse_site((1, "resid"))


def test_token_mask() -> None:
    assert token_mask("cls", 5).tolist() == [True, False, False, False, False]
    assert token_mask("patches", 5).tolist() == [False, True, True, True, True]
    assert token_mask([1, 3], 5).tolist() == [False, True, False, True, False]
    with pytest.raises(SteerError, match="out of range"):
        token_mask([9], 5)


def _manual_sites(model, x: torch.Tensor, layer: int) -> dict[str, torch.Tensor]:
    """Recompute the four sites of one block from its submodules (batch-first math)."""
    v = model.visual
    h = v.conv1(x).flatten(2).transpose(1, 2)
    cls = v.class_embedding.expand(h.shape[0], 1, -1)
    h = v.ln_pre(torch.cat([cls, h], dim=1) + v.positional_embedding)
    for i, blk in enumerate(v.transformer.resblocks):
        a = blk.ls_1(
            blk.attention(blk.ln_1(h))
            if v.transformer.batch_first
            else blk.attention(blk.ln_1(h).transpose(0, 1)).transpose(0, 1)
        )
        mid = h + a
        m = blk.ls_2(blk.mlp(blk.ln_2(mid)))
        post = mid + m
        if i == layer:
            return {"resid_pre": h, "attn_out": a, "mlp_out": m, "resid_post": post}
        h = post
    raise AssertionError


@pytest.mark.parametrize("layout", ["tiny", "tiny_lnd"])
def test_capture_matches_manual_forward(layout: str, request) -> None:
    handle = request.getfixturevalue(layout)
    x = torch.randn(3, 3, 32, 32)
    sites = [f"blocks.4.hook_{k}" for k in ("resid_pre", "attn_out", "mlp_out", "resid_post")]
    with torch.no_grad(), capture(handle, sites) as cap:
        handle.model.encode_image(x)
    with torch.no_grad():
        ref = _manual_sites(handle.model, x, 4)  # outside: it calls the hooked modules too
    for kind, t in ref.items():
        got = cap[f"blocks.4.hook_{kind}"]
        assert got.shape == (3, 17, 64), kind
        torch.testing.assert_close(got, t, rtol=1e-5, atol=1e-5)
    # resid_post of block l is resid_pre of block l+1, exactly.
    with torch.no_grad(), capture(handle, ["blocks.4.hook_resid_post", (5, "resid_pre")]) as cap:
        out = cap.run(x)
    assert torch.equal(out["blocks.4.hook_resid_post"], out["blocks.5.hook_resid_pre"])


def test_batch_first_and_seq_first_capture_agree(tiny, tiny_lnd) -> None:
    x = torch.randn(2, 3, 32, 32)
    sites = [(0, "resid_pre"), (6, "attn_out"), (11, "resid_post")]
    with torch.no_grad(), capture(tiny, sites) as a, capture(tiny_lnd, sites) as b:
        ra, rb = a.run(x), b.run(x)
        ea, eb = tiny.encode_image(x), tiny_lnd.encode_image(x)
    torch.testing.assert_close(ea, eb, rtol=1e-5, atol=1e-5)
    for k in ra:
        assert rb[k].shape == ra[k].shape == (2, 17, 64)
        assert rb[k].is_contiguous()
        torch.testing.assert_close(ra[k], rb[k], rtol=1e-5, atol=1e-5)


def test_token_scopes_and_stop_early(tiny) -> None:
    x = torch.randn(2, 3, 32, 32)
    site = "blocks.2.hook_resid_post"
    with torch.no_grad(), capture(tiny, [site]) as cap:
        full = cap.run(x)[site]
    with torch.no_grad(), capture(tiny, [site], tokens="cls") as cap:
        assert torch.equal(cap.run(x)[site], full[:, :1])
    with torch.no_grad(), capture(tiny, [site], tokens="patches") as cap:
        assert torch.equal(cap.run(x)[site], full[:, 1:])

    # stop_early: later blocks never run (a hook on the last block must not fire).
    fired: list[int] = []
    h = tiny.model.visual.transformer.resblocks[11].register_forward_hook(
        lambda *a: fired.append(1)
    )
    try:
        with torch.no_grad(), capture(tiny, [site], stop_early=True) as cap:
            for _ in range(2):
                assert torch.equal(cap.run(x)[site], full)
        assert fired == []
        # Raw style: the context swallows the stop signal itself.
        with torch.no_grad(), capture(tiny, [site], stop_early=True) as cap:
            tiny.model.encode_image(x)
        assert torch.equal(cap[site], full) and fired == []
    finally:
        h.remove()


def test_capture_hooks_removed_and_errors(tiny) -> None:
    visual = resolve_visual(tiny)
    blocks = visual.transformer.resblocks

    def n_hooks() -> int:
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in blocks.modules())

    before = n_hooks()
    with pytest.raises(RuntimeError, match="boom"), capture(tiny, [(1, "mlp_out")]):
        assert n_hooks() == before + 1
        raise RuntimeError("boom")
    assert n_hooks() == before
    with pytest.raises(SteerError, match="layer 12 does not exist"):
        with capture(tiny, ["blocks.12.hook_resid_post"]):
            pass
    assert n_hooks() == before


def test_vit_b32_architecture_sites() -> None:
    handle = random_clip("ViT-B-32", seed=0)
    assert (handle.n_layers, handle.width, handle.n_tokens, handle.image_size) == (12, 768, 50, 224)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad(), capture(handle, ["blocks.7.hook_resid_post"], stop_early=True) as cap:
        act = cap.run(x)["blocks.7.hook_resid_post"]
    assert act.shape == (1, 50, 768)
