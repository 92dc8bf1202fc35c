"""The shipped zoo: weights load, fit the size budget, and reproduce the model card's numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from steerlang.zoo import load_zoo_clip, zoo_clip_path, zoo_sae_dir, zoo_weights_dir
from steerlang.zoo.model import CARD_FILE, N_LAYERS
from steerlang.zoo.world import SynthWorld

pytestmark = pytest.mark.skipif(
    not zoo_clip_path().is_file(), reason="zoo weights not built (steer zoo build)"
)


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((zoo_weights_dir() / CARD_FILE).read_text())


@pytest.fixture(scope="module")
def zoo() -> tuple:
    import torch

    torch.set_num_threads(1)
    return load_zoo_clip("cpu")


def test_shipped_weights_fit_25_mb() -> None:
    files = [p for p in zoo_weights_dir().rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert total <= 25_000_000, f"{total / 1e6:.1f} MB"
    assert zoo_clip_path().stat().st_size <= 10_000_000


def test_an_sae_per_layer_loads() -> None:
    from steerlang.model.sae.load import load_sae

    for layer in range(N_LAYERS):
        sae = load_sae(zoo_sae_dir(layer, "resid_post"))
        assert sae.d_in == 128 and sae.cfg.hook.layer == layer
        # per-token standardised, as the ViT-Prisma suite (docs/zoo.md)
        assert sae.cfg.input_norm == "per_token_ln"


def test_the_celeba_domain_sae_loads_by_its_reference(
    card: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    from steerlang.model.sae.load import load_sae

    sae = load_sae("zoo:sae/celeba/L7/resid_post")
    assert (sae.cfg.activation, sae.cfg.k, sae.d_sae) == ("topk", 21, 1024)
    assert (sae.cfg.hook.layer, sae.cfg.hook.site, sae.cfg.hook.tokens) == (
        7,
        "resid_post",
        "patches",
    )
    assert sae.cfg.input_norm == "per_token_ln"
    from steerlang.cli import main

    assert main(["zoo", "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["domain_saes"] == ["zoo:sae/celeba/L7/resid_post"]
    dom = card["domain_saes"]["celeba"]
    assert dom["images"] == 3000 and dom["metrics"]["l0_patches"] == 21.0


def test_waterbirds_numbers_match_the_card(zoo: tuple, card: dict) -> None:
    from steerlang.training.zoo import evaluate

    model, _, tok = zoo
    m = evaluate.waterbirds(model, tok, SynthWorld(card["seed"]), "test")
    documented = card["zero_shot"]["waterbirds_test"]
    # 400 test images: one image is 0.0025 of average accuracy, 0.01 of a group's
    assert m["average"] == pytest.approx(documented["average"], abs=0.0051)
    assert m["per_group"] == pytest.approx(documented["per_group"], abs=0.021)
    # the shortcut the zoo exists to show
    assert m["average"] - m["worst_group"] >= 0.20


def test_typographic_numbers_match_the_card(zoo: tuple, card: dict) -> None:
    from steerlang.training.zoo import evaluate

    model, _, tok = zoo
    m = evaluate.typographic(model, tok, SynthWorld(card["seed"]))
    documented = card["zero_shot"]["typographic"]
    for key in ("clean_accuracy", "attacked_accuracy"):
        assert m[key] == pytest.approx(documented[key], abs=0.0085)  # 240 images: 2 images
    assert m["clean_accuracy"] - m["attacked_accuracy"] >= 0.30


def test_preprocess_path_agrees_with_arrays(zoo: tuple) -> None:
    """The model sees the same pixels through open_clip's preprocess as in training."""
    import torch

    from steerlang.training.zoo.train import to_model_input
    from steerlang.zoo.splits import images_array, waterbirds_records

    model, preprocess, _ = zoo
    recs = waterbirds_records(SynthWorld(0))[:4]
    a = torch.stack([preprocess(r["image"]) for r in recs])
    b = to_model_input(images_array([r["image"] for r in recs]))
    assert torch.allclose(a, b, atol=1e-6)
    with torch.no_grad():
        assert np.isfinite(model.encode_image(a).numpy()).all()


def test_background_suppression_fixes_the_shortcut(zoo: tuple) -> None:
    """Issue 5's bar: worst-group accuracy +10 points, average accuracy down at most 5."""
    from steerlang.model.sae.load import load_sae
    from steerlang.training.zoo import phenomena

    model, _, tok = zoo
    r = phenomena.waterbirds_fix(model, tok, SynthWorld(0), load_sae(zoo_sae_dir(7)), 7, 0.3)
    b, s = r["baseline"], r["steered"]
    assert s["worst_group"] - b["worst_group"] >= 0.10
    assert s["average"] >= b["average"] - 0.05
    assert r["n_water"] > 0 and r["n_land"] > 0


def test_text_suppression_defends_against_the_written_word(zoo: tuple) -> None:
    """Issue 5's bar: at least half of the attack's drop recovered, clean accuracy down ≤ 5."""
    from steerlang.model.sae.load import load_sae
    from steerlang.training.zoo import phenomena

    model, _, tok = zoo
    r = phenomena.typographic_defence(model, tok, SynthWorld(0), load_sae(zoo_sae_dir(3)), 3, 0.2)
    b, s = r["baseline"], r["steered"]
    assert b["clean_accuracy"] - b["attacked_accuracy"] >= 0.30
    assert r["recovered"] >= 0.5
    assert s["clean_accuracy"] >= b["clean_accuracy"] - 0.05
