"""SAE training: recovery of planted dictionaries, decoder/encoder constraints, TopK/AuxK,
schedules and determinism."""

from __future__ import annotations

import math

import pytest
import torch

from steerlang.training.activations import TensorTokens
from steerlang.training.sae_metrics import reconstruction_metrics
from steerlang.training.trainer import (
    TrainConfig,
    _auxk_loss,
    geometric_median,
    init_sae,
    lr_at,
    train_sae,
)

FAST = {"steps": 400, "batch_tokens": 128, "lr": 3e-3, "warmup_steps": 30, "expansion": 4}


def _recovered(atoms: torch.Tensor, w_dec: torch.Tensor) -> torch.Tensor:
    """Per planted atom, the best cosine with any decoder row."""
    return (atoms @ torch.nn.functional.normalize(w_dec, dim=1).T).max(1).values


def test_topk_recovers_planted_dictionary(planted: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, atoms = planted
    sae, metrics = train_sae(x[:5000], TrainConfig(arch="topk", k=3, **FAST))
    held = reconstruction_metrics(sae, x[5000:])
    assert held.fvu < 0.1
    assert held.l0 == 3.0  # TopK: exactly k latents per token
    cos = _recovered(atoms, sae.W_dec.detach())
    assert (cos > 0.9).float().mean() >= 0.9
    assert metrics.steps == 400 and metrics.tokens_seen == 400 * 128


def test_relu_l1_recovers_planted_dictionary(planted: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, atoms = planted
    sae, _ = train_sae(x[:5000], TrainConfig(arch="relu", l1=0.1, **FAST))
    held = reconstruction_metrics(sae, x[5000:])
    assert held.fvu < 0.1
    assert held.l0 < 16  # sparse: well below d_sae = 96 and below d = 24
    cos = _recovered(atoms, sae.W_dec.detach())
    assert (cos > 0.9).float().mean() >= 0.9


def test_l1_trades_reconstruction_for_sparsity(planted: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = planted
    cfg = {**FAST, "steps": 200}
    weak, _ = train_sae(x[:5000], TrainConfig(arch="relu", l1=0.01, **cfg))
    strong, _ = train_sae(x[:5000], TrainConfig(arch="relu", l1=0.4, **cfg))
    mw, ms = reconstruction_metrics(weak, x[5000:]), reconstruction_metrics(strong, x[5000:])
    assert ms.l0 < mw.l0
    assert ms.fvu > mw.fvu


def test_decoder_rows_stay_unit_norm_and_scale_is_recorded(
    planted: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, _ = planted
    sae, _ = train_sae(x[:4000], TrainConfig(arch="relu", l1=0.1, **{**FAST, "steps": 50}))
    norms = sae.W_dec.detach().norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    # input scaled so the mean token norm is sqrt(d); the scale lives in the SAE config
    assert sae.cfg.input_norm == "scalar"
    mean_norm = float(x.norm(dim=1).mean())
    assert sae.cfg.norm_scale == pytest.approx(math.sqrt(24) / mean_norm, rel=0.02)
    assert sae.cfg.pre_center


def test_init_encoder_is_decoder_transpose_and_b_dec_is_median() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2000, 8, generator=g) + torch.tensor([5.0] + [0.0] * 7)
    cfg = TrainConfig(expansion=2, normalize_input=False, b_dec_init="mean")
    sae, info = init_sae(TensorTokens(x), cfg)
    assert torch.equal(sae.W_enc.detach(), sae.W_dec.detach().T)
    assert torch.all(sae.b_enc.detach() == 0)
    assert torch.allclose(sae.b_dec.detach(), x.mean(0), atol=1e-5)
    assert info["norm_scale"] == 1.0


def test_geometric_median_resists_outliers() -> None:
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [100.0, 100.0]])
    gm = geometric_median(pts)
    # the mean is dragged to (20.4, 20.4); the median stays inside the unit square
    assert float(gm.max()) < 1.0 and float(gm.min()) > 0.0
    sym = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert torch.allclose(geometric_median(sym), torch.zeros(2, dtype=torch.float64), atol=1e-6)


def test_lr_schedule_warmup_then_cosine() -> None:
    cfg = TrainConfig(lr=1.0, warmup_steps=10, steps=110, min_lr_frac=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)  # halfway through the cosine
    assert lr_at(110, cfg) == pytest.approx(0.1)
    lrs = [lr_at(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_training_is_seeded(planted: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = planted
    cfg = TrainConfig(arch="topk", k=3, **{**FAST, "steps": 20})
    a, _ = train_sae(x[:2000], cfg)
    b, _ = train_sae(x[:2000], cfg)
    c, _ = train_sae(x[:2000], cfg.model_copy(update={"seed": 1}))
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != c.content_hash()


def test_auxk_gives_dead_latents_a_gradient() -> None:
    """Latents that do not fire get no gradient from the TopK reconstruction; AuxK gives the
    dead ones (and only those) a gradient."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 16, generator=g)  # 16 tokens x k=2 cannot reach all 64 latents
    sae, _ = init_sae(TensorTokens(x), TrainConfig(arch="topk", k=2, d_sae=64))
    pre = sae.pre_activation(x)
    f = sae.activate(pre)
    xn, _ = sae.normalize(x)
    err = f @ sae.W_dec + sae.b_dec - xn
    err.pow(2).sum(-1).mean().backward()
    silent = (f > 0).sum(0) == 0
    assert silent.any()
    assert torch.all(sae.W_dec.grad[silent] == 0)
    sae.zero_grad()
    dead = silent.clone()
    dead[:8] = True  # pretend these have not fired for a whole window either
    aux = _auxk_loss(sae, sae.pre_activation(x), dead, err.detach(), xn, 8)
    aux.backward()
    rows = sae.W_dec.grad.abs().sum(1)
    assert torch.all(rows[~dead] == 0)  # AuxK touches dead latents only
    assert (rows[dead] > 0).sum() >= 8


def _subspace_data(n: int, seed: int) -> torch.Tensor:
    """Sparse tokens living in the first 8 of 32 dimensions (96 atoms, 3 per token)."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.zeros(96, 32)
    atoms[:, :8] = torch.randn(96, 8, generator=g)
    atoms = torch.nn.functional.normalize(atoms, dim=1)
    idx = torch.rand(n, 96, generator=g).argsort(1)[:, :3]
    coef = torch.zeros(n, 96).scatter(1, idx, 0.5 + 1.5 * torch.rand(n, 3, generator=g))
    return coef @ atoms


def test_auxk_turns_dead_latents_toward_the_data() -> None:
    """Latents initialised mostly outside the data's subspace die; with AuxK their decoder rows
    are pulled into the subspace (towards the residual), without it they stay where they died.
    (On this planted data AuxK does not lower the final dead fraction: see docs/training.md.)"""
    x = _subspace_data(4000, seed=0)
    base = {"arch": "topk", "k": 3, "d_sae": 64, "steps": 200, "batch_tokens": 128}
    base |= {"lr": 3e-3, "warmup_steps": 20, "dead_window_tokens": 128 * 20}
    inside = {}
    for coef in (0.0, 1 / 32):
        sae, metrics = train_sae(x, TrainConfig(aux_coef=coef, **base))
        fired = sae.encode(x[:3000]) > 0
        dead = fired.sum(0) == 0
        assert dead.sum() >= 8  # the scenario does produce dead latents
        inside[coef] = float(sae.W_dec.detach()[dead][:, :8].norm(dim=1).mean())
        logged_aux = [h["aux"] for h in metrics.history]
        assert (max(logged_aux) > 0) == (coef > 0)
    assert inside[1 / 32] > inside[0.0] + 0.1


def test_train_site_saes_one_pass_many_layers(tiny_clip, tiny_pixels) -> None:  # noqa: ANN001
    from steerlang.training.trainer import train_site_saes

    passes = [0]
    hook = tiny_clip.model.visual.register_forward_pre_hook(
        lambda _m, _a: passes.__setitem__(0, passes[0] + 1)
    )
    try:
        out = train_site_saes(
            tiny_clip,
            [(1, "resid_post"), (4, "resid_post")],
            tiny_pixels[:32],
            TrainConfig(arch="topk", k=4, expansion=2, steps=20, batch_tokens=64),
            eval_source=tiny_pixels[32:],
            eval_labels=[i % 2 for i in range(16)],
            classes=["cat", "dog"],
            batch_size=32,
            model_ref="zoo:tiny-clip",
        )
    finally:
        hook.remove()
    # 1 training pass (32 images) + 1 clean eval pass + 2 sites x 3 splice modes
    assert passes[0] == 1 + 1 + 6
    assert list(out) == ["blocks.1.hook_resid_post", "blocks.4.hook_resid_post"]
    for name, t in out.items():
        assert t.sae.cfg.hook.hook_name == name and t.sae.cfg.hook.model == "zoo:tiny-clip"
        assert t.metrics is not None and t.metrics.recon.l0 == pytest.approx(4.0)
        meta = t.sae.cfg.metadata
        assert meta["metrics"]["splice"]["n_images"] == 16
        assert meta["training"]["config"]["k"] == 4


def test_per_token_standardisation_trains_in_the_saes_own_units() -> None:
    """`input_norm="per_token_ln"` (the ViT-Prisma suite's normalisation): the SAE stores that
    mode with no global scale, b_dec starts at the mean of the standardised tokens, and the
    trained SAE reconstructs tokens whose scales differ by 100× equally well (a scalar norm
    could not)."""
    g = torch.Generator().manual_seed(5)
    atoms = torch.nn.functional.normalize(torch.randn(16, 12, generator=g), dim=1)
    codes = torch.relu(torch.randn(4000, 16, generator=g)) * (
        torch.rand(4000, 16, generator=g) < 0.2
    )
    scales = torch.where(torch.arange(4000) % 2 == 0, 1.0, 100.0)[:, None]
    noise = 0.05 * torch.randn(4000, 12, generator=g)  # no constant token (σ = 0)
    x = (codes @ atoms + 0.3 + noise) * scales
    cfg = TrainConfig(input_norm="per_token_ln", b_dec_init="mean", **FAST)
    sae, info = init_sae(TensorTokens(x), cfg)
    assert sae.cfg.input_norm == "per_token_ln" and info["norm_scale"] == 1.0
    xc = x.double() - x.double().mean(1, keepdim=True)
    standardised = xc / (xc.std(1, keepdim=True) + 1e-5)
    sample = TensorTokens(x).sample(cfg.init_tokens, torch.Generator().manual_seed(cfg.seed))
    sc = sample.double() - sample.double().mean(1, keepdim=True)
    expected = (sc / (sc.std(1, keepdim=True) + 1e-5)).mean(0)
    assert torch.allclose(sae.b_dec.detach().double(), expected, atol=1e-5)
    assert standardised.std(1).mean() == pytest.approx(1.0, abs=1e-3)
    trained, _ = train_sae(TensorTokens(x), cfg)
    small, large = x[::2][:500], x[1::2][:500]
    fvu = [reconstruction_metrics(trained, part).fvu for part in (small, large)]
    assert fvu[0] < 0.5 and fvu[1] < 0.5
    assert fvu[1] == pytest.approx(fvu[0], rel=0.2)
