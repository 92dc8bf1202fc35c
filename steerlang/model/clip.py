"""Model adapter: resolve a model reference to an open_clip CLIP plus what the runtime needs.

References (docs/architecture.md):
- `default`, `zoo:tiny-clip`: the embedded tiny CLIP (`steerlang.zoo.load_zoo_clip`).
- `openclip:NAME@TAG`: a real open_clip pretrained tag. The weights come from the local
  Hugging Face / open_clip cache first; a miss on a machine without network is an
  `OfflineError` that names the file and how to get it.
- `openclip:NAME@/path/to/ckpt.{safetensors,bin,pt,pth}`: a local checkpoint, loaded with
  `weights_only=True` (a pickle that would run code is refused).
- `openclip:NAME@random`: random weights (benchmarks and tests only; say so in reports).
- `hf-hub:ORG/NAME`, `open-clip:ORG/NAME`: aliases of the open_clip tag stored in that Hugging
  Face repo (`steerlang.model.refs`).
- `hf:ORG/NAME`, `hf:/path/to/folder`: a transformers CLIP or SigLIP model
  (`steerlang.model.hf_clip`).

QuickGELU is used wherever open_clip's weights need it: `-quickgelu` names, and tags whose
pretrained config says `quick_gelu` (the OpenAI weights). open_clip 3.x itself builds GELU for
`ViT-B-32` + `openai` and only warns.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from steerlang.errors import CheckpointError, OfflineError, SteerError, did_you_mean
from steerlang.files import sha256_file
from steerlang.model.refs import resolve_alias
from steerlang.model.sae.tensors import first_line
from steerlang.model.towers import SUPPORTED, Tower, tower_of
from steerlang.zoo import load_zoo_clip

_CKPT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


@dataclass
class ClipHandle:
    """An open_clip CLIP model with its eval transform, tokenizer and identity."""

    model: nn.Module
    preprocess: Callable[[Any], Tensor]
    tokenizer: Callable[..., Tensor]
    ref: str
    device: torch.device
    weights_file: Path | None = None
    _hash: str | None = field(default=None, repr=False)

    @property
    def visual(self) -> nn.Module:
        return self.model.visual

    @property
    def tower(self) -> Tower:
        """Where the vision tower's blocks are and how its tokens are laid out."""
        return tower_of(self.model)[1]

    @property
    def n_layers(self) -> int:
        return len(self.tower.blocks)

    @property
    def width(self) -> int:
        return self.tower.width

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.tower.grid_size

    @property
    def has_cls(self) -> bool:
        """Whether token 0 is a CLS token (open_clip ViTs, HF CLIP) or a patch (SigLIP)."""
        return self.tower.has_cls

    @property
    def prefix_tokens(self) -> int:
        """Tokens before the patch grid: 1 (the CLS token) or 0 (SigLIP), `Tower.prefix_tokens`."""
        return self.tower.prefix_tokens

    @property
    def n_tokens(self) -> int:
        """Tokens per image at every site: CLS (index 0, when the tower has one) + the patch
        grid, row-major."""
        return self.tower.n_tokens

    @property
    def image_size(self) -> int:
        return self.tower.image_size

    @property
    def batch_first(self) -> bool:
        return self.tower.batch_first

    @property
    def logit_scale(self) -> float:
        """CLIP's learned temperature, exp(model.logit_scale) (stored in log space)."""
        return float(self.model.logit_scale.detach().exp().item())

    @property
    def content_hash(self) -> str:
        """sha256 of the weights file, or of the state dict when there is no file.

        Computed on first use (hashing ViT-B-32 weights takes about a second), then cached.
        """
        if self._hash is None:
            if self.weights_file is not None and self.weights_file.is_file():
                self._hash = "sha256:" + sha256_file(self.weights_file)
            else:
                self._hash = state_dict_hash(self.model)
        return self._hash

    @torch.no_grad()
    def encode_image(self, pixels: Tensor) -> Tensor:
        """Preprocessed pixels [N, 3, H, W] -> L2-normalised image embeddings [N, E]."""
        return self.model.encode_image(pixels.to(self.device), normalize=True)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """Strings -> L2-normalised text embeddings [len(texts), E]."""
        tokens = self.tokenizer(list(texts)).to(self.device)
        return self.model.encode_text(tokens, normalize=True)


def state_dict_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        h.update(t.numpy().tobytes())
    return "sha256:" + h.hexdigest()


# ------------------------------------------------------------------------------ loading


