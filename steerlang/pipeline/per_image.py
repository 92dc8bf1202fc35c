"""Per-image results of the evaluation: the rows of `predictions.csv` and the example images
the report shows (steering fixed / broke, per group; an attacked image beside its original).

Why: an accuracy change is a count of images whose prediction changed. Showing which images
changed, and keeping every image's predictions and margins in the run folder, lets a reader
check that steering fixed the images it should (waterbirds on land) and see what it broke.

Everything here is plain data for the report (`steerlang.report` never reads tables or
images): the predictions as columns, and each example as a small PNG thumbnail (base64).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np

# Thumbnails are small: the report is one self-contained file and may show dozens.
THUMB_SIDE = 96
EXAMPLES_PER_KIND = 4  # per group and kind (fixed, broke)
ATTACK_PAIRS = 4

PREDICTION_COLUMNS = (
    "image",
    "split",
    "label",
    "label_index",
    "group",
    "attacked",
    "attack_word",
    "baseline_pred",
    "steered_pred",
    "baseline_margin",
    "steered_margin",
)


def _image_id(table: Any, i: int) -> str:
    """The image's path relative to the dataset root (else as stored)."""
    p = Path(table.paths[i])
    try:
        return str(p.relative_to(table.root))
    except ValueError:
        return str(p)


def predictions_table(ev: Any, *, split: str, group_columns: list[str]) -> dict[str, list[Any]]:
    """Columns of predictions.csv: one row per evaluated image, and one per attacked copy.

    `label`/`*_pred` are class names, `*_margin` the true class's logit minus the largest
    other logit under the baseline and the steered model (> 0: right), the group columns
    hold the dataset's raw values and `group` the readable group name.
    """
    table = ev.table
    classes = list(ev.classes)
    n = int(ev.n)
    paths = [_image_id(table, i) for i in range(n)]
    labels = np.asarray(ev.labels, dtype=np.int64)
    groups = ev.group_labels or ev.group_names
    gcols = {c: table.column(c).tolist() for c in group_columns}
    attacked_view = ev.attacked_view
    words = attacked_view.column("attack_name").tolist() if attacked_view is not None else [""] * n
    cols: dict[str, list[Any]] = {c: [] for c in PREDICTION_COLUMNS}
    for c in group_columns:
        cols[c] = []
    copies = [("", False)] + ([("_attacked", True)] if attacked_view is not None else [])
    for suffix, attacked in copies:
        b = ev.preds[f"baseline{suffix}"]
        s = ev.preds[f"steered{suffix}"]
        mb = ev.margins.get(f"baseline{suffix}", np.full(n, np.nan))
        ms = ev.margins.get(f"steered{suffix}", np.full(n, np.nan))
        for i in range(n):
            cols["image"].append(paths[i])
            cols["split"].append(split)
            cols["label"].append(classes[labels[i]])
            cols["label_index"].append(int(labels[i]))
            cols["group"].append(groups[int(ev.groups[i])] if ev.groups is not None else "")
            cols["attacked"].append(int(attacked))
            cols["attack_word"].append(words[i] if attacked else "")
            cols["baseline_pred"].append(classes[int(b[i])])
            cols["steered_pred"].append(classes[int(s[i])])
            cols["baseline_margin"].append(_round(mb[i]))
            cols["steered_margin"].append(_round(ms[i]))
            for c in group_columns:
                cols[c].append(gcols[c][i])
    return cols


def _round(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 6)


def thumbnail(image: Any, side: int = THUMB_SIDE) -> str:
    """A PIL image as a `data:image/png;base64,...` URI, fitted into side x side."""
    im = image.convert("RGB").copy()
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _pick(candidates: np.ndarray, margin_gain: np.ndarray, k: int) -> list[int]:
    """Up to k rows, the largest change of margin first (the clearest examples)."""
    if not candidates.size:
        return []
    order = np.argsort(-np.abs(margin_gain[candidates]), kind="stable")
    return [int(candidates[j]) for j in order[:k]]


def examples(ev: Any, *, per_kind: int = EXAMPLES_PER_KIND) -> dict[str, Any]:
    """What the report shows of single images: `fixed_broken`, one entry per group with up to
    `per_kind` images steering fixed (baseline wrong, steered right) and broke (the reverse),
    and `attack_pairs`, attacked copies beside their clean originals (typographic runs)."""
    classes = list(ev.classes)
    y = np.asarray(ev.labels, dtype=np.int64)
    b, s = ev.preds["baseline"], ev.preds["steered"]
    gain = ev.margins.get("steered", np.zeros(len(y))) - ev.margins.get(
        "baseline", np.zeros(len(y))
    )
    gain = np.nan_to_num(gain)
    gids = ev.groups if ev.groups is not None else np.zeros(len(y), dtype=np.int64)
    names = (ev.group_labels or ev.group_names) if ev.groups is not None else ["all images"]
    fixed = (b != y) & (s == y)
    broke = (b == y) & (s != y)

    def item(i: int, table: Any, pred0: np.ndarray, pred1: np.ndarray) -> dict[str, Any]:
        return {
            "image": _image_id(ev.table, i),
            "thumb": thumbnail(table.image(i)),
            "label": classes[y[i]],
            "baseline": classes[int(pred0[i])],
            "steered": classes[int(pred1[i])],
        }

    groups = []
    for g, name in enumerate(names):
        in_g = gids == g
        groups.append(
            {
                "group": name,
                "n": int(in_g.sum()),
                "n_fixed": int((fixed & in_g).sum()),
                "n_broken": int((broke & in_g).sum()),
                "fixed": [
                    item(i, ev.table, b, s)
                    for i in _pick(np.flatnonzero(fixed & in_g), gain, per_kind)
                ],
                "broken": [
                    item(i, ev.table, b, s)
                    for i in _pick(np.flatnonzero(broke & in_g), gain, per_kind)
                ],
            }
        )
    out: dict[str, Any] = {"fixed_broken": groups, "attack_pairs": []}
    view = ev.attacked_view
    if view is not None:
        ba, sa = ev.preds["baseline_attacked"], ev.preds["steered_attacked"]
        # Attacked copies steering fixed first, then any the baseline got wrong, then the rest.
        fixed_att = ((ba != y) & (sa == y)).astype(int)
        order = np.lexsort((np.arange(len(y)), -(ba != y).astype(int), -fixed_att))
        words = view.column("attack_name").tolist()
        for i in order[:ATTACK_PAIRS].tolist():
            out["attack_pairs"].append(
                {
                    **item(i, ev.table, b, s),
                    "attacked_thumb": thumbnail(view.image(i)),
                    "word": words[i],
                    "baseline_attacked": classes[int(ba[i])],
                    "steered_attacked": classes[int(sa[i])],
                }
            )
    return out


def per_image_results(
    ir: Any, ev: Any | None
) -> tuple[dict[str, list[Any]] | None, dict[str, Any] | None]:
    """(predictions.csv's columns, the report's examples) of an evaluation, or (None, None)."""
    if ev is None or ev.table is None:
        return None, None
    cols = predictions_table(ev, split=str(ir.setting("eval_split")), group_columns=list(ir.groups))
    return cols, examples(ev)
