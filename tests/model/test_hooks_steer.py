"""Interventions: exact semantics, fast path == naive splice, hook hygiene, precision."""

from __future__ import annotations

import math

import pytest
import torch

from steerlang.errors import SteerError
from steerlang.facts import SITE_KINDS
from steerlang.model.clip import TINY_CONFIG, random_clip
from steerlang.model.hooks import steer
from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
from steerlang.model.sites import capture
from steerlang.plan import FeatureEdit, InterventionPlan, SitePlan

ARCHS = [("relu", None), ("jumprelu", None), ("topk", 8)]


@pytest.fixture(scope="module")
def tiny():
    return random_clip(TINY_CONFIG, seed=0)


@pytest.fixture(scope="module")
def tiny_lnd():
    return random_clip(TINY_CONFIG, seed=0, batch_first=False)


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def make_sae(
    layer: int,
    site: str = "resid_post",
    activation: str = "relu",
    k: int | None = None,
    norm: str = "per_token_ln",
    d_sae: int = 96,
    seed: int = 0,
    d_in: int = 64,
) -> SAE:
    cfg = SAEConfig(
        d_in=d_in,
        d_sae=d_sae,
        activation=activation,  # type: ignore[arg-type]
        k=k,
        pre_center=True,
        input_norm=norm,  # type: ignore[arg-type]
        norm_scale=0.5,
        hook=SAEHook(layer=layer, site=site),  # type: ignore[arg-type]
    )
    return SAE.random(cfg, seed=seed, threshold=0.02)


def edit(f: int, op: str, value: float | None = None, tokens: object = "all") -> FeatureEdit:
    return FeatureEdit(feature=f, op=op, value=value, tokens=tokens, rule="r", rule_index=0)  # type: ignore[arg-type]


def plan_of(*sites: SitePlan) -> InterventionPlan:
    return InterventionPlan(recipe="t", model="m", sites=list(sites))


def site_plan(layer: int, site: str, edits: list[FeatureEdit]) -> SitePlan:
    return SitePlan(layer=layer, site=site, sae="mem", edits=edits)  # type: ignore[arg-type]


def rich_edits(active: list[int]) -> list[FeatureEdit]:
    """Every op, mixed token scopes, one feature edited twice (composition in order)."""
    f = active
    return [
        edit(f[0], "suppress"),
        edit(f[1], "clamp", 3.0, "patches"),
        edit(f[2], "scale", 2.5),
        edit(f[3], "add", 1.5, "cls"),
        edit(f[4], "mean_ablate", 0.7),
        edit(f[5], "scale", 0.5, [0, 2, 5]),
        edit(f[5], "add", -0.25, "patches"),
    ]


def embed(handle, pixels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return handle.model.encode_image(pixels, normalize=False)


def active_features(handle, sae: SAE, layer: int, site: str, pixels: torch.Tensor) -> list[int]:
    with torch.no_grad(), capture(handle, [(layer, site)]) as cap:
        h = cap.run(pixels)[f"blocks.{layer}.hook_{site}"]
        a = sae.encode(h)
    freq = (a > 0).float().mean(dim=(0, 1))
    order = torch.argsort(freq, descending=True)
    return [int(i) for i in order[:6]]


def n_hooks(handle) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) for m in handle.model.visual.modules()
    )


# ------------------------------------------------------------------------ exactness


def test_empty_plan_is_bit_identical(tiny, pixels) -> None:
    base = embed(tiny, pixels)
    sae = make_sae(3)
    for plan in (plan_of(), plan_of(site_plan(3, "resid_post", []))):
        with steer(tiny, plan, {(3, "resid_post"): sae}) as s:
            assert s.n_hooks == 0
            assert torch.equal(embed(tiny, pixels), base)
    with steer(tiny, None, {}):
        assert torch.equal(embed(tiny, pixels), base)


@pytest.mark.parametrize("site", SITE_KINDS)
@pytest.mark.parametrize("arch,k", ARCHS)
def test_fast_equals_full_splice(tiny, pixels, site: str, arch: str, k: int | None) -> None:
    layer = 5
    sae = make_sae(layer, site, arch, k)
    feats = active_features(tiny, sae, layer, site, pixels)
    plan = plan_of(site_plan(layer, site, rich_edits(feats)))
    base = embed(tiny, pixels)
    with steer(tiny, plan, {(layer, site): sae}, mode="fast") as s:
        assert s.n_hooks == 1
        fast = embed(tiny, pixels)
    with steer(tiny, plan, {(layer, site): sae}, mode="full"):
        full = embed(tiny, pixels)
    torch.testing.assert_close(fast, full, rtol=1e-4, atol=1e-4)
    # The edit takes effect (guards the cancelled-edit bug: error taken from the edited recon).
    assert (fast - base).abs().max() > 1e-2
    assert torch.equal(embed(tiny, pixels), base)  # and is gone afterwards


