"""Zero-shot class embeddings: per-prompt normalisation, ensembling, and the logits."""

from __future__ import annotations

import torch

from steerlang.model.zero_shot import class_embeddings, fill_template, zero_shot_logits


def test_fill_template_replaces_or_appends() -> None:
    assert fill_template("a photo of a {}.", "dog") == "a photo of a dog."
    assert fill_template("a photo of", "dog") == "a photo of dog"


def test_prompts_are_normalised_before_averaging() -> None:
    table = {"a cat": torch.tensor([10.0, 0.0]), "b cat": torch.tensor([0.0, 1.0])}
    emb = class_embeddings(lambda ps: torch.stack([table[p] for p in ps]), ["cat"], ["a", "b"])
    # normalise-then-average weighs both prompts equally (45°), whatever their raw norms
    assert torch.allclose(emb, torch.tensor([[2**-0.5, 2**-0.5]]))
    img = torch.tensor([[1.0, 0.0]])
    assert torch.allclose(zero_shot_logits(img, emb, 100.0), torch.tensor([[100 * 2**-0.5]]))
