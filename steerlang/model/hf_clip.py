"""`hf:` model references: Hugging Face `transformers` CLIP and SigLIP models, hooked directly.

`hf:ORG/NAME` (the local Hugging Face cache first, a download unless offline) or
`hf:/path/to/folder` (a `save_pretrained` folder). The vision tower is used as transformers runs
it, so the activation is the checkpoint's own (`quick_gelu` for OpenAI CLIP, tanh-GELU for
SigLIP); sites map onto `vision_model.encoder.layers` (`steerlang.model.towers`), and the
residual stream after block L is exactly transformers' `hidden_states[L + 1]`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from steerlang.errors import OfflineError, SteerError

_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_KINDS = {"clip": "CLIPModel", "siglip": "SiglipModel", "siglip2": "Siglip2Model"}


class HFClipModel(nn.Module):
    """A transformers CLIP/SigLIP model behind open_clip's surface (`visual`, `encode_image`,
    `encode_text`, `logit_scale`), which is what the rest of steerlang calls."""

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf
        self.visual = hf.vision_model  # type: ignore[assignment]
        self.logit_scale = hf.logit_scale  # type: ignore[assignment]

    @staticmethod
    def _features(out: Any) -> Tensor:
        return out if isinstance(out, Tensor) else out.pooler_output

    def encode_image(self, pixels: Tensor, normalize: bool = False) -> Tensor:
        emb = self._features(self.hf.get_image_features(pixel_values=pixels))  # type: ignore[operator]
        return F.normalize(emb, dim=-1) if normalize else emb

    def encode_text(self, tokens: Tensor, normalize: bool = False) -> Tensor:
        emb = self._features(self.hf.get_text_features(input_ids=tokens))  # type: ignore[operator]
        return F.normalize(emb, dim=-1) if normalize else emb


class HFTokenizer:
    """The model's own tokenizer, built on first use (image-only work never needs it)."""

    def __init__(self, source: str, max_length: int, pad_to_max: bool) -> None:
        self.source, self.max_length, self.pad_to_max = source, max_length, pad_to_max
        self._tok: Any = None

    def __call__(self, texts: list[str]) -> Tensor:
        if self._tok is None:
            from transformers import AutoTokenizer

            try:
                self._tok = AutoTokenizer.from_pretrained(self.source)
            except Exception as e:  # noqa: BLE001 - any failure here is a missing tokenizer
                raise OfflineError(
                    f"the tokenizer of hf:{self.source} cannot be loaded ({type(e).__name__})",
                    help=f"on a networked machine run `hf download {self.source}` and copy "
                    "~/.cache/huggingface here (image-only commands do not need it)",
                ) from None
        enc = self._tok(
            list(texts),
            padding="max_length" if self.pad_to_max else True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return enc["input_ids"]


def _offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("STEER_OFFLINE", "HF_HUB_OFFLINE")
    )


def load_hf_model(
    spec: str, allow_download: bool | None, cache_dir: str | None
) -> tuple[HFClipModel, Callable[[Any], Tensor], Callable[..., Tensor], Path | None]:
    """(model, preprocess, tokenizer, weights file) for `hf:spec`."""
    try:
        import transformers
    except ImportError:
        raise SteerError(
            f"model hf:{spec} needs the transformers package",
            help="pip install transformers",
        ) from None
    local = Path(spec).expanduser()
    local_only = (
        local.is_dir() or allow_download is False or (allow_download is None and _offline())
    )
    source = str(local) if local.is_dir() else spec
    try:
        cfg = transformers.AutoConfig.from_pretrained(
            source, local_files_only=local_only, cache_dir=cache_dir
        )
    except Exception as e:  # noqa: BLE001 - a miss in the cache or on the Hub
        raise OfflineError(
            f"model hf:{spec}: its config is not in the local Hugging Face cache"
            + (" and downloads are off" if local_only else f" and cannot be fetched ({e})"),
            help=f"on a networked machine run `hf download {spec}` and copy ~/.cache/huggingface "
            "here, or pass a save_pretrained folder: hf:/path/to/folder",
        ) from None
    kind = getattr(cfg, "model_type", "")
    if kind not in _KINDS:
        raise SteerError(
            f"model hf:{spec} is a transformers {kind!r} model",
            help=f"hf: references load CLIP and SigLIP models ({', '.join(_KINDS)}); for open_clip "
            "checkpoints use openclip:ARCH@TAG or hf-hub:ORG/NAME",
        )
    cls = getattr(transformers, _KINDS[kind])
    try:
        hf = cls.from_pretrained(source, local_files_only=local_only, cache_dir=cache_dir)
    except Exception as e:  # noqa: BLE001
        raise OfflineError(
            f"model hf:{spec}: the weights cannot be loaded ({str(e).splitlines()[0][:200]})",
            help=f"on a networked machine run `hf download {spec}` and copy ~/.cache/huggingface "
            "here",
        ) from None
    hf.eval()
    vcfg = hf.config.vision_config
    size = int(vcfg.image_size)
    import open_clip

    if kind == "clip":
        preprocess = open_clip.image_transform(
            size, is_train=False, mean=_OPENAI_MEAN, std=_OPENAI_STD, interpolation="bicubic"
        )
        max_len, pad_max = int(hf.config.text_config.max_position_embeddings), False
    else:
        preprocess = open_clip.image_transform(
            size,
            is_train=False,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            interpolation="bicubic",
            resize_mode="squash",
        )
        max_len, pad_max = 64, True  # SigLIP was trained on max_length padding to 64 tokens
    weights = _weights_file(hf)
    return HFClipModel(hf), preprocess, HFTokenizer(source, max_len, pad_max), weights


def _weights_file(hf: nn.Module) -> Path | None:
    path = getattr(hf, "name_or_path", None) or getattr(hf.config, "_name_or_path", "")
    p = Path(str(path))
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (p / name).is_file():
            return p / name
    return None


def random_hf_clip(kind: str = "clip", *, seed: int = 0, **vision: Any) -> nn.Module:
    """A tiny random transformers CLIP/SigLIP model (tests only)."""
    import transformers

    torch.manual_seed(seed)
    v = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
    } | vision
    t = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 100,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 1,
    }
    if kind == "clip":
        cfg = transformers.CLIPConfig(vision_config=v, text_config=t, projection_dim=16)
        return transformers.CLIPModel(cfg).eval()
    cfg = transformers.SiglipConfig(vision_config=v, text_config=t)
    return transformers.SiglipModel(cfg).eval()
