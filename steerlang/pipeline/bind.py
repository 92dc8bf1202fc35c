"""Binding: a RecipeIR's names made real (the first stage of a run).

A recipe says `model default`, `dataset waterbirds` and which layers its rules touch; binding
resolves those names through the profile (`steer.yaml`, or the built-in zoo profile) and the
command-line overrides, picks the device, and loads the model, one SAE per rule site and the
dataset. Every later stage reads the Binding and never looks at the profile again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steerlang.errors import SteerError
from steerlang.plan import RecipeIR

log = logging.getLogger("steerlang.run")


@dataclass
class RunOptions:
    """What the command line says about binding and output (the recipe itself is an IR)."""

    profile: str | None = None
    model: str | None = None
    data: list[str] = field(default_factory=list)
    sae: list[str] = field(default_factory=list)
    device: str | None = None  # None: the profile's device
    out: str | None = None  # folder that receives runs/<recipe>-<timestamp>/
    use_cache: bool = True
    # An in-memory dataset (steerlang/data/memory.py) used instead of the recipe's `dataset`.
    table: Any = None


def resolve_device(device: str | None) -> str:
    """`auto` (or None) -> CUDA when available, else the CPU; a CUDA device that is not there
    is an error rather than a silent fall back to the CPU."""
    import torch

    d = (device or "auto").strip()
    if d == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "cpu"
    if d.startswith("cuda") and not torch.cuda.is_available():
        raise SteerError(f"device {d} requested but CUDA is not available", help="use --device cpu")
    return d


@dataclass
class Binding:
    profile: Any
    device: str
    model_ref: str
    handle: Any
    sae_refs: dict[tuple[int, str], str]
    saes: dict[tuple[int, str], Any]
    dataset: Any | None  # DatasetSpec
    table: Any | None  # the whole dataset (all splits)
    cache: Any  # TableCache


def rule_sites(ir: RecipeIR) -> list[tuple[int, str]]:
    """Every (layer, site) some rule edits, sorted."""
    return sorted({(layer, r.scope.site) for r in ir.rules for layer in r.scope.layers})


def sae_ref_for(ir: RecipeIR, profile: Any, layer: int, site: str) -> str:
    """CLI `--sae` first, then the recipe's own `sae` lines (the compiler has already made
    relative folders absolute), then the profile."""
    if (layer, site) in getattr(profile, "sae_overrides", {}):
        return profile.sae_overrides[(layer, site)]
    for key in (f"{layer}:{site}", str(layer) if site == "resid_post" else None):
        if key and key in ir.saes:
            return ir.saes[key]
    return profile.sae_ref(ir.model, layer, site)


def _load_sae(ref: str, handle: Any, model_ref: str, layer: int, site: str, device: str) -> Any:
    """One SAE, checked against the model's width and the site it was trained on."""
    from steerlang.model.sae.load import load_sae

    log.info("loading SAE %s for layer %d %s", ref, layer, site)
    sae = load_sae(ref, device=device)
    if sae.d_in != handle.width:
        raise SteerError(
            f"SAE {ref} reads {sae.d_in}-wide activations but {model_ref} has width "
            f"{handle.width} at layer {layer} {site}",
            help="use an SAE trained on this model and site",
        )
    hook = getattr(sae.cfg, "hook", None)
    if hook is not None and hook.layer is not None and (hook.layer, hook.site) != (layer, site):
        raise SteerError(
            f"SAE {ref} was trained on blocks.{hook.layer}.hook_{hook.site} but the recipe "
            f"uses it at blocks.{layer}.hook_{site}",
            help=f"bind the SAE trained for layer {layer} {site} (--sae {layer}:{site}=REF)",
        )
    return sae


def bind(
    ir: RecipeIR,
    opts: RunOptions,
    *,
    need_data: bool = True,
    handle: Any = None,
    sites: Sequence[tuple[int, str]] | None = None,
) -> Binding:
    """Load what the recipe names: the model, an SAE for every rule site (and `sites`), and
    the dataset (unless `need_data` is false)."""
    from steerlang.pipeline.cache import TableCache
    from steerlang.profile import apply_overrides, load_profile

    profile = apply_overrides(
        load_profile(opts.profile),
        model=opts.model,
        data=opts.data or None,
        sae=opts.sae or None,
    )
    model_ref = profile.model_ref(ir.model)
    sae_refs = {
        (layer, site): sae_ref_for(ir, profile, layer, site)
        for layer, site in sorted(set(rule_sites(ir)) | set(sites or ()))
    }
    # Cheap errors first (steerlang/pipeline/preflight.py): references, SAE folders and the
    # dataset's roots and columns, before torch is imported or any weights load.
    from steerlang.pipeline.preflight import check_references

    check_references(model_ref, sae_refs, handle=handle)
    dataset = table = None
    if need_data and (opts.table is not None or ir.dataset):
        from steerlang.data.columns import check_recipe_columns

        if opts.table is not None:  # in-memory data from the notebook API
            table = opts.table
        else:
            dataset = profile.dataset(ir.dataset)
            table = dataset.load()
        check_recipe_columns(ir, table)
    device = resolve_device(opts.device or profile.device)
    if handle is None:
        from steerlang.model.clip import load_model

        log.info("loading model %s on %s", model_ref, device)
        handle = load_model(model_ref, device)
    saes: dict[tuple[int, str], Any] = {}
    for (layer, site), ref in sae_refs.items():
        if not 0 <= layer < handle.n_layers:
            raise SteerError(
                f"the recipe uses layer {layer} but {model_ref} has {handle.n_layers} blocks",
                help=f"use layers 0..{handle.n_layers - 1}",
            )
        saes[(layer, site)] = _load_sae(ref, handle, model_ref, layer, site, device)
    return Binding(
        profile=profile,
        device=device,
        model_ref=model_ref,
        handle=handle,
        sae_refs=sae_refs,
        saes=saes,
        dataset=dataset,
        table=table,
        cache=TableCache(Path(profile.cache_dir)),
    )


def split_of(table: Any, name: str, what: str) -> Any:
    """One split of the bound dataset for a stage (`what` names the stage in messages)."""
    sub = table.split(name)
    if not getattr(table, "has_splits", False):
        log.warning(
            "dataset %s has no splits: the %s uses all %d images (statistics and evaluation "
            "share images)",
            getattr(table, "name", "?"),
            what,
            len(sub),
        )
    if len(sub) == 0:
        raise SteerError(
            f"the {what} split `{name}` of dataset {getattr(table, 'name', '?')} is empty",
            help="choose another split with `set stats_split = ...` / `set eval_split = ...`",
        )
    return sub


def attack_style_for(ir: RecipeIR, b: Binding) -> str:
    """`attack_style`, with "auto" resolved: the zoo CLIP reads SynthWorld's notes (the
    Defense-Prefix style's scaled-down type is clutter at 64 px), real models read the
    Defense-Prefix text."""
    style = str(ir.setting("attack_style"))
    if style == "auto":
        return "note" if b.dataset is not None and b.dataset.is_zoo else "dp"
    return style
