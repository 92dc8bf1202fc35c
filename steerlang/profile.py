"""Profiles: `steer.yaml` maps the names a recipe uses to real models, SAEs and datasets.

A recipe says `model default` and `dataset waterbirds`; the profile decides whether that means the
embedded zoo (the built-in default, so nothing is needed offline) or open_clip weights, Hugging
Face SAE releases and dataset roots on the user's machine. Keeping the mapping out of recipes lets
one recipe run unchanged on a laptop (zoo) and on a cluster (real data).

    # steer.yaml
    cache: ~/.cache/steerlang          # default: $STEER_CACHE or ~/.cache/steerlang
    device: auto                       # auto | cpu | cuda | cuda:N | mps
    models:
      default: zoo:tiny-clip
      b32: openclip:ViT-B-32@datacomp_xl_s13b_b90k
    saes:
      b32:
        default: hf:Prisma-Multimodal/sparse-autoencoder-clip-b-32-sae-vanilla-x64-layer-{layer}-hook_{site}-l1-1e-05
        "11:resid_post": /data/saes/l11
    datasets:
      waterbirds: {format: waterbirds, root: /data/waterbird_complete95_forest2water2}
      celeba: {format: celeba, root: zoo}

Validation errors name the YAML file, line and column (from the YAML node marks). The module is
torch-free; dataset roots that say `zoo` call `steerlang.zoo.materialize_dataset` only when the
dataset is actually needed.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from steerlang.bounded_yaml import Marks, parse_yaml
from steerlang.data.formats import FORMATS
from steerlang.errors import DatasetError, ProfileError, did_you_mean, validation_problems
from steerlang.facts import SITE_KINDS
from steerlang.files import default_cache_dir

PROFILE_FILENAME = "steer.yaml"
DEFAULT_SITE = "resid_post"
ZOO_MODEL = "zoo:tiny-clip"
ZOO_SAE_PATTERN = "zoo:sae/L{layer}/{site}"
ZOO_DATASETS: dict[str, str] = {
    "waterbirds": "waterbirds",
    "celeba": "celeba",
    "typographic": "typographic",
    "shapes": "imagefolder",
}
# The ViT-Prisma SAE suite (Hugging Face, Prisma-Multimodal) trained on this checkpoint: one
# vanilla x64 SAE for every layer and site.
PRISMA_B32_MODEL = "openclip:ViT-B-32@datacomp_xl_s13b_b90k"
PRISMA_B32_PATTERN = (
    "hf:Prisma-Multimodal/sparse-autoencoder-clip-b-32-sae-vanilla-x64-layer-{layer}"
    "-hook_{site}-l1-1e-05"
)
# The device names a profile's `device:` and the `--device` option accept.
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
_SAE_KEY_RE = re.compile(r"(\d+)(?::([a-z_]+))?")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    """The hint that opens a profile error's help, from the one picker in steerlang/errors.py."""
    close = did_you_mean(name, list(options))
    return f"did you mean '{close}'? " if close else ""


def _expand(s: str) -> str:
    return os.path.expanduser(os.path.expandvars(s))


# Model reference schemes (steerlang.model.clip.load_model, steerlang.model.refs).
MODEL_REF_PREFIXES = ("hf:", "zoo:", "openclip:", "hf-hub:", "open-clip:")


def _is_path_ref(ref: str) -> bool:
    return not (ref.startswith(MODEL_REF_PREFIXES) or ref == "default")


def _check_site(site: str) -> str:
    if site not in SITE_KINDS:
        raise ValueError(
            f"unknown site '{site}'; {_did_you_mean(site, SITE_KINDS)}sites: {', '.join(SITE_KINDS)}"
        )
    return site