def _offline_mode() -> bool:
    for var in ("STEER_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    return False


def _check_model_name(name: str) -> None:
    import open_clip

    models = open_clip.list_models()
    if name not in models:
        close = did_you_mean(name, models)
        raise SteerError(
            f"unknown open_clip architecture {name!r}",
            help=(f"did you mean {close}? " if close else "")
            + "list them with `python -c 'import open_clip; print(open_clip.list_models())'`",
        )


def _finish(
    model: nn.Module,
    preprocess: Callable[[Any], Tensor],
    name: str | None,
    ref: str,
    device: torch.device,
    weights_file: Path | None,
    tokenizer: Callable[..., Tensor] | None = None,
) -> ClipHandle:
    model.eval()
    if tokenizer is None:
        tokenizer = LazyTokenizer(name or "ViT-B-32")
    return ClipHandle(
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
        ref=ref,
        device=device,
        weights_file=weights_file,
    )


class LazyTokenizer:
    """open_clip's tokenizer for a model, built on first use.

    SigLIP, CLIPA and other models with a Hugging Face tokenizer fetch it when it is built;
    building it lazily lets their image side (all steering needs) load from a local checkpoint
    on a machine without network. A tokenizer that cannot be built offline is an OfflineError
    naming how to get it.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._tok: Callable[..., Tensor] | None = None

    def __call__(self, texts: Any, *args: Any, **kwargs: Any) -> Tensor:
        return self.get()(texts, *args, **kwargs)

    def get(self) -> Callable[..., Tensor]:
        if self._tok is None:
            import open_clip

            try:
                self._tok = open_clip.get_tokenizer(self.name)
            except Exception as e:  # noqa: BLE001 - a missing HF tokenizer is an offline miss
                hub = ((open_clip.get_model_config(self.name) or {}).get("text_cfg") or {}).get(
                    "hf_tokenizer_name", ""
                )
                raise OfflineError(
                    f"the text tokenizer of {self.name} cannot be loaded ({first_line(e)})",
                    help=(
                        f"on a networked machine run `hf download {hub}` and copy "
                        "~/.cache/huggingface here (image-only commands do not need it)"
                        if hub
                        else "check the model name"
                    ),
                ) from None
        return self._tok


def check_tower(name: str) -> None:
    """Refuse, before building it, an open_clip model whose vision tower cannot be hooked."""
    import open_clip

    vcfg = (open_clip.get_model_config(name) or {}).get("vision_cfg") or {}
    timm_name = str(vcfg.get("timm_model_name") or "")
    if isinstance(vcfg.get("layers"), list | tuple):
        kind = "a ResNet (ModifiedResNet) vision tower"
    elif timm_name and not timm_name.startswith(("vit_", "test_vit")):
        kind = f"a timm {timm_name} vision tower"
    elif timm_name.startswith(("vit_pe_", "vit_base_mci", "vit_relpos")):
        kind = f"a timm {timm_name} vision tower (not a plain ViT)"
    else:
        return
    raise SteerError(
        f"open_clip model {name} has {kind}; steerlang steers transformer blocks",
        help=f"supported: {SUPPORTED}",
    )


def _create_random(
    name: str, quick_gelu: bool = False
) -> tuple[nn.Module, Callable[[Any], Tensor]]:
    """open_clip model with random weights (silencing open_clip's 'initialized randomly'
    warning: here random init is either intended or immediately overwritten).

    `quick_gelu` forces QuickGELU, as the weights of a tag trained with it need (the OpenAI
    tags: `quick_gelu` in the tag's pretrained config); `-quickgelu` model names already set
    it in their model config.
    """
    import logging

    import open_clip

    check_tower(name)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=None, force_quick_gelu=quick_gelu
        )
    finally:
        root.setLevel(level)
    tower_of(model)  # a timm tower that is not a plain ViT is refused here, by name
    return model, preprocess


def uses_quick_gelu(name: str, tag: str | None) -> bool:
    """Whether open_clip's weights for `name@tag` were trained with QuickGELU: the model
    config's `quick_gelu` (the `-quickgelu` names) or the pretrained tag's."""
    import open_clip

    cfg = open_clip.get_model_config(name) or {}
    if cfg.get("quick_gelu"):
        return True
    if tag:
        return bool((open_clip.get_pretrained_cfg(name, tag) or {}).get("quick_gelu", False))
    return False


def _load_checkpoint(
    name: str, path: Path, ref: str, device: torch.device, *, quick_gelu: bool = False
) -> ClipHandle:
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in _CKPT_SUFFIXES)
        raise CheckpointError(
            f"model {ref}: {path} is a folder; the part after '@' must be the weights file",
            help=(
                f"pass one of the files inside: {', '.join(inside[:6])}"
                if inside
                else f"no checkpoint file ({', '.join(_CKPT_SUFFIXES)}) is in that folder"
            ),
        )
    if not path.is_file():
        raise CheckpointError(
            f"model {ref}: checkpoint {path} not found",
            help="check the path after '@', or use an open_clip pretrained tag",
        )
    model, preprocess = _create_random(name, quick_gelu=quick_gelu)
    try:
        if path.suffix == ".safetensors":
            from steerlang.model.sae.tensors import read_safetensors

            state = read_safetensors(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - every unpickling failure becomes one clear error
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(
            f"model {ref}: {path} cannot be loaded safely ({msg})",
            help="the file is truncated, corrupt, or a pickle that would execute code; "
            "re-save the weights as a plain state dict (torch.save(model.state_dict())) or "
            "as safetensors",
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"model {ref}: {path} does not hold a state dict")
    if state and next(iter(state)).startswith("module."):
        state = {k[len("module.") :]: v for k, v in state.items()}
    tmp_model = model
    try:
        if "logit_scale" in state and tmp_model.logit_scale.ndim != state["logit_scale"].ndim:
            state["logit_scale"] = state["logit_scale"].reshape(tmp_model.logit_scale.shape)
        tmp_model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()
        detail = "; ".join(line.strip() for line in first[:3])
        raise CheckpointError(
            f"model {ref}: weights in {path} do not match the open_clip {name} architecture "
            f"({detail[:300]})",
            help="check the architecture name before '@' matches the checkpoint",
        ) from None
    model.to(device)
    return _finish(model, preprocess, name, ref, device, path)


def _cached_pretrained(
    name: str, tag: str, cache_dir: str | None
) -> tuple[Path | None, str, tuple[str, str] | None]:
    """Look for the weights of an open_clip tag in the local caches; returns (file, where, and
    the Hugging Face (repo, file) to fetch when the tag has one)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(name, tag)
    if cfg.get("file"):
        return Path(cfg["file"]), cfg["file"], None
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import hf_hub_download

        # open_clip convention: 'org/repo/' means the default file names, else 'org/repo/file'.
        repo, filename = (hub[:-1], "") if hub.endswith("/") else os.path.split(hub)
        names = (
            [filename]
            if filename
            else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        )
        for fname in names:
            try:
                p = hf_hub_download(repo, fname, cache_dir=cache_dir, local_files_only=True)
                return Path(p), f"hf://{repo}/{fname}", (repo, fname)
            except Exception:  # noqa: BLE001 - a miss in the local cache, try the next name
                continue
        return None, f"Hugging Face repo {repo} (file {names[-1]})", (repo, names[-1])
    url = cfg.get("url", "")
    if url:
        root = Path(cache_dir or os.path.expanduser("~/.cache/clip"))
        p = root / os.path.basename(url)
        return (p if p.is_file() else None), url, None
    return None, f"{name}@{tag}", None


def _load_pretrained(
    name: str,
    tag: str,
    ref: str,
    device: torch.device,
    allow_download: bool | None,
    cache_dir: str | None,
) -> ClipHandle:
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(name)
    if tag not in tags:
        close = did_you_mean(tag, tags)
        raise SteerError(
            f"open_clip has no pretrained tag {tag!r} for {name}",
            help=(f"did you mean {close}? " if close else "")
            + f"known tags: {', '.join(tags) or 'none'}; or pass a checkpoint path after '@'",
        )
    pcfg = open_clip.get_pretrained_cfg(name, tag)
    from steerlang.model.refs import pretrained_fetch_help

    local, where, hub = _cached_pretrained(name, tag, cache_dir)
    fetch = pretrained_fetch_help(name, tag, *(hub or (None, None)))
    if local is None:
        if allow_download is False or (allow_download is None and _offline_mode()):
            raise OfflineError(
                f"model {ref}: the weights ({where}) are not in the local cache and downloads "
                "are off",
                help=fetch,
            )
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name,
                pretrained=tag,
                device=device,
                cache_dir=cache_dir,
                weights_only=True,
                force_quick_gelu=uses_quick_gelu(name, tag),
            )
        except Exception as e:  # noqa: BLE001 - any download failure is an offline miss here
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise OfflineError(
                f"model {ref}: cannot download the weights ({where}): {msg[:200]}",
                help=fetch,
            ) from None
        local, _, _ = _cached_pretrained(name, tag, cache_dir)
        return _finish(model, preprocess, name, ref, device, local)
    handle = _load_checkpoint(name, local, ref, device, quick_gelu=uses_quick_gelu(name, tag))
    # The tag's own normalisation constants (e.g. SigLIP/OpenAI differ) drive preprocessing.
    pp_keys = {k: pcfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in pcfg}
    if pp_keys:
        handle.preprocess = open_clip.image_transform(
            handle.model.visual.image_size, is_train=False, **pp_keys
        )
    return handle


def load_model(
    ref: str,
    device: str | torch.device = "cpu",
    *,
    allow_download: bool | None = None,
    cache_dir: str | None = None,
) -> ClipHandle:
    """Resolve a model reference (see module docstring) to a ClipHandle in eval mode.

    `allow_download=None` downloads unless `STEER_OFFLINE=1` or `HF_HUB_OFFLINE=1` is set.
    """
    dev = torch.device(device)
    ref = ref.strip()
    if ref in ("default", "zoo:tiny-clip"):
        return _load_zoo(ref, dev)
    if ref.startswith("hf:"):
        return _load_hf(ref, dev, allow_download, cache_dir)
    given = ref
    ref = resolve_alias(ref)
    if not ref.startswith("openclip:"):
        raise SteerError(
            f"unknown model reference {ref!r}",
            help="use default, zoo:tiny-clip, openclip:NAME@TAG, openclip:NAME@/path/to/ckpt, "
            "hf-hub:ORG/NAME (an open_clip repo) or hf:ORG/NAME (a transformers CLIP/SigLIP)",
        )
    if given != ref:
        handle = load_model(ref, dev, allow_download=allow_download, cache_dir=cache_dir)
        handle.ref = given
        return handle
    body = ref[len("openclip:") :]
    name, sep, source = body.partition("@")
    if not name or not sep or not source:
        raise SteerError(
            f"model reference {ref!r} needs NAME@TAG or NAME@/path",
            help="e.g. openclip:ViT-B-32@datacomp_xl_s13b_b90k",
        )
    _check_model_name(name)
    if source == "random":
        return random_clip(name, device=dev, ref=ref)
    looks_like_path = (
        "/" in source or source.startswith((".", "~")) or source.endswith(_CKPT_SUFFIXES)
    )
    if looks_like_path:
        return _load_checkpoint(name, Path(source).expanduser(), ref, dev)
    return _load_pretrained(name, source, ref, dev, allow_download, cache_dir)


def _load_hf(
    ref: str, device: torch.device, allow_download: bool | None, cache_dir: str | None
) -> ClipHandle:
    from steerlang.model.hf_clip import load_hf_model

    spec = ref[len("hf:") :].strip()
    if not spec:
        raise SteerError(f"model reference {ref!r} needs ORG/NAME or a folder after 'hf:'")
    model, preprocess, tokenizer, weights = load_hf_model(spec, allow_download, cache_dir)
    return ClipHandle(
        model=model.to(device).eval(),
        preprocess=preprocess,
        tokenizer=tokenizer,
        ref=ref,
        device=device,
        weights_file=weights,
    )


def _load_zoo(ref: str, device: torch.device) -> ClipHandle:
    try:
        model, preprocess, tokenizer = load_zoo_clip(device)
    except SteerError:
        raise
    except FileNotFoundError as e:
        raise SteerError(
            f"model {ref}: the zoo CLIP has not been built ({e})",
            help="run `steer zoo build` once (offline, a few minutes)",
        ) from None
    weights = getattr(model, "steer_weights_file", None)
    return ClipHandle(
        model=model.to(device).eval(),
        preprocess=preprocess,
        tokenizer=tokenizer,
        ref=ref,
        device=device,
        weights_file=Path(weights) if weights else None,
    )


# ------------------------------------------------------------------------------ test models


def register_model_config(name: str, cfg: dict[str, Any]) -> str:
    """Register an open_clip model config under `name` (via open_clip.add_model_config)."""
    import open_clip

    if name in open_clip.list_models():
        return name
    d = Path(tempfile.mkdtemp(prefix="steer_openclip_cfg_"))
    (d / f"{name}.json").write_text(json.dumps(cfg), encoding="utf-8")
    open_clip.add_model_config(d)
    return name


TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 12, "width": 64, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def set_batch_first(model: nn.Module, batch_first: bool) -> None:
    """Switch the vision tower between [N, L, D] and [L, N, D] block I/O.

    open_clip 3.x always builds batch-first; older versions and configs ran sequence-first,
    and hooks must handle both. The attention modules must agree with the transformer flag.
    """
    tr = model.visual.transformer if hasattr(model, "visual") else model.transformer
    tr.batch_first = batch_first
    for blk in tr.resblocks:
        attn = getattr(blk, "attn", None)
        if isinstance(attn, nn.MultiheadAttention):
            attn.batch_first = batch_first
        elif not batch_first:
            raise SteerError(f"{type(blk).__name__} only supports batch_first=True")


def random_clip(
    name: str | dict[str, Any] = "ViT-B-32",
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    batch_first: bool = True,
    ref: str | None = None,
) -> ClipHandle:
    """An open_clip model with random weights: a real architecture name or a config dict
    (registered as `steer-test-<hash>`). For tests and benchmarks only."""

    if isinstance(name, dict):
        key = hashlib.sha256(json.dumps(name, sort_keys=True).encode()).hexdigest()[:10]
        name = register_model_config(f"steer-test-{key}", name)
    torch.manual_seed(seed)
    dev = torch.device(device)
    model, preprocess = _create_random(name)
    if not batch_first:
        set_batch_first(model, False)
    model.to(dev)
    return _finish(model, preprocess, name, ref or f"openclip:{name}@random", dev, None)
