"""Model-reference aliases, resolved to the one spelling `steerlang.model.clip.load_model` loads.

- `hf-hub:ORG/NAME` (open_clip's spelling on model cards) and `open-clip:ORG/NAME` (ViT-Prisma's
  `model_name`) name an open_clip checkpoint on the Hugging Face Hub; when an open_clip
  pretrained tag points at that repo they become `openclip:ARCH@TAG`, so the weights, the
  QuickGELU setting and the preprocessing are the tag's.
- `openclip:hf-hub:ORG/NAME` is the same alias written after `openclip:`.

Everything else is returned unchanged.
"""

from __future__ import annotations

from functools import lru_cache

from steerlang.errors import SteerError

ALIAS_PREFIXES = ("hf-hub:", "open-clip:", "openclip:hf-hub:")


@lru_cache(maxsize=1)
def _hub_tags() -> dict[str, tuple[str, str]]:
    """Hugging Face repo (lower case) -> (open_clip architecture, pretrained tag)."""
    import open_clip

    out: dict[str, tuple[str, str]] = {}
    for name, tag in open_clip.list_pretrained():
        hub = str((open_clip.get_pretrained_cfg(name, tag) or {}).get("hf_hub") or "")
        repo = hub[:-1] if hub.endswith("/") else hub
        if repo.count("/") == 1:
            out.setdefault(repo.lower(), (name, tag))
    return out


def resolve_alias(ref: str) -> str:
    """`hf-hub:ORG/NAME` / `open-clip:ORG/NAME` -> `openclip:ARCH@TAG`; other refs unchanged."""
    ref = ref.strip()
    prefix = next((p for p in ALIAS_PREFIXES if ref.startswith(p)), None)
    if prefix is None:
        return ref
    repo = ref[len(prefix) :].strip().strip("/")
    if repo.count("/") != 1:
        raise SteerError(
            f"model reference {ref!r} needs a Hugging Face repo ORG/NAME after {prefix!r}",
            help="e.g. hf-hub:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K",
        )
    hit = _hub_tags().get(repo.lower())
    if hit is None:
        raise SteerError(
            f"model reference {ref!r}: no open_clip pretrained tag uses the repo {repo}",
            help=f"download it (`hf download {repo}`) and pass the weights file: "
            "openclip:ARCH@/path/to/open_clip_model.safetensors, or a transformers CLIP/SigLIP "
            f"repo as hf:{repo}",
        )
    name, tag = hit
    return f"openclip:{name}@{tag}"


def pretrained_fetch_help(name: str, tag: str, repo: str | None, file: str | None) -> str:
    """How to put an open_clip pretrained tag's weights on an offline machine (one text for
    the loader and preflight): `hf download` of its Hugging Face file when it has one, else
    open_clip itself, which fills its caches."""
    get = (
        f"`hf download {repo} {file}`"
        if repo and file
        else f"python -c \"import open_clip; open_clip.create_model_and_transforms('{name}', "
        f"pretrained='{tag}')\""
    )
    return (
        f"on a networked machine run {get} (it fills the Hugging Face cache; copy "
        f"~/.cache/huggingface to this machine), or pass a local checkpoint: "
        f"openclip:{name}@/path/to/weights.safetensors"
    )