def check_model_ref(ref: str) -> str:
    """Shape check only (no loading): `default`, `zoo:tiny-clip`, `openclip:NAME@TAG|PATH`."""
    if ref in ("default", ZOO_MODEL):
        return ref
    if ref.startswith("zoo:"):
        raise ValueError(f"unknown zoo model '{ref}'; the zoo has '{ZOO_MODEL}'")
    if ref.startswith(("hf:", "hf-hub:", "open-clip:", "openclip:hf-hub:")):
        if not ref.partition(":")[2].strip():
            raise ValueError(f"'{ref}' needs a Hugging Face repo ORG/NAME (or, for hf:, a folder)")
        return ref
    if ref.startswith("openclip:"):
        body = ref[len("openclip:") :]
        name, at, tag = body.partition("@")
        if not name or not at or not tag:
            raise ValueError(
                f"'{ref}' needs a pretrained tag or checkpoint path: openclip:NAME@TAG, "
                "e.g. openclip:ViT-B-32@datacomp_xl_s13b_b90k"
            )
        return ref
    raise ValueError(
        f"'{ref}' is not a model reference; use zoo:tiny-clip, openclip:NAME@TAG, "
        "openclip:NAME@/path/to/checkpoint, hf-hub:ORG/NAME or hf:ORG/NAME"
    )


def _check_sae_pattern(value: str) -> str:
    for ph in _PLACEHOLDER_RE.findall(value):
        if ph not in ("layer", "site", "hook"):
            raise ValueError(
                f"unknown placeholder '{{{ph}}}' in SAE pattern; use {{layer}}, {{site}} or "
                "{hook} (= hook_{site})"
            )
    return value


def zoo_sae_problem(ref: str, layer: int | None = None) -> tuple[str, str] | None:
    """(message, help) when `ref` names no shipped zoo SAE, else None. The zoo ships one SAE
    per layer of the tiny CLIP at `resid_post`, plus the domain SAEs of
    `steerlang.zoo.ZOO_DOMAIN_SAES`; the help suggests the one for `layer` (the layer the
    reference is for) when there is one."""
    from steerlang.facts import MODEL_DEPTHS
    from steerlang.zoo import (
        ZOO_DOMAIN_SAES,
        domain_zoo_sae_refs,
        parse_zoo_sae_ref,
        shipped_zoo_sae_refs,
    )

    depth = MODEL_DEPTHS[ZOO_MODEL]
    shipped = shipped_zoo_sae_refs()
    if ref in shipped:
        return None
    parsed = parse_zoo_sae_ref(ref)
    guess = None
    if layer is not None and 0 <= layer < depth:
        guess = ZOO_SAE_PATTERN.format(layer=layer, site=DEFAULT_SITE)
    elif parsed and 0 <= parsed[1] < depth:
        guess = ZOO_SAE_PATTERN.format(layer=parsed[1], site=DEFAULT_SITE)
    else:
        guess = did_you_mean(ref, shipped)
    if parsed is None:
        what = f"'{ref}' is not a zoo SAE reference"
    elif parsed[0] is not None:
        domains = ", ".join(domain_zoo_sae_refs())
        what = f"the zoo has no SAE '{ref}': its domain SAEs are {domains}"
        if parsed[0] in ZOO_DOMAIN_SAES:
            guess = domain_zoo_sae_refs()[list(ZOO_DOMAIN_SAES).index(parsed[0])]
    elif not 0 <= parsed[1] < depth:
        what = f"the zoo has no SAE '{ref}': the zoo CLIP has layers 0..{depth - 1}"
    else:
        what = f"the zoo has no SAE '{ref}': zoo SAEs are at site {DEFAULT_SITE} only"
    return what, (f"did you mean '{guess}'? " if guess else "") + (
        f"zoo SAEs: zoo:sae/L<layer>/{DEFAULT_SITE} for layers 0..{depth - 1}, and "
        + ", ".join(domain_zoo_sae_refs())
    )


def parse_sae_key(key: str) -> tuple[int, str]:
    """'7' → (7, 'resid_post'); '7:mlp_out' → (7, 'mlp_out')."""
    m = _SAE_KEY_RE.fullmatch(str(key).strip())
    if not m:
        raise ValueError(
            f"SAE key '{key}' must be LAYER or LAYER:SITE (e.g. '7' or '7:resid_post'), or "
            "'default' for a pattern with {layer} and {site}"
        )
    return int(m.group(1)), _check_site(m.group(2) or DEFAULT_SITE)


