"""Cheap errors first: everything a run can check before it imports torch or loads weights.

`bind` (steerlang/pipeline/bind.py) calls `check_references` before it loads the model: the model
reference is resolved to its architecture's config (a JSON file: the zoo's, or open_clip's
`model_configs/NAME.json`, read without importing open_clip), the layers the rules use are checked
against its depth, every SAE folder is found, its format recognised from its files, its config's
`d_in` and training site compared with the model and its weights file's header read for the
tensor shapes. None of this imports torch, so a missing SAE is reported about as fast as Python
starts (docs/scale.md gives the measured figures). The same errors as the loaders' are raised, so
the messages do not depend on which check saw the problem first.

An open_clip pretrained tag whose weights are not in the local cache needs the network: it is
probed once per process (`network_available`, one TCP connection with a short timeout), and an
unreachable hub fails at once with the loader's help text instead of after Hugging Face's
retries (`check_pretrained_reachable`).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from steerlang.errors import CheckpointError, OfflineError, SteerError, did_you_mean
from steerlang.facts import SITE_KINDS

NETWORK_TIMEOUT_S = 3.0

_CKPT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class ModelShape:
    """What the checks need of a model, read from its architecture config."""

    name: str
    n_layers: int
    width: int


# ------------------------------------------------------------------------------ model


def _open_clip_config_dir() -> Path | None:
    """open_clip's bundled `model_configs/` folder, found without importing open_clip."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "model_configs"
    return d if d.is_dir() else None


def _shape_from_config(name: str, cfg: Mapping[str, Any]) -> ModelShape | None:
    v = cfg.get("vision_cfg") or {}
    try:
        return ModelShape(name, int(v["layers"]), int(v["width"]))
    except (KeyError, TypeError, ValueError):
        return None  # timm towers and other configs: the loader checks them


def model_shape(ref: str) -> ModelShape | None:
    """The model's depth and width from its config file, or None when only loading the model can
    tell (a registered test config, a timm tower). A local checkpoint that does not exist and an
    architecture name open_clip does not ship are errors here, as they are in the loader."""
    ref = ref.strip()
    if ref in ("default", "zoo:tiny-clip"):
        from steerlang.zoo.model import CONFIG_PATH, ZOO_MODEL_NAME

        cfg = json.loads(CONFIG_PATH.read_text(encoding="utf-8"))
        return _shape_from_config(ZOO_MODEL_NAME, cfg)
    if not ref.startswith("openclip:"):
        return None  # the loader reports an unknown reference
    name, sep, source = ref[len("openclip:") :].partition("@")
    if not name or not sep or not source:
        return None
    if "/" in source or source.startswith((".", "~")) or source.endswith(_CKPT_SUFFIXES):
        path = Path(source).expanduser()
        if not path.is_file():
            raise CheckpointError(
                f"model {ref}: checkpoint {path} not found",
                help="check the path after '@', or use an open_clip pretrained tag",
            )
    import sys

    if "open_clip" in sys.modules:
        # Already imported (a notebook, the tests): configs registered at run time count too.
        import open_clip

        registered = open_clip.get_model_config(name)
        if registered is not None:
            return _shape_from_config(name, registered)
    d = _open_clip_config_dir()
    if d is None:
        return None
    f = d / f"{name}.json"
    if not f.is_file():
        known = sorted(p.stem for p in d.glob("*.json"))
        close = did_you_mean(name, known)
        raise SteerError(
            f"unknown open_clip architecture {name!r}",
            help=(f"did you mean {close}? " if close else "")
            + "list them with `python -c 'import open_clip; print(open_clip.list_models())'`",
        )
    try:
        cfg = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return _shape_from_config(name, cfg)


# ------------------------------------------------------------------------------ network


def _hub_host() -> tuple[str, int]:
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


@functools.cache
def network_available(host: str | None = None, port: int = 443) -> bool:
    """Whether the Hugging Face Hub (or `host`) answers a TCP connection within
    `NETWORK_TIMEOUT_S`; asked once per process."""
    if host is None:
        host, port = _hub_host()
    try:
        with socket.create_connection((host, port), timeout=NETWORK_TIMEOUT_S):
            return True
    except OSError:
        return False


def _offline_mode() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("STEER_OFFLINE", "HF_HUB_OFFLINE")
    )