@pytest.mark.parametrize("norm", ["none", "scalar", "per_token_ln", "constant_norm_rescale"])
@pytest.mark.parametrize("arch,k", ARCHS)
def test_site_delta_is_exactly_the_edit(tiny, pixels, norm: str, arch: str, k: int | None) -> None:
    """h' - h == denorm((v - a_f) W_dec[f]) at the site, per token, independently computed."""
    layer, site = 4, "resid_post"
    sae = make_sae(layer, site, arch, k, norm=norm)
    f = active_features(tiny, sae, layer, site, pixels)[0]
    name = f"blocks.{layer}.hook_{site}"
    with torch.no_grad(), capture(tiny, [name], stop_early=True) as cap:
        h = cap.run(pixels)[name]
    plan = plan_of(site_plan(layer, site, [edit(f, "clamp", 4.0, "patches")]))
    with torch.no_grad(), steer(tiny, plan, {(layer, site): sae}):
        with capture(tiny, [name], stop_early=True) as cap:  # registered after: sees the edit
            h2 = cap.run(pixels)[name]
    with torch.no_grad():
        a = sae.encode(h)[..., f]
        if norm == "per_token_ln":
            mu = h.mean(-1, keepdim=True)
            s = (h - mu).std(-1, keepdim=True)  # sigma, no eps, when mapping back
        elif norm == "scalar":
            s = torch.full_like(h[..., :1], 1 / 0.5)
        elif norm == "constant_norm_rescale":
            s = h.norm(dim=-1, keepdim=True) / math.sqrt(64)
        else:
            s = torch.ones_like(h[..., :1])
        expect = (4.0 - a)[..., None] * sae.W_dec[f] * s
        expect[:, 0] = 0  # CLS is outside the scope
    torch.testing.assert_close(h2 - h, expect, rtol=1e-4, atol=1e-5)
    assert torch.equal(h2[:, 0], h[:, 0])  # untouched tokens are bit-identical
    assert (h2 - h).abs().max() > 1e-2


@pytest.mark.parametrize("arch,k", ARCHS)
def test_suppress_inactive_feature_changes_nothing(tiny, pixels, arch: str, k: int | None) -> None:
    layer, site = 6, "mlp_out"
    sae = make_sae(layer, site, arch, k)
    with torch.no_grad():
        sae.b_enc[7] = -1e4  # feature 7 can never fire
    base = embed(tiny, pixels)
    plan = plan_of(site_plan(layer, site, [edit(7, "suppress"), edit(7, "scale", 3.0, "cls")]))
    for mode in ("fast", "full"):
        with steer(tiny, plan, {(layer, site): sae}, mode=mode) as s:  # type: ignore[arg-type]
            assert s.n_hooks == 1
            out = embed(tiny, pixels)
        if mode == "fast":
            assert torch.equal(out, base)
        else:  # the naive splice adds and subtracts reconstructions: equal up to rounding
            torch.testing.assert_close(out, base, rtol=1e-5, atol=1e-5)


def test_multiple_sites_and_batch_first_layouts(tiny, tiny_lnd, pixels) -> None:
    saes = {(2, "attn_out"): make_sae(2, "attn_out"), (9, "resid_pre"): make_sae(9, "resid_pre")}
    plan = plan_of(
        site_plan(2, "attn_out", [edit(1, "clamp", 2.0), edit(5, "suppress")]),
        site_plan(9, "resid_pre", [edit(3, "scale", 3.0, "cls"), edit(4, "add", 1.0)]),
    )
    results = {}
    for name, handle in (("nld", tiny), ("lnd", tiny_lnd)):
        for mode in ("fast", "full"):
            with steer(handle, plan, saes, mode=mode) as s:  # type: ignore[arg-type]
                assert s.n_hooks == 2
                results[name, mode] = embed(handle, pixels)
    ref = results["nld", "full"]
    for key, val in results.items():
        torch.testing.assert_close(val, ref, rtol=1e-4, atol=1e-4, msg=str(key))
    assert (ref - embed(tiny, pixels)).abs().max() > 1e-2