# ---------------------------------------------------------------------------------------------
# file schema (pydantic)
# ---------------------------------------------------------------------------------------------


# The entry keys that are loader options (steerlang.data.formats.load_dataset's **options).
DATASET_OPTION_KEYS: tuple[str, ...] = (
    "protocol",
    "image_column",
    "label_column",
    "group_columns",
    "split_column",
    "image_root",
    "config",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetEntry(_Strict):
    format: str
    root: str
    protocol: str | None = None  # Disentangling: 'dp' | 'dyslexify'
    # table and hf_datasets: which columns hold what (docs/real-data.md)
    image_column: str | None = None
    label_column: str | None = None
    group_columns: list[str] | None = None
    split_column: str | None = None
    image_root: str | None = None  # table: the folder image paths are relative to
    config: str | None = None  # hf_datasets: the dataset configuration (hf:NAME roots)

    @model_validator(mode="after")
    def _options_fit_format(self) -> DatasetEntry:
        from steerlang.data.formats import FORMATS

        accepted = FORMATS[self.format].options if self.format in FORMATS else frozenset()
        given = [k for k in DATASET_OPTION_KEYS if getattr(self, k) is not None]
        extra = [k for k in given if k not in accepted]
        if extra:
            raise ValueError(
                f"format '{self.format}' takes no `{extra[0]}`; its options: "
                f"{', '.join(sorted(accepted - {'cache_dir'})) or 'none'}"
            )
        return self

    def options(self) -> dict[str, Any]:
        """The loader options this entry sets (keys of `DATASET_OPTION_KEYS`)."""
        return {k: getattr(self, k) for k in DATASET_OPTION_KEYS if getattr(self, k) is not None}

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v.lower() not in FORMATS:
            raise ValueError(
                f"unknown dataset format '{v}'; {_format_hint(v)}formats: {', '.join(FORMATS)}"
            )
        return v.lower()

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, v: str | None) -> str | None:
        if v is not None and v not in ("dp", "dyslexify"):
            raise ValueError("protocol must be 'dp' (Defense-Prefix) or 'dyslexify'")
        return v


def _check_sae_key(key: str) -> str:
    if key != "default":
        parse_sae_key(key)
    return key


def _check_sae_ref(ref: str) -> str:
    if not ref.strip():
        raise ValueError("empty SAE reference")
    if ref.startswith("zoo:") and "{" not in ref:
        problem = zoo_sae_problem(ref)
        if problem is not None:
            raise ValueError(f"{problem[0]}; {problem[1]}")
    return _check_sae_pattern(ref)


ModelRef = Annotated[str, AfterValidator(check_model_ref)]
SaeKey = Annotated[str, AfterValidator(_check_sae_key)]
SaeRef = Annotated[str, AfterValidator(_check_sae_ref)]


class ReportEntry(_Strict):
    """`report:` in steer.yaml: the thresholds of the report's warnings (docs/report.md).
    A key left out keeps the default in steerlang/report/guards.py."""

    warn_rule_share: float | None = Field(default=None, gt=0, le=1)
    warn_stats_images: int | None = Field(default=None, ge=0)
    warn_group_images: int | None = Field(default=None, ge=0)
    warn_shortcut_points: float | None = Field(default=None, ge=0)


