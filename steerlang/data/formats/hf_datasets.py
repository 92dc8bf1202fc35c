"""Hugging Face `datasets`: a dataset saved with `save_to_disk`, or one in the local cache.

The root is either the folder `Dataset.save_to_disk` / `DatasetDict.save_to_disk` wrote, or
`hf:NAME` (`hf:NAME:CONFIG`) for a dataset `datasets.load_dataset(NAME)` already put in the
local cache (never downloaded: the Hub is switched off while loading). A `DatasetDict`'s
splits become the table's splits (`train`, `validation`/`valid`/`dev`, `test`; any other name
is an error naming it); a single `Dataset` has no splits unless `split_column` names a column.

The image column (the first `Image` feature, or `image_column`) is decoded by Pillow when a
pass reads it, through the same checks as every other format (steerlang/data/table.py). Its
encoded bytes are written once, unchanged, to files under the cache folder, keyed by the
datasets' own fingerprints, so the rest of steerlang (batches, attacks, fingerprints) reads
them as files; images the dataset stores as local file paths are read in place.

Scalar columns are kept (integers and booleans as integers, floats, strings); a `ClassLabel`
column also gets a `<column>_name` column with its class names, which the task's classes are
matched against. `datasets` is an optional dependency.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from steerlang.data.formats.common import split_code
from steerlang.data.table import ImageTable, normalize_split
from steerlang.errors import DatasetError, did_you_mean
from steerlang.files import atomic_write_bytes, atomic_write_text, default_cache_dir

HF_OPTIONS = frozenset(
    {"image_column", "label_column", "group_columns", "split_column", "config", "cache_dir"}
)
_DONE = "complete.json"


def find_root(root: Path) -> Path:
    """`root` when it is a folder `save_to_disk` wrote (a Dataset or a DatasetDict)."""
    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        return root
    raise DatasetError(
        f"{root} is not a folder written by datasets' save_to_disk (no dataset_dict.json or "
        "state.json)",
        help="save the dataset with `ds.save_to_disk(PATH)`, or use root: hf:NAME for a "
        "dataset in the local Hugging Face cache",
    )


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DatasetError(
            "the hf_datasets format needs the `datasets` package, which is not installed",
            help="pip install datasets",
        ) from None
    return datasets


def load_hf_dataset(
    root: Path | str,
    *,
    name: str = "hf_datasets",
    image_column: str | None = None,
    label_column: str | None = None,
    group_columns: Sequence[str] | None = None,
    split_column: str | None = None,
    config: str | None = None,
    cache_dir: Path | str | None = None,
) -> ImageTable:
    datasets = _import_datasets()
    ref = str(root)
    if ref.startswith("hf:"):
        obj, where, base = _from_cache(datasets, ref[3:], config), ref, None
    else:
        base = Path(ref).expanduser()
        if not base.is_dir():
            raise DatasetError(
                f"hf_datasets root not found: {base}",
                help="point it at the folder save_to_disk wrote, or write root: hf:NAME",
            )
        find_root(base)
        try:
            obj = datasets.load_from_disk(str(base))
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
            raise DatasetError(
                f"cannot load the saved dataset {base}: {e}",
                help="the folder may be incomplete; save it again with save_to_disk",
            ) from e
        where = str(base)
    parts = _splits(datasets, obj, where)
    first = parts[0][1]
    features = first.features
    img_col = image_column or next(
        (c for c, f in features.items() if isinstance(f, datasets.Image)), None
    )
    cols = list(features)
    if img_col is None:
        raise DatasetError(
            f"{where}: no Image column among {', '.join(cols)}",
            help="name the column that holds the images: `image_column: COLUMN`",
        )
    named: dict[str, str | None] = {"image_column": img_col, "label_column": label_column}
    if split_column:
        named["split_column"] = split_column
    for i, g in enumerate(group_columns or ()):
        named[f"group_columns[{i}]"] = g
    for key, col in named.items():
        if col is not None and col not in features:
            guess = did_you_mean(col, cols)
            raise DatasetError(
                f"{where}: {key} '{col}' is not a column (columns: {', '.join(cols)})",
                help=(f"did you mean '{guess}'? " if guess else "")
                + f"fix `{key.split('[')[0]}` in the profile's entry for dataset '{name}'",
            )

    ident = hashlib.sha256(
        json.dumps([[s, d._fingerprint] for s, d in parts]).encode()
    ).hexdigest()[:24]
    out_dir = Path(cache_dir or default_cache_dir()) / "hf_datasets" / ident
    paths: list[str] = []
    split_codes: list[int] = []
    source: list[tuple[str, int]] = []
    data: dict[str, list[Any]] = {}
    value_names: dict[str, list[str]] = {}
    for split, ds in parts:
        paths += _image_files(datasets, ds, img_col, out_dir / (split or "all"), where, split)
        if split is not None:
            split_codes += [split_code(split)] * len(ds)
        source += [(f"{where}" + (f" [{split}]" if split else ""), 0)] * len(ds)
        for col, feat in ds.features.items():
            if col == img_col:
                continue
            kind = _kind(datasets, feat)
            if kind is None:
                continue
            values = ds[col]
            data.setdefault(col, []).extend(values)
            if kind == "classlabel":
                value_names[col] = list(feat.names)
                data.setdefault(f"{col}_name", []).extend(
                    feat.names[v] if v is not None and v >= 0 else "" for v in values
                )
    _done(out_dir, len(paths))
    typed: dict[str, Any] = {c: _typed(v) for c, v in data.items()}
    if parts[0][0] is not None:
        if "split" in typed:
            raise DatasetError(
                f"{where}: the dataset has splits and also a column 'split'",
                help="rename the column (ds.rename_column) so the splits can be loaded",
            )
        typed["split"] = np.asarray(split_codes, dtype=np.int64)
    elif split_column:
        codes = np.empty(len(paths), dtype=np.int64)
        for i, v in enumerate(data[split_column]):
            try:
                codes[i] = split_code(v if isinstance(v, int) else str(v))
            except (DatasetError, ValueError):
                raise DatasetError(
                    f"{where}: row {i}: split column '{split_column}' has {v!r}",
                    help="split values are 0/1/2 or train/val/test (and their aliases)",
                ) from None
        typed["split"] = codes
    for g in group_columns or ():
        col = typed[g]
        if not (isinstance(col, np.ndarray) and col.dtype.kind in "iub" and col.min() >= 0):
            raise DatasetError(
                f"{where}: group column '{g}' must hold whole numbers 0, 1, ...",
                help="recode it (ds.map / ClassLabel), or leave it out of group_columns",
            )
    meta: dict[str, Any] = {"image_column": img_col, "value_names": value_names}
    if label_column:
        meta["label_column"] = label_column
    if group_columns:
        meta["group_columns"] = list(group_columns)
    return ImageTable(
        name=name,
        format="hf_datasets",
        root=out_dir,
        paths=paths,
        data=typed,
        classes=value_names.get(label_column or "") if label_column else None,
        meta=meta,
        source=source,
        # the datasets' own content fingerprints identify the labels and images
        sources={f"{where}#{s or 'all'}": d._fingerprint for s, d in parts},
    )


def _from_cache(datasets: Any, spec: str, config: str | None) -> Any:
    """A dataset from the local Hugging Face cache only (the Hub is switched off)."""
    repo, _, cfg = spec.partition(":")
    cfg = cfg or config or None
    import huggingface_hub.constants as hub

    saved = (datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE)
    saved_hub = hub.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
    hub.HF_HUB_OFFLINE = True
    try:
        return datasets.load_dataset(repo, cfg)
    except Exception as e:  # datasets raises many types for "not cached"
        raise DatasetError(
            f"dataset hf:{spec} is not in the local Hugging Face cache ({type(e).__name__}: "
            f"{str(e)[:300]})",
            help=f"steerlang never downloads: run `datasets.load_dataset({repo!r}"
            + (f", {cfg!r}" if cfg else "")
            + ")` once with network access (or save it with save_to_disk and point root at "
            "the folder)",
        ) from None
    finally:
        datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE = saved
        hub.HF_HUB_OFFLINE = saved_hub


def _splits(datasets: Any, obj: Any, where: str) -> list[tuple[str | None, Any]]:
    if isinstance(obj, datasets.Dataset):
        return [(None, obj)]
    out = []
    for key, ds in obj.items():
        try:
            split = normalize_split(key)
        except DatasetError as e:
            raise DatasetError(
                f"{where}: split '{key}' is not a train, val or test split",
                help=(e.help or "")
                + f"; drop or rename it (DatasetDict.pop({key!r}) before save_to_disk)",
            ) from None
        out.append((split, ds))
    if not out:
        raise DatasetError(f"{where}: the DatasetDict has no splits")
    return out


def _kind(datasets: Any, feat: Any) -> str | None:
    if isinstance(feat, datasets.ClassLabel):
        return "classlabel"
    if isinstance(feat, datasets.Value):
        dt = str(feat.dtype)
        if dt.startswith(("int", "uint", "bool", "float", "string", "large_string")):
            return "value"
    return None


def _image_files(
    datasets: Any, ds: Any, col: str, folder: Path, where: str, split: str | None
) -> list[str]:
    """One file path per row: the stored path when the dataset refers to a local file, else
    the row's encoded bytes written once under `folder`."""
    raw = ds.cast_column(col, datasets.Image(decode=False)).select_columns([col])
    done = (folder.parent / _DONE).is_file()
    out: list[str] = []
    # In batches: the column's encoded bytes are read from the memory-mapped Arrow files a
    # batch at a time, never all at once.
    cells = (c for batch in raw.iter(batch_size=256) for c in batch[col])
    for i, cell in enumerate(cells):
        data = (cell or {}).get("bytes")
        path = (cell or {}).get("path")
        if data is None:
            if path and Path(path).is_file():
                out.append(str(Path(path)))
                continue
            raise DatasetError(
                f"{where}: row {i}"
                + (f" of split '{split}'" if split else "")
                + f" has no image in column '{col}'"
                + (f" (missing file {path})" if path else ""),
                help="every row needs an image; filter the empty ones out (ds.filter)",
            )
        target = folder / f"{i:08d}{_suffix(data, path)}"
        if not (done and target.is_file()):
            atomic_write_bytes(target, data, fsync=False)
        out.append(str(target))
    return out