@functools.cache
def _pretrained_registry() -> dict[str, dict[str, str]]:
    """open_clip's pretrained tags -> Hugging Face locations ({model: {tag: hf_hub}}), read from
    the syntax tree of `open_clip/pretrained.py` without executing it (importing open_clip
    imports torch, torchvision and more: tens of seconds on a loaded machine). Entries the
    reading does not understand are left out; the loader then checks them itself."""
    import ast

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}

    def kw(call: ast.expr, name: str) -> Any:
        if isinstance(call, ast.Call):
            for k in call.keywords:
                if k.arg == name and isinstance(k.value, ast.Constant):
                    return k.value.value
        return None

    def is_dict_call(v: ast.expr | None) -> bool:
        return isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "dict"

    def tags_of(v: Any) -> dict[str, tuple[str, bool]]:
        return {
            k.arg: (str(kw(k.value, "hf_hub") or ""), bool(kw(k.value, "quick_gelu")))
            for k in v.keywords
            if k.arg
        }

    tables: dict[str, dict[str, tuple[str, bool]]] = {}
    models: dict[str, str] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if not isinstance(target, ast.Name):
            continue
        v = node.value
        if is_dict_call(v):
            tables[target.id] = tags_of(v)
        elif target.id == "_PRETRAINED" and isinstance(v, ast.Dict):
            for key, val in zip(v.keys, v.values, strict=True):
                if not isinstance(key, ast.Constant):
                    continue
                if isinstance(val, ast.Name):
                    models[str(key.value)] = val.id
                elif is_dict_call(val):  # a table written inline
                    tables[f"<{key.value}>"] = tags_of(val)
                    models[str(key.value)] = f"<{key.value}>"
    out: dict[str, dict[str, str]] = {}
    for model, table in models.items():
        for tag, (hub, quick) in tables.get(table, {}).items():
            out.setdefault(model, {})[tag] = hub
            if quick:
                out.setdefault(f"{model}-quickgelu", {})[tag] = hub
    return out


def _hub_files(hub: str) -> tuple[str, list[str]]:
    """open_clip's convention: 'org/repo/' means the default file names, else 'org/repo/file'."""
    if hub.endswith("/"):
        return hub[:-1], ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    repo, _, filename = hub.rpartition("/")
    return repo, [filename]