def test_split_site_plans_merge_into_one_hook(tiny, pixels) -> None:
    sae = make_sae(3)
    one = plan_of(site_plan(3, "resid_post", [edit(1, "clamp", 2.0), edit(2, "suppress")]))
    two = plan_of(
        site_plan(3, "resid_post", [edit(1, "clamp", 2.0)]),
        site_plan(3, "resid_post", [edit(2, "suppress")]),
    )
    with steer(tiny, one, {(3, "resid_post"): sae}):
        a = embed(tiny, pixels)
    with steer(tiny, two, {"blocks.3.hook_resid_post": sae}) as s:
        assert s.n_hooks == 1
        b = embed(tiny, pixels)
    assert torch.equal(a, b)


# ------------------------------------------------------------------------ hook hygiene


def test_hooks_removed_after_exception_in_forward(tiny, pixels) -> None:
    base = embed(tiny, pixels)
    before = n_hooks(tiny)
    sae = make_sae(3)
    plan = plan_of(site_plan(3, "resid_post", [edit(1, "clamp", 5.0)]))
    boom = tiny.model.visual.transformer.resblocks[8].register_forward_hook(
        lambda *a: (_ for _ in ()).throw(RuntimeError("boom in block 8"))
    )
    try:
        with pytest.raises(RuntimeError, match="boom in block 8"):
            with steer(tiny, plan, {(3, "resid_post"): sae}):
                assert n_hooks(tiny) == before + 2
                embed(tiny, pixels)
    finally:
        boom.remove()
    assert n_hooks(tiny) == before
    assert torch.equal(embed(tiny, pixels), base)
    # A bad input shape also raises inside the forward: still no leak.
    with pytest.raises(RuntimeError), steer(tiny, plan, {(3, "resid_post"): sae}):
        embed(tiny, torch.randn(1, 3, 40, 40))
    assert n_hooks(tiny) == before


def test_nested_and_interleaved_plans(tiny, pixels) -> None:
    base = embed(tiny, pixels)
    sa, sb = make_sae(3), make_sae(7, seed=1)
    pa = plan_of(site_plan(3, "resid_post", [edit(1, "clamp", 5.0)]))
    pb = plan_of(site_plan(7, "resid_post", [edit(2, "clamp", -3.0), edit(4, "scale", 4.0)]))
    saes = {(3, "resid_post"): sa, (7, "resid_post"): sb}
    with steer(tiny, pa, saes):
        only_a = embed(tiny, pixels)
    with steer(tiny, pb, saes):
        only_b = embed(tiny, pixels)
    with steer(tiny, pa, saes):
        with steer(tiny, pb, saes):
            both = embed(tiny, pixels)
        assert torch.equal(embed(tiny, pixels), only_a)
    assert torch.equal(embed(tiny, pixels), base)
    assert not torch.equal(both, only_a) and not torch.equal(both, only_b)
    # Non-LIFO exit: closing A first leaves B's hook alone.
    ca, cb = steer(tiny, pa, saes), steer(tiny, pb, saes)
    ca.__enter__()
    cb.__enter__()
    ca.__exit__(None, None, None)
    assert torch.equal(embed(tiny, pixels), only_b)
    cb.__exit__(None, None, None)
    assert torch.equal(embed(tiny, pixels), base)
    # Same site twice: the inner plan sees the outer plan's output.
    pa2 = plan_of(site_plan(3, "resid_post", [edit(2, "suppress")]))
    with steer(tiny, pa, saes), steer(tiny, pa2, saes) as s:
        assert s.n_hooks == 1
        assert not torch.equal(embed(tiny, pixels), only_a)
    assert torch.equal(embed(tiny, pixels), base)


# ------------------------------------------------------------------------ validation


def test_plan_validation_errors(tiny) -> None:
    sae = make_sae(3)
    saes = {(3, "resid_post"): sae}
    cases = [
        (plan_of(site_plan(3, "resid_post", [edit(500, "suppress")])), saes, "out of range"),
        (plan_of(site_plan(3, "resid_post", [edit(1, "clamp")])), saes, "has no value"),
        (plan_of(site_plan(3, "resid_post", [edit(1, "mean_ablate")])), saes, "has no value"),
        (plan_of(site_plan(4, "resid_post", [edit(1, "suppress")])), saes, "no SAE given"),
        (
            plan_of(site_plan(4, "resid_post", [edit(1, "suppress")])),
            {(4, "resid_post"): sae},
            "trained on blocks.3.hook_resid_post",
        ),
        (
            plan_of(site_plan(3, "resid_post", [edit(1, "suppress", tokens=[40])])),
            saes,
            "out of range for 17 tokens",
        ),
    ]
    before = n_hooks(tiny)
    for plan, s, msg in cases:
        with pytest.raises(SteerError, match=msg), steer(tiny, plan, s):
            pass
        assert n_hooks(tiny) == before
    sp = site_plan(3, "resid_post", [edit(1, "suppress")])
    sp.d_sae = 10
    with pytest.raises(SteerError, match="latents"), steer(tiny, plan_of(sp), saes):
        pass
    sp.d_sae, sp.sae_hash = None, "sha256:0"
    with pytest.raises(SteerError, match="content hash"), steer(tiny, plan_of(sp), saes):
        pass
    sp.sae_hash = sae.content_hash()
    with steer(tiny, plan_of(sp), saes) as s:
        assert s.n_hooks == 1