class ProfileFile(_Strict):
    """The `steer.yaml` schema."""

    version: int = 1
    cache: str | None = None
    device: str = "auto"
    models: dict[str, ModelRef] = {}
    saes: dict[str, dict[SaeKey, SaeRef]] = {}
    datasets: dict[str, DatasetEntry] = {}
    report: ReportEntry = ReportEntry()

    @field_validator("saes", mode="before")
    @classmethod
    def _sae_keys_as_text(cls, v: Any) -> Any:
        # YAML reads `7: REF` with an integer key; both spellings mean layer 7.
        if isinstance(v, dict):
            return {
                k: {str(kk): vv for kk, vv in t.items()} if isinstance(t, dict) else t
                for k, t in v.items()
            }
        return v

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != 1:
            raise ValueError(f"profile version {v} is not supported (this steerlang reads 1)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not DEVICE_PATTERN.fullmatch(v):
            raise ValueError(f"device '{v}' must be auto, cpu, cuda, cuda:N or mps")
        return v


MAX_PROFILE_BYTES = 1_000_000


def _format_validation(err: ValidationError, file: str, marks: Marks) -> ProfileError:
    """The profile's pydantic errors through the one readable mapping (steerlang/errors.py),
    each at its YAML line and column."""
    # pydantic marks a problem with a key (not its value) by "[key]" or as an unknown key
    on_key = {
        tuple(p for p in e["loc"] if p != "[key]")
        for e in err.errors()
        if e["type"] == "extra_forbidden" or "[key]" in e["loc"]
    }
    lines = []
    for loc, text in validation_problems(err, known_keys=_profile_keys):
        pos = marks.find(loc, key=loc in on_key)
        where = f"{file}:{pos[0]}:{pos[1]}" if pos else file
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        lines.append(f"{where}: {dotted}: {text}")
    head = (
        lines[0] if len(lines) == 1 else f"{file}: {len(lines)} problems\n  " + "\n  ".join(lines)
    )
    return ProfileError(head, help="fix the key named above; docs/profiles.md gives the schema")


def _profile_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping of the profile accepts (for unknown-key did-you-means)."""
    if loc == ():
        return list(ProfileFile.model_fields)
    if len(loc) == 2 and loc[0] == "datasets":
        return list(DatasetEntry.model_fields)
    return []


# ---------------------------------------------------------------------------------------------
# resolved profile
# ---------------------------------------------------------------------------------------------


@dataclass
class DatasetSpec:
    """A named dataset: its format and root. `root == 'zoo'` means the synthetic world's copy,
    materialised under the cache folder on first use."""

    name: str
    format: str
    root: Path | str
    options: dict[str, Any] = field(default_factory=dict)
    cache_dir: Path = field(default_factory=default_cache_dir)
    zoo_name: str | None = None  # which zoo dataset when root is 'zoo'
    origin: str = "built-in default profile"

    @property
    def is_zoo(self) -> bool:
        return self.root == "zoo"

    def resolve_root(self) -> Path:
        if not self.is_zoo:
            return Path(self.root)
        try:
            from steerlang.zoo import materialize_dataset
        except ImportError as e:
            raise ProfileError(
                f"dataset '{self.name}' ({self.origin}) points at the zoo, but the zoo cannot "
                f"write datasets in this install ({e})",
                help=f"point it at a real copy: --data {self.name}=PATH, or set "
                f"datasets.{self.name}.root in steer.yaml",
            ) from e
        return Path(materialize_dataset(self.zoo_name or self.name, self.cache_dir))

    def load(self, split: str | None = None) -> Any:
        """The dataset as an `ImageTable` (optionally one split)."""
        from steerlang.data.formats import load_dataset

        opts = dict(self.options)
        if self.format == "hf_datasets":
            opts.setdefault("cache_dir", self.cache_dir)
        if isinstance(self.root, str) and self.root.startswith("hf:"):
            return load_dataset(self.format, self.root, split, name=self.name, **opts)
        root = self.resolve_root()
        if not root.exists():
            raise DatasetError(
                f"dataset '{self.name}': root {root} does not exist (set by {self.origin})",
                help=f"fix the root there, or pass --data {self.name}=PATH; steerlang never "
                "downloads datasets (see docs/real-data.md for the layouts)",
            )
        return load_dataset(self.format, root, split, name=self.name, **opts)

    def columns(self) -> tuple[str, ...] | None:
        """The columns loading this dataset gives, read from its metadata file's header (no rows,
        no images; `steerlang.data.formats.dataset_columns`). None when only loading can tell:
        a zoo copy not yet written (its columns are the built-in ones, `facts.DATASET_COLUMNS`)
        or `hf:NAME`. A missing root raises the loader's DatasetError."""
        from steerlang.data.formats import dataset_columns

        if self.is_zoo or (isinstance(self.root, str) and self.root.startswith("hf:")):
            return None
        return dataset_columns(self.format, Path(self.root), **self.options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "root": str(self.root),
            "options": dict(self.options),
            "origin": self.origin,
        }


