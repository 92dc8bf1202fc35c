"""Plain-torch measurements of the zoo model's phenomena (for the model card and the build).

Zero-shot classification with "a photo of a {}." prompts, on the evaluation splits of
`steerlang.zoo.splits`: Waterbirds-style per-group accuracy (average vs worst group), the
typographic attack (clean vs a written wrong class word), and CelebA-style per-group accuracy.
These use the model directly; `steer run` measures the same things through the runtime.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steerlang.model.zero_shot import DEFAULT_TEMPLATE, class_embeddings, zero_shot_logits
from steerlang.zoo.world import BIRD_TYPES, SHAPES, SynthWorld


def text_classifier(
    model: Any, tokenizer: Any, classes: list[str], template: str = DEFAULT_TEMPLATE
) -> Any:
    """Class embeddings [C, E] from the open_clip model's text tower, one prompt per class."""
    dev = next(model.parameters()).device
    return class_embeddings(
        lambda texts: model.encode_text(tokenizer(texts).to(dev), normalize=True),
        classes,
        (template,),
    )


def predict(model: Any, images: np.ndarray, text: Any, batch: int = 256) -> np.ndarray:
    """argmax over classes of cosine(image, class text), images uint8 [N, H, W, 3]."""
    import torch

    from steerlang.training.zoo.train import to_model_input

    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch):
            f = model.encode_image(to_model_input(images[s : s + batch], str(dev)), normalize=True)
            out.append(zero_shot_logits(f, text).argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def group_metrics(
    pred: np.ndarray, y: np.ndarray, groups: np.ndarray, n_groups: int = 4
) -> dict[str, Any]:
    correct = pred == y
    per = [
        float(correct[groups == g].mean()) if (groups == g).any() else float("nan")
        for g in range(n_groups)
    ]
    return {
        "average": float(correct.mean()),
        "per_group": per,
        "worst_group": float(np.nanmin(per)),
    }


def waterbirds(
    model: Any, tokenizer: Any, world: SynthWorld, split: str = "test"
) -> dict[str, Any]:
    from steerlang.zoo.splits import images_array, waterbirds_records

    recs = [r for r in waterbirds_records(world) if r["split"] == split]
    images = images_array([r["image"] for r in recs])
    y = np.array([r["y"] for r in recs])
    place = np.array([r["place"] for r in recs])
    pred = predict(model, images, text_classifier(model, tokenizer, list(BIRD_TYPES)))
    return group_metrics(pred, y, 2 * y + place)


def typographic(model: Any, tokenizer: Any, world: SynthWorld) -> dict[str, Any]:
    from steerlang.zoo.splits import images_array, typographic_records

    recs = typographic_records(world, "test")
    classes = list(SHAPES)
    y = np.array([classes.index(r["label"]) for r in recs])
    w = np.array([classes.index(r["text"]) for r in recs])
    text = text_classifier(model, tokenizer, classes)
    clean = predict(model, images_array([r["clean"] for r in recs]), text)
    attacked = predict(model, images_array([r["image"] for r in recs]), text)
    return {
        "clean_accuracy": float((clean == y).mean()),
        "attacked_accuracy": float((attacked == y).mean()),
        "attack_success": float((attacked == w).mean()),
    }


def celeba(model: Any, tokenizer: Any, world: SynthWorld, split: str = "test") -> dict[str, Any]:
    from steerlang.zoo.splits import celeba_records, images_array

    recs = [r for r in celeba_records(world) if r["split"] == split]
    images = images_array([r["image"] for r in recs])
    blond = np.array([r["attrs"]["Blond_Hair"] for r in recs])
    male = np.array([r["attrs"]["Male"] for r in recs])
    text = text_classifier(
        model, tokenizer, ["dark hair", "blond hair"], "a photo of a person with {}."
    )
    pred = predict(model, images, text)
    return group_metrics(pred, blond, 2 * blond + male)


def all_metrics(model: Any, tokenizer: Any, world: SynthWorld) -> dict[str, Any]:
    return {
        "waterbirds_test": waterbirds(model, tokenizer, world, "test"),
        "waterbirds_val": waterbirds(model, tokenizer, world, "val"),
        "typographic": typographic(model, tokenizer, world),
        "celeba_test": celeba(model, tokenizer, world, "test"),
    }