def _suffix(data: bytes, path: str | None) -> str:
    if path and Path(path).suffix:
        return Path(path).suffix.lower()
    try:
        with Image.open(io.BytesIO(data)) as im:  # reads the header only
            return "." + (im.format or "img").lower()
    except Exception:  # undecodable: the read at use names the file and row
        return ".img"


def _done(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / _DONE).is_file():
        atomic_write_text(folder / _DONE, json.dumps({"images": n}) + "\n", fsync=False)


def _typed(values: list[Any]) -> Any:
    if values and all(isinstance(v, bool | int) for v in values):
        return np.asarray([int(v) for v in values], dtype=np.int64)
    return ["" if v is None else v for v in values]


_VALUE_DTYPES = ("int", "uint", "bool", "float", "string", "large_string")


def header_columns(
    root: Path | str,
    *,
    image_column: str | None = None,
    split_column: str | None = None,
    **_options: Any,
) -> tuple[str, ...] | None:
    """The columns `load_hf_dataset` gives a folder `save_to_disk` wrote, from its
    `dataset_info.json` features only (`datasets` is not imported, no rows or images are read);
    None for `hf:NAME` (only `datasets` can find it in its cache: the columns are checked when
    the runtime loads it). The same columns as the loader: scalar values, a ClassLabel column
    and its `<column>_name`, less the image column, plus `split` for a DatasetDict."""
    if str(root).startswith("hf:"):
        return None
    base = find_root(Path(root).expanduser())
    dict_file = base / "dataset_dict.json"
    folders = [base]
    if dict_file.is_file():
        splits = _json_file(dict_file).get("splits") or []
        folders = [base / str(split) for split in splits]
    cols: list[str] = []
    for folder in folders:
        features = _json_file(folder / "dataset_info.json").get("features") or {}
        img_col = image_column or next(
            (c for c, f in features.items() if isinstance(f, dict) and f.get("_type") == "Image"),
            None,
        )
        for col, feat in features.items():
            kind = feat.get("_type") if isinstance(feat, dict) else None
            if col == img_col or col in cols:
                continue
            if kind == "ClassLabel":
                cols += [col, f"{col}_name"]
            elif kind == "Value" and str(feat.get("dtype", "")).startswith(_VALUE_DTYPES):
                cols.append(col)
    if dict_file.is_file() or split_column:
        cols.append("split")
    return tuple(cols)


def _json_file(file: Path) -> dict[str, Any]:
    try:
        out = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(
            f"cannot read {file}: {e}",
            help="the folder may be incomplete; save it again with save_to_disk",
        ) from e
    return out if isinstance(out, dict) else {}