# ------------------------------------------------------------------------ precision / devices


def test_bf16_autocast_and_half_model(tiny, pixels) -> None:
    layer, site = 5, "resid_post"
    sae = make_sae(layer, site, "topk", 8)
    feats = active_features(tiny, sae, layer, site, pixels)
    plan = plan_of(site_plan(layer, site, rich_edits(feats)))
    with steer(tiny, plan, {(layer, site): sae}):
        ref = embed(tiny, pixels)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = embed(tiny, pixels)
    base = embed(tiny, pixels)
    assert got.dtype == torch.bfloat16
    err = (got.float() - ref).norm() / ref.norm()
    moved = (ref - base).norm() / ref.norm()
    assert err < 0.05 < moved  # bf16 rounding is far smaller than the edit itself

    # A bf16 SAE is computed in fp32 inside the hook: same answer as its fp32 copy.
    sae16 = SAE.random(sae.cfg.model_copy(update={"dtype": "bfloat16"}), seed=0)
    sae32 = SAE.random(sae.cfg, seed=0)
    with torch.no_grad():
        for n, t in sae16.tensors().items():
            sae32.tensors()[n].copy_(t.float())
    with steer(tiny, plan, {(layer, site): sae16}):
        a = embed(tiny, pixels)
    with steer(tiny, plan, {(layer, site): sae32}):
        b = embed(tiny, pixels)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_fast_equals_full(pixels, dtype: torch.dtype) -> None:
    handle = random_clip(TINY_CONFIG, seed=0, device="cuda")
    layer, site = 5, "resid_post"
    for arch, k in ARCHS:
        sae = make_sae(layer, site, arch, k)  # stays on CPU: the hook copies what it needs
        feats = active_features(random_clip(TINY_CONFIG, seed=0), sae, layer, site, pixels)
        plan = plan_of(site_plan(layer, site, rich_edits(feats)))
        x = pixels.cuda()
        outs = []
        for mode in ("fast", "full"):
            with steer(handle, plan, {(layer, site): sae}, mode=mode):  # type: ignore[arg-type]
                with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
                    outs.append(embed(handle, x).float())
        tol = 1e-4 if dtype == torch.float32 else 5e-2
        torch.testing.assert_close(outs[0], outs[1], rtol=tol, atol=tol)


def test_vit_b32_fast_equals_full() -> None:
    handle = random_clip("ViT-B-32", seed=0)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    for arch, k in (("relu", None), ("topk", 8)):  # jumprelu: covered on the tiny model
        sae = make_sae(7, "resid_post", arch, k, d_sae=512, d_in=768)
        plan = plan_of(site_plan(7, "resid_post", rich_edits(list(range(0, 60, 10)))))
        outs = {}
        for mode in ("fast", "full"):
            with steer(handle, plan, {(7, "resid_post"): sae}, mode=mode):  # type: ignore[arg-type]
                outs[mode] = embed(handle, x)
        torch.testing.assert_close(outs["fast"], outs["full"], rtol=1e-4, atol=1e-4)


def test_topk_membership_without_full_sort() -> None:
    """The group-maximum bound + direct rank count agrees with torch.topk membership."""
    from steerlang.model.hooks import SiteEditor

    sae = make_sae(1, d_sae=1024, activation="topk", k=16)
    sp = site_plan(1, "resid_post", [edit(i, "suppress") for i in range(0, 1024, 9)])
    ed = SiteEditor(sp, sp.edits, sae, mode="fast", device=torch.device("cpu"), n_tokens=17)
    g = torch.Generator().manual_seed(0)
    full = torch.randn(300, 1024, generator=g)
    full[:50] *= 0.01  # flat rows: many latents close to the threshold
    full[50:60, ed.idx[:20]] += 4.0  # edited latents certainly in the top-k
    sub = full.index_select(1, ed.idx)
    tau = torch.topk(full, 16, dim=-1).values[:, -1:]
    expect = sub >= tau
    got = ed._topk_member(full, sub)
    assert torch.equal(got, expect)
    assert expect.sum() > 30 and (~expect).sum() > 1000