@dataclass
class Profile:
    """Resolution of recipe names; build with `load_profile` / `default_profile`."""

    models: dict[str, str]
    saes: dict[str, dict[str, str]]
    datasets: dict[str, DatasetSpec]
    cache_dir: Path
    device: str = "auto"
    source: Path | None = None
    model_override: str | None = None
    sae_overrides: dict[tuple[int, str], str] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    # `report:` thresholds given in steer.yaml (only the keys set there)
    report: dict[str, float] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return str(self.source) if self.source else "built-in default profile"

    # ---- models ----------------------------------------------------------------------
    def _model_key(self, name: str) -> tuple[str, str]:
        """(profile key, reference) for a recipe's model name, honouring --model."""
        wanted = self.model_override if self.model_override is not None else name
        if wanted in self.models:
            return wanted, self.models[wanted]
        if wanted.startswith(("zoo:", "openclip:")):
            try:
                check_model_ref(wanted)
            except ValueError as e:
                raise ProfileError(str(e)) from None
            return wanted, wanted
        raise ProfileError(
            f"model '{wanted}' is not defined in {self.origin}",
            help=_did_you_mean(wanted, self.models)
            + f"defined models: {', '.join(self.models)}; add it under `models:` in steer.yaml "
            "or pass --model openclip:NAME@TAG",
        )

    def model_ref(self, name: str = "default") -> str:
        """The model reference (`zoo:tiny-clip`, `openclip:NAME@TAG|PATH`) for a recipe name."""
        ref = self._model_key(name)[1]
        return "zoo:tiny-clip" if ref == "default" else ref

    # ---- SAEs ------------------------------------------------------------------------
    def _resolve_sae(self, ref: str) -> str:
        if _is_path_ref(ref):
            p = Path(_expand(ref))
            return str(p if p.is_absolute() else (self.base_dir / p))
        return ref

    def sae_ref(self, model_name: str, layer: int, site: str = DEFAULT_SITE) -> str:
        """The SAE reference for (model, layer, site): CLI override, then the model's explicit
        `LAYER:SITE` / `LAYER` entries, then its `default` pattern, then the zoo default."""
        try:
            _check_site(site)
        except ValueError as e:
            raise ProfileError(str(e)) from None
        if (layer, site) in self.sae_overrides:
            return self.sae_overrides[(layer, site)]
        key, ref = self._model_key(model_name)
        ref = self.model_ref(model_name)
        for table_key in dict.fromkeys((key, ref)):
            table = self.saes.get(table_key)
            if not table:
                continue
            for k in (f"{layer}:{site}", f"{layer}" if site == DEFAULT_SITE else None):
                if k is not None and k in table:
                    return self._resolve_sae(table[k])
            if "default" in table:
                pattern = table["default"]
                return self._resolve_sae(
                    pattern.format(layer=layer, site=site, hook=f"hook_{site}")
                )
        if ref.startswith("zoo:"):
            return ZOO_SAE_PATTERN.format(layer=layer, site=site)
        raise ProfileError(
            f"no SAE for model '{key}' at layer {layer}, site {site} in {self.origin}",
            help=f'add it to steer.yaml under `saes: {{{key}: {{"{layer}:{site}": REF}}}}` '
            f"(REF = a folder or hf:REPO), or pass --sae {layer}:{site}=REF",
        )

    # ---- datasets --------------------------------------------------------------------
    def dataset(self, name: str) -> DatasetSpec:
        if name in self.datasets:
            return self.datasets[name]
        raise ProfileError(
            f"dataset '{name}' is not defined in {self.origin}",
            help=_did_you_mean(name, self.datasets)
            + f"defined datasets: {', '.join(self.datasets) or 'none'}; add it under "
            f"`datasets:` in steer.yaml or pass --data {name}=PATH",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form for run manifests."""
        return {
            "source": str(self.source) if self.source else None,
            "device": self.device,
            "cache_dir": str(self.cache_dir),
            "models": dict(self.models),
            "model_override": self.model_override,
            "saes": {k: dict(v) for k, v in self.saes.items()},
            "sae_overrides": {f"{lay}:{s}": r for (lay, s), r in self.sae_overrides.items()},
            "datasets": {k: v.to_dict() for k, v in self.datasets.items()},
            "report": dict(self.report),
        }


def _zoo_dataset(name: str, fmt: str, cache_dir: Path, origin: str) -> DatasetSpec:
    return DatasetSpec(
        name=name, format=fmt, root="zoo", cache_dir=cache_dir, zoo_name=name, origin=origin
    )


def default_profile(cache_dir: Path | None = None) -> Profile:
    """Zoo everything: the tiny CLIP, its SAEs and the synthetic world's datasets."""
    cache = cache_dir or default_cache_dir()
    origin = "built-in default profile"
    return Profile(
        models={"default": ZOO_MODEL},
        saes={PRISMA_B32_MODEL: {"default": PRISMA_B32_PATTERN}},
        datasets={n: _zoo_dataset(n, f, cache, origin) for n, f in ZOO_DATASETS.items()},
        cache_dir=cache,
    )


def profile_from_text(
    text: str, file: str = PROFILE_FILENAME, base_dir: Path | None = None
) -> Profile:
    """Validate a profile's YAML text and merge it over the built-in default."""
    data, marks = parse_yaml(text, file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(
            f"{file}:1:1: a profile must be a mapping (keys: {', '.join(ProfileFile.model_fields)})"
        )
    try:
        pf = ProfileFile.model_validate(data)
    except ValidationError as e:
        raise _format_validation(e, file, marks) from None
    base = base_dir or Path(file).resolve().parent
    cache = Path(_expand(pf.cache)) if pf.cache else default_cache_dir()
    if not cache.is_absolute():
        cache = base / cache
    if pf.cache:
        _check_cache_dir(cache, file, marks.find(("cache",)))
    prof = default_profile(cache)
    prof.source = Path(file)
    prof.base_dir = base
    prof.device = pf.device
    prof.report = pf.report.model_dump(exclude_none=True)
    for name, ref in pf.models.items():
        prof.models[name] = _resolve_model_path(ref, base)
    for model, table in pf.saes.items():
        prof.saes.setdefault(model, {}).update(table)
    for name, entry in pf.datasets.items():
        line = marks.find(("datasets", name, "root"))
        origin = f"{file}:{line[0]}" if line else file
        root = entry.root.strip()
        zoo_name: str | None = None
        if root == "zoo" or root.startswith("zoo:"):
            zoo_name = root[4:] if root.startswith("zoo:") else name
            if zoo_name not in ZOO_DATASETS:
                where = f"{file}:{line[0]}:{line[1]}" if line else file
                raise ProfileError(
                    f"{where}: datasets.{name}.root: the zoo has no dataset '{zoo_name}'",
                    help=_did_you_mean(zoo_name, ZOO_DATASETS)
                    + f"zoo datasets: {', '.join(ZOO_DATASETS)}; write root: zoo:NAME",
                )
            spec_root: Path | str = "zoo"
        elif root.startswith("hf:"):
            spec_root = root  # a Hugging Face dataset in the local cache (hf_datasets)
        else:
            p = Path(_expand(root))
            spec_root = p if p.is_absolute() else base / p
        opts = entry.options()
        prof.datasets[name] = DatasetSpec(
            name=name,
            format=entry.format,
            root=spec_root,
            options=opts,
            cache_dir=cache,
            zoo_name=zoo_name,
            origin=origin,
        )
    return prof


def _check_cache_dir(cache: Path, file: str, pos: tuple[int, int] | None) -> None:
    """A profile's `cache:` must be a folder steerlang can write (or create): checked when the
    profile is read, so a bad value is reported at its line, not as an OSError mid-run. The
    check creates and removes one probe file in the nearest existing folder and creates no
    folder itself."""
    where = f"{file}:{pos[0]}:{pos[1]}" if pos else file
    fix = "point `cache:` at a folder you can write, or remove the key to use $STEER_CACHE or ~/.cache/steerlang"
    probe = cache
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file" if probe == cache else f"cannot be created: {probe} is a file"
        raise ProfileError(f"{where}: cache: {cache} {what}", help=fix)
    try:
        import tempfile

        with tempfile.TemporaryFile(dir=probe, prefix=".steer-probe-"):
            pass
    except OSError as e:
        what = "is not writable" if probe == cache else f"cannot be created in {probe}"
        raise ProfileError(
            f"{where}: cache: {cache} {what} ({e.strerror or e})", help=fix
        ) from None


def _resolve_model_path(ref: str, base: Path) -> str:
    """Make `openclip:NAME@./relative/ckpt` absolute against the profile's folder."""
    if ref.startswith("openclip:") and "@" in ref:
        head, tag = ref.split("@", 1)
        if tag.startswith((".", "~", "$")) or "/" in tag:
            p = Path(_expand(tag))
            return f"{head}@{p if p.is_absolute() else base / p}"
    return ref


def load_profile(path: Path | str | None = None) -> Profile:
    """Read `path`, or `./steer.yaml` when None (the built-in zoo profile if there is none)."""
    if path is None:
        found = Path.cwd() / PROFILE_FILENAME
        if not found.is_file():
            return default_profile()
        path = found
    path = Path(path).expanduser()
    if path.is_dir():
        raise ProfileError(
            f"profile {path} is a folder",
            help=f"pass the YAML file itself, e.g. --profile {path / PROFILE_FILENAME}",
        )
    if path.exists() and not path.is_file():
        raise ProfileError(
            f"profile {path} is not a regular file (a device, pipe or socket)",
            help="write the profile to a file and pass its path",
        )
    if not path.is_file():
        raise ProfileError(
            f"profile not found: {path}",
            help="create it (see docs/profiles.md) or drop --profile to use the built-in zoo "
            "profile",
        )
    size = path.stat().st_size
    if size > MAX_PROFILE_BYTES:
        raise ProfileError(
            f"profile {path} is {size:,} bytes; profiles are at most {MAX_PROFILE_BYTES:,}",
            help="check that --profile names the steer.yaml (docs/profiles.md)",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ProfileError(f"cannot read profile {path}: {e}") from e
    return profile_from_text(text, str(path), base_dir=path.resolve().parent)


# ---------------------------------------------------------------------------------------------
# CLI overrides
# ---------------------------------------------------------------------------------------------


def _split_assignment(text: str, flag: str, example: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name.strip() or not value.strip():
        raise ProfileError(f"{flag} '{text}' is not NAME=VALUE", help=f"e.g. {flag} {example}")
    return name.strip(), value.strip()


def apply_overrides(
    profile: Profile,
    *,
    model: str | None = None,
    data: Sequence[str] | None = None,
    sae: Sequence[str] | None = None,
) -> Profile:
    """A copy of `profile` with command-line overrides applied.

    --model NAME|REF, --data NAME=PATH or NAME=FORMAT:PATH (format detected from the files when
    NAME is new and no format is given), --sae LAYER[:SITE]=REF. (`--device` is not a profile
    override: the runtime resolves it together with the profile's `device` when it binds.)
    """
    prof = copy.deepcopy(profile)
    if model is not None:
        prof.model_override = model
        prof._model_key("default")  # validate now, not at the first lookup
    for item in data or ():
        name, spec = _data_override(prof, item)
        prof.datasets[name] = spec
    for item in sae or ():
        key, ref = _split_assignment(item, "--sae", "7:resid_post=hf:ORG/REPO")
        try:
            layer, site = parse_sae_key(key)
        except ValueError as e:
            raise ProfileError(f"--sae {item}: {e}") from None
        if ref.startswith("zoo:"):
            problem = zoo_sae_problem(ref, layer)
            if problem is not None:
                raise ProfileError(f"--sae {item}: {problem[0]}", help=problem[1])
        prof.sae_overrides[(layer, site)] = (
            str(Path(_expand(ref)).resolve()) if _is_path_ref(ref) else ref
        )
    return prof


def _data_override(prof: Profile, item: str) -> tuple[str, DatasetSpec]:
    """`--data NAME=[FORMAT:]PATH` (or `NAME=zoo[:ZOO_NAME]`) as a dataset entry."""
    name, value = _split_assignment(item, "--data", "waterbirds=/data/waterbirds")
    fmt_given, colon, rest = value.partition(":")
    fmt: str | None = None
    if colon and fmt_given.lower() in FORMATS:
        fmt = fmt_given.lower()
        value = rest
    elif (
        colon
        and fmt_given not in ("zoo", "hf")
        and _FORMAT_WORD_RE.fullmatch(fmt_given)
        and not Path(_expand(value)).exists()
    ):
        raise ProfileError(
            f"--data {item}: unknown dataset format '{fmt_given}'",
            help=_format_hint(fmt_given)
            + f"write --data {name}=FORMAT:PATH with a format of: {', '.join(FORMATS)}",
        )
    if value.startswith("hf:"):
        if fmt not in (None, "hf_datasets"):
            raise ProfileError(
                f"--data {item}: hf:NAME roots are Hugging Face datasets (format hf_datasets)",
                help=f"write --data {name}=hf_datasets:{value} or --data {name}={value}",
            )
        return name, DatasetSpec(
            name=name,
            format="hf_datasets",
            root=value,
            cache_dir=prof.cache_dir,
            origin=f"--data {item}",
        )
    if value == "zoo" or value.startswith("zoo:"):
        zoo_name = value[4:] if value.startswith("zoo:") else name
        if zoo_name not in ZOO_DATASETS:
            raise ProfileError(
                f"--data {item}: the zoo has no dataset '{zoo_name}'",
                help=f"zoo datasets: {', '.join(ZOO_DATASETS)}",
            )
        return name, DatasetSpec(
            name=name,
            format=fmt or ZOO_DATASETS[zoo_name],
            root="zoo",
            cache_dir=prof.cache_dir,
            zoo_name=zoo_name,
            origin=f"--data {item}",
        )
    root = Path(_expand(value)).resolve()
    if not root.exists():
        raise ProfileError(
            f"--data {item}: {root} does not exist",
            help="pass the folder the dataset was extracted into",
        )
    existing = prof.datasets.get(name)
    if fmt is None:
        fmt = existing.format if existing is not None else _detect_format(root, item, name, value)
    return name, DatasetSpec(
        name=name,
        format=fmt,
        root=root,
        options=dict(existing.options) if existing and existing.format == fmt else {},
        cache_dir=prof.cache_dir,
        origin=f"--data {item}",
    )


_FORMAT_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]+")
# File and library names users write where a format name goes, and the format that reads them.
_FORMAT_SYNONYMS: dict[str, str] = {
    "csv": "table",
    "parquet": "table",
    "pq": "table",
    "tsv": "table",
    "pandas": "table",
    "hf": "hf_datasets",
    "huggingface": "hf_datasets",
    "datasets": "hf_datasets",
    "arrow": "hf_datasets",
    "wilds": "waterbirds",
    "folder": "imagefolder",
}


def _format_hint(word: str) -> str:
    """`did you mean 'table'? ` for a format name, a file type or a library name."""
    key = word.lower()
    if key in _FORMAT_SYNONYMS:
        return f"did you mean '{_FORMAT_SYNONYMS[key]}'? "
    return _did_you_mean(key, FORMATS)


def _detect_format(root: Path, item: str, name: str, value: str) -> str:
    from steerlang.data.formats import detect_format

    try:
        return detect_format(root)
    except DatasetError as e:
        raise ProfileError(
            f"--data {item}: {e.message}",
            help=f"name the format: --data {name}=FORMAT:{value} (formats: {', '.join(FORMATS)})",
        ) from None
