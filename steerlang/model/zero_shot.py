"""Zero-shot classification with CLIP's text tower: class embeddings and logits.

Every zero-shot number in the package (`steer run`'s task metrics, `steer sae-stats` accuracy
recovered, the zoo build's phenomena) uses these two functions, so they agree on the order of
operations: each prompt is embedded and L2-normalised, the prompts of a class are averaged, and
the average is renormalised (CLIP's prompt-ensembling recipe).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

DEFAULT_TEMPLATE = "a photo of a {}."


def fill_template(template: str, class_name: str) -> str:
    """The prompt for one class: `{}` replaced by the name, or the name appended."""
    return template.format(class_name) if "{}" in template else f"{template} {class_name}"


def class_embeddings(
    encode_text: Callable[[list[str]], Tensor],
    classes: Sequence[str],
    templates: Sequence[str] = (DEFAULT_TEMPLATE,),
) -> Tensor:
    """Class embeddings [C, E] (float32, unit norm) from `encode_text(prompts) -> [P, E]`."""
    rows = []
    with torch.inference_mode():
        for c in classes:
            prompts = [fill_template(t, c) for t in templates]
            e = torch.nn.functional.normalize(encode_text(prompts).float(), dim=-1)
            rows.append(torch.nn.functional.normalize(e.mean(0), dim=-1))
    return torch.stack(rows)


def zero_shot_logits(image_emb: Tensor, class_emb: Tensor, logit_scale: float = 1.0) -> Tensor:
    """Logits [N, C]: `logit_scale` × cosine similarity of unit image and class embeddings."""
    return logit_scale * image_emb.float() @ class_emb.T