def test_topk_wide_sae_fast_equals_full(tiny, pixels) -> None:
    layer, site = 5, "resid_post"
    sae = make_sae(layer, site, "topk", 8, d_sae=1024)  # 16 groups of 64: exercises the bound
    feats = active_features(tiny, sae, layer, site, pixels)
    plan = plan_of(site_plan(layer, site, rich_edits(feats)))
    outs = {}
    for mode in ("fast", "full"):
        with steer(tiny, plan, {(layer, site): sae}, mode=mode):  # type: ignore[arg-type]
            outs[mode] = embed(tiny, pixels)
    torch.testing.assert_close(outs["fast"], outs["full"], rtol=1e-4, atol=1e-4)
    assert (outs["fast"] - embed(tiny, pixels)).abs().max() > 1e-2


# ------------------------------------------------------------------------ finite or fail


def _rule_edit(f: int, op: str, value: float | None, rule: str) -> FeatureEdit:
    return FeatureEdit(feature=f, op=op, value=value, rule=rule, rule_index=0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("op", "value", "norm", "shown"),
    [
        ("clamp", 1e308, "per_token_ln", "1e+308"),
        ("add", math.inf, "per_token_ln", "inf"),
        ("scale", 1e39, "none", "1e+39"),
        ("mean_ablate", math.nan, "none", "nan"),
        ("add", 3e38, "scalar", "3e+38"),  # fits float32, but times the output scale 2 does not
    ],
)
def test_values_beyond_float32_are_refused_before_any_forward(
    tiny, op: str, value: float, norm: str, shown: str
) -> None:
    sae = make_sae(3, norm=norm)
    plan = plan_of(site_plan(3, "resid_post", [_rule_edit(1, op, value, "huge")]))
    before = n_hooks(tiny)
    with pytest.raises(SteerError) as e, steer(tiny, plan, {(3, "resid_post"): sae}):
        pass
    msg = str(e.value)
    assert "rule huge" in msg and "blocks.3.hook_resid_post" in msg and shown in msg, msg
    if op == "mean_ablate":
        assert "statistics cache" in (e.value.help or "")
    assert n_hooks(tiny) == before


def test_a_value_that_overflows_inside_the_model_is_blamed_on_its_rule(tiny, pixels) -> None:
    from steerlang.model.hooks import blame_non_finite

    saes = {(3, "resid_post"): make_sae(3), (7, "resid_post"): make_sae(7, seed=1)}
    plan = plan_of(
        site_plan(3, "resid_post", [_rule_edit(1, "scale", 2.0, "mild")]),
        site_plan(
            7,
            "resid_post",
            [_rule_edit(2, "clamp", 1e30, "huge"), _rule_edit(3, "suppress", None, "huge")],
        ),
    )
    with torch.inference_mode(), steer(tiny, plan, saes):
        out = tiny.encode_image(pixels)
    assert not bool(torch.isfinite(out).all())  # the attack: 1e30 fits float32, the model not

    err = blame_non_finite(tiny, plan, saes, lambda: tiny.encode_image(pixels))
    msg = str(err)
    assert "rule huge at blocks.7.hook_resid_post" in msg and "1e+30" in msg, msg
    assert "2 edits" in msg


def test_non_finite_only_from_rules_together_names_them_all(tiny, pixels) -> None:
    from steerlang.model.hooks import blame_non_finite

    saes = {(3, "resid_post"): make_sae(3), (7, "resid_post"): make_sae(7, seed=1)}
    plan = plan_of(
        site_plan(3, "resid_post", [_rule_edit(1, "add", 4.0, "a")]),
        site_plan(7, "resid_post", [_rule_edit(2, "add", 5.0, "b")]),
    )

    def forward() -> torch.Tensor:  # non-finite only while both rules' hooks are installed
        out = tiny.encode_image(pixels)
        return out * math.inf if n_hooks(tiny) >= 2 else out

    err = blame_non_finite(tiny, plan, saes, forward)
    msg = str(err)
    assert "no rule does it alone" in msg and "a at blocks.3" in msg and "b at blocks.7" in msg
    assert "rule b's add of feature 2 with value 5" in msg, msg