def _in_hf_cache(repo: str, files: list[str]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for f in files:
        try:
            hit = try_to_load_from_cache(repo, f)
        except Exception:  # noqa: BLE001 - a malformed cache is a miss; the loader reports it
            hit = None
        if isinstance(hit, str) and Path(hit).is_file():
            return True
    return False


def check_pretrained_reachable(ref: str) -> None:
    """An `openclip:NAME@TAG` whose weights are not in the Hugging Face cache fails now, with the
    loader's help text (steerlang/model/clip.py), when downloads are off or the hub cannot be
    reached; without importing open_clip or torch."""
    ref = ref.strip()
    if not ref.startswith("openclip:"):
        return
    name, _, tag = ref[len("openclip:") :].partition("@")
    if not tag or tag == "random" or "/" in tag or tag.startswith((".", "~")):
        return
    hub = _pretrained_registry().get(name, {}).get(tag.lower().replace("-", "_"))
    if not hub:
        return  # unknown tag or a URL-only checkpoint: the loader says which
    repo, files = _hub_files(hub)
    if _in_hf_cache(repo, files):
        return
    where = f"Hugging Face repo {repo} (file {files[-1]})"
    from steerlang.model.refs import pretrained_fetch_help

    help_text = pretrained_fetch_help(name, tag, repo, files[-1])
    if _offline_mode():
        raise OfflineError(
            f"model {ref}: the weights ({where}) are not in the local cache and downloads are off",
            help=help_text,
        )
    if network_available():
        return
    host, _ = _hub_host()
    raise OfflineError(
        f"model {ref}: the weights ({where}) are not in the local cache and {host} cannot be "
        "reached",
        help=help_text,
    )


# ------------------------------------------------------------------------------ SAEs


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None  # the reader reports a broken config with its own message
    return doc if isinstance(doc, dict) else None


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor shapes from a safetensors header (8-byte length + JSON), without the data."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) != 8:
                raise ValueError("no header")
            (n,) = struct.unpack("<Q", head)
            size = path.stat().st_size
            if n > size - 8 or n > 100_000_000:
                raise ValueError("header length beyond the file")
            doc = json.loads(fh.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({e})",
            help="the file is truncated or corrupt; re-download or re-save it",
        ) from None
    return {
        k: list(v.get("shape", []))
        for k, v in doc.items()
        if k != "__metadata__" and isinstance(v, dict)
    }


@dataclass(frozen=True)
class SAEHeader:
    """What an SAE folder says about itself before its weights are read."""

    format: str
    d_in: int | None
    layer: int | None
    site: str | None
    weights: Path | None


def _hook_name(name: Any) -> tuple[int | None, str | None]:
    import re

    m = re.fullmatch(rf"blocks\.(\d+)\.hook_({'|'.join(SITE_KINDS)})", str(name or ""))
    return (int(m.group(1)), m.group(2)) if m else (None, None)


def sae_header(directory: Path, ref: str) -> SAEHeader | None:
    """Find and recognise an SAE folder (the same errors as steerlang/model/sae/load.py);
    None for formats only the loader understands."""
    if not directory.exists():
        raise CheckpointError(
            f"SAE {ref}: {directory} does not exist",
            help="check the path, or use hf:REPO or zoo:sae/L<layer>/<site>",
        )
    if directory.is_file():
        raise CheckpointError(
            f"SAE {ref}: {directory} is a file; an SAE is a folder",
            help="pass the folder holding the config and the weights file",
        )
    cfg = directory / "config.json"
    if cfg.is_file() and (directory / "sae.safetensors").is_file():
        doc = _read_json(cfg)
        if doc is None or doc.get("format") == "steerlang-sae":
            doc = doc or {}
            hook = doc.get("hook") or {}
            return SAEHeader(
                "steerlang",
                _int(doc.get("d_in")),
                _int(hook.get("layer")),
                hook.get("site"),
                directory / "sae.safetensors",
            )
    if (directory / "cfg.json").is_file() and (directory / "sae_weights.safetensors").is_file():
        doc = _read_json(directory / "cfg.json") or {}
        meta = doc.get("metadata") or {}
        layer, site = _hook_name(meta.get("hook_name") or doc.get("hook_name"))
        return SAEHeader(
            "SAELens", _int(doc.get("d_in")), layer, site, directory / "sae_weights.safetensors"
        )
    if cfg.is_file() and any(p.suffix in (".pt", ".pth") for p in directory.iterdir()):
        doc = _read_json(cfg) or {}
        sub = str(doc.get("layer_subtype") or "hook_resid_post").removeprefix("hook_")
        return SAEHeader(
            "ViT-Prisma",
            _int(doc.get("d_in")),
            _int(doc.get("hook_point_layer")),
            sub if sub in SITE_KINDS else None,
            None,
        )
    return None  # the loader lists the files and the formats it knows


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def sae_folder(ref: str) -> Path | None:
    """The local folder of an SAE reference without downloading: a path, a zoo SAE, or an
    `hf:` reference already in the Hugging Face cache (None otherwise)."""
    if ref.startswith("zoo:"):
        from steerlang.zoo import zoo_sae_ref_dir

        return zoo_sae_ref_dir(ref)
    if ref.startswith("hf:"):
        return None  # resolved (and, offline, refused) by the hub reader
    return Path(ref).expanduser()


def check_sae(ref: str, shape: ModelShape | None, model_ref: str, layer: int, site: str) -> None:
    """The SAE folder exists, is a known format, and fits the model and the site."""
    directory = sae_folder(ref)
    if directory is None:
        return
    head = sae_header(directory, ref)
    if head is None:
        return
    if shape is not None and head.d_in is not None and head.d_in != shape.width:
        raise SteerError(
            f"SAE {ref} reads {head.d_in}-wide activations but {model_ref} has width "
            f"{shape.width} at layer {layer} {site}",
            help="use an SAE trained on this model and site",
        )
    if (
        head.layer is not None
        and head.site is not None
        and (head.layer, head.site)
        != (
            layer,
            site,
        )
    ):
        raise SteerError(
            f"SAE {ref} was trained on blocks.{head.layer}.hook_{head.site} but the recipe "
            f"uses it at blocks.{layer}.hook_{site}",
            help=f"bind the SAE trained for layer {layer} {site} (--sae {layer}:{site}=REF)",
        )
    if head.weights is not None:
        if not head.weights.is_file():
            raise CheckpointError(f"SAE {ref}: {head.weights} not found")
        w = safetensors_shapes(head.weights).get("W_enc")
        if w is not None and shape is not None and len(w) == 2 and shape.width not in w:
            raise SteerError(
                f"SAE {ref} reads {w[0]}-wide activations (W_enc {w}) but {model_ref} has "
                f"width {shape.width} at layer {layer} {site}",
                help="use an SAE trained on this model and site",
            )


# ------------------------------------------------------------------------------ all of it


def check_references(
    model_ref: str, sae_refs: Mapping[tuple[int, str], str], *, handle: Any = None
) -> ModelShape | None:
    """Model reference, layers and SAE folders, before any weights load (see module doc). With
    a `handle` (a model already loaded) its shape is used and nothing is downloaded."""
    shape = (
        model_shape(model_ref)
        if handle is None
        else ModelShape(str(getattr(handle, "ref", model_ref)), handle.n_layers, handle.width)
    )
    for (layer, site), ref in sorted(sae_refs.items()):
        if shape is not None and not 0 <= layer < shape.n_layers:
            raise SteerError(
                f"the recipe uses layer {layer} but {model_ref} has {shape.n_layers} blocks",
                help=f"use layers 0..{shape.n_layers - 1}",
            )
        check_sae(ref, shape, model_ref, layer, site)
    if handle is None:
        check_pretrained_reachable(model_ref)
    return shape
