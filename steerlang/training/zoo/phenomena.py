"""The zoo's steering phenomena, measured with its SAEs through the runtime's hooks.

Two interventions from the paper, on the zoo CLIP:

- **Background shortcut.** Per SAE feature at one layer, the Pearson correlation of its pooled
  (mean over all tokens) activation with the background on the group-balanced Waterbirds val
  split; suppress every feature with |corr| > thr (water or land features) and measure test
  accuracy per group.
- **Typographic defence.** Per feature, the correlation with "a word is written on the image"
  over the shapes train split, clean and attacked copies; suppress features above thr and
  measure clean and attacked test accuracy.

Statistics are computed on the unsteered model, as `steer run` does. These are the numbers
`docs/zoo.md` reports; `steer run` on the recipes measures the same kind of edits end to end.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steerlang.zoo.world import BIRD_TYPES, SHAPES, SynthWorld


def pooled_codes(model: Any, sae: Any, layer: int, images: np.ndarray, batch: int = 256) -> Any:
    """SAE codes at blocks.{layer}.hook_resid_post, mean over all tokens: [N, d_sae]."""
    import torch

    from steerlang.training.zoo.train import to_model_input

    grabbed: list[Any] = []
    block = model.visual.transformer.resblocks[layer]
    handle = block.register_forward_hook(lambda m, i, o: grabbed.append(o))
    dev = next(model.parameters()).device
    out = []
    try:
        with torch.no_grad():
            for s in range(0, len(images), batch):
                grabbed.clear()
                model.encode_image(to_model_input(images[s : s + batch], str(dev)))
                out.append(sae.encode(grabbed[0].to(sae.device)).mean(1).cpu())
    finally:
        handle.remove()
    return torch.cat(out)


def correlation(codes: Any, concept: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of codes [N, M] with a binary concept [N]."""
    f = codes.double().numpy()
    c = concept.astype(np.float64)
    fc = f - f.mean(0)
    cc = c - c.mean()
    denom = np.sqrt((fc**2).sum(0) * (cc**2).sum()) + 1e-12
    return (fc * cc[:, None]).sum(0) / denom


def suppress_plan(layer: int, features: list[int], sae_ref: str) -> list[Any]:
    from steerlang.plan import FeatureEdit, SitePlan

    edits = [
        FeatureEdit(feature=int(f), op="suppress", rule="zoo_check", rule_index=0) for f in features
    ]
    return [SitePlan(layer=layer, site="resid_post", sae=sae_ref, edits=edits)]


def _steered_predict(
    model: Any, sae: Any, layer: int, feats: list[int], images: np.ndarray, text: Any
) -> np.ndarray:
    from steerlang.model.hooks import steer
    from steerlang.training.zoo.evaluate import predict

    plan = suppress_plan(layer, feats, f"zoo:sae/L{layer}/resid_post")
    with steer(model, plan, {(layer, "resid_post"): sae}):
        return predict(model, images, text)


def waterbirds_fix(
    model: Any,
    tokenizer: Any,
    world: SynthWorld,
    sae: Any,
    layer: int,
    thr: float = 0.3,
    stats_split: str = "val",
) -> dict[str, Any]:
    from steerlang.training.zoo.evaluate import group_metrics, predict, text_classifier
    from steerlang.zoo.splits import images_array, waterbirds_records

    recs = waterbirds_records(world)
    st = [r for r in recs if r["split"] == stats_split]
    te = [r for r in recs if r["split"] == "test"]
    place = np.array([r["place"] for r in st])
    corr = correlation(
        pooled_codes(model, sae, layer, images_array([r["image"] for r in st])), place
    )
    feats = [int(i) for i in np.flatnonzero(np.abs(corr) > thr)]
    x = images_array([r["image"] for r in te])
    y = np.array([r["y"] for r in te])
    g = 2 * y + np.array([r["place"] for r in te])
    text = text_classifier(model, tokenizer, list(BIRD_TYPES))
    base = group_metrics(predict(model, x, text), y, g)
    steered = group_metrics(_steered_predict(model, sae, layer, feats, x, text), y, g)
    return {
        "layer": layer,
        "threshold": thr,
        "stats_split": stats_split,
        "n_features": len(feats),
        "n_water": int((corr > thr).sum()),
        "n_land": int((corr < -thr).sum()),
        "baseline": base,
        "steered": steered,
    }


def typographic_defence(
    model: Any, tokenizer: Any, world: SynthWorld, sae: Any, layer: int, thr: float = 0.3
) -> dict[str, Any]:
    from steerlang.training.zoo.evaluate import predict, text_classifier
    from steerlang.zoo.splits import images_array, typographic_records

    train = typographic_records(world, "train")
    stats_images = images_array([r["clean"] for r in train] + [r["image"] for r in train])
    written = np.r_[np.zeros(len(train)), np.ones(len(train))]
    corr = correlation(pooled_codes(model, sae, layer, stats_images), written)
    feats = [int(i) for i in np.flatnonzero(corr > thr)]
    test = typographic_records(world, "test")
    y = np.array([SHAPES.index(r["label"]) for r in test])
    clean = images_array([r["clean"] for r in test])
    attacked = images_array([r["image"] for r in test])
    text = text_classifier(model, tokenizer, list(SHAPES))
    out: dict[str, Any] = {"layer": layer, "threshold": thr, "n_features": len(feats)}
    for name, fn in (
        ("baseline", lambda x: predict(model, x, text)),
        ("steered", lambda x: _steered_predict(model, sae, layer, feats, x, text)),
    ):
        out[name] = {
            "clean_accuracy": float((fn(clean) == y).mean()),
            "attacked_accuracy": float((fn(attacked) == y).mean()),
        }
    b, s = out["baseline"], out["steered"]
    drop = b["clean_accuracy"] - b["attacked_accuracy"]
    out["recovered"] = (
        (s["attacked_accuracy"] - b["attacked_accuracy"]) / drop if drop > 0 else None
    )
    return out
