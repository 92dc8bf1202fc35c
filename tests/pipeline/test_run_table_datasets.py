"""`steer run` end to end on CPU with the zoo model over a `table` (CSV) dataset and a
`hf_datasets` dataset (saved to disk) holding the same images and labels: both runs must
report the same numbers, and a misspelt column stops the run before a model loads."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from steerlang.cli import main

RECIPE = """steer 1
recipe {name} "{name}"
model default
dataset {dataset}
task classify {label} as ["landbird", "waterbird"] prompt "a photo of a {{}}."
groups {label}, background
concept water = background == 1 and {extra}
set batch_size = 32
rule bg: at layer 3 suppress features where corr(water) > 0.05
"""


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Waterbirds fixture re-published as a CSV table and as a saved DatasetDict."""
    from steerlang.data import load_dataset, make_waterbirds_fixture

    base = tmp_path_factory.mktemp("tables")
    wb = load_dataset("waterbirds", make_waterbirds_fixture(base / "wb", scale=200, image_size=32))
    names = ["train", "validation", "test"]
    with (base / "birds.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "bird", "background", "subset", "photographer"])
        for r in wb.rows:
            rel = Path(r["path"]).relative_to(base)
            w.writerow([rel, r["y"], r["place"], names[r["split"]], f"p{r['img_id'] % 3}"])
    out = {"csv": base / "birds.csv"}
    try:
        import datasets
        from PIL import Image
    except ImportError:
        return out
    feats = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=["landbird", "waterbird"]),
            "background": datasets.Value("int64"),
            "photographer": datasets.Value("string"),
        }
    )
    parts = {}
    for code, split in enumerate(names):
        rows = [r for r in wb.rows if r["split"] == code]
        parts[split] = datasets.Dataset.from_dict(
            {
                "image": [Image.open(r["path"]).convert("RGB") for r in rows],
                "label": [r["y"] for r in rows],
                "background": [r["place"] for r in rows],
                "photographer": [f"p{r['img_id'] % 3}" for r in rows],
            },
            features=feats,
        )
    datasets.DatasetDict(parts).save_to_disk(str(base / "hf"))
    out["hf"] = base / "hf"
    return out


def _run(
    tmp: Path, capsys: pytest.CaptureFixture[str], recipe: str, args: list[str]
) -> tuple[int, dict[str, Any] | None, str]:
    path = tmp / "r.steer"
    path.write_text(recipe)
    rc = main(
        ["run", str(path), "--json", "-q", "--device", "cpu", "--out", str(tmp / "runs"), *args]
    )
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 else None), cap.err


def test_table_and_hf_datasets_runs_agree(
    sources: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    profile = tmp_path / "steer.yaml"
    profile.write_text(
        "datasets:\n"
        "  birds:\n"
        "    format: table\n"
        f"    root: {sources['csv']}\n"
        "    image_column: file\n"
        "    label_column: bird\n"
        "    group_columns: [bird, background]\n"
        "    split_column: subset\n"
    )
    recipe = RECIPE.format(
        name="birds_table", dataset="birds", label="bird", extra='photographer != "nobody"'
    )
    rc, table_report, err = _run(tmp_path, capsys, recipe, ["--profile", str(profile)])
    assert rc == 0, err
    assert table_report is not None
    assert table_report["dataset"]["format"] == "table"
    base = table_report["metrics"]["baseline"]
    assert base["n"] == 28 and base["group_counts"] == [11, 11, 3, 3]
    assert table_report["plan"]["sites"] and table_report["statistics"]

    if "hf" not in sources:
        pytest.skip("the hf_datasets half needs `datasets` (optional)")
    recipe = RECIPE.format(
        name="birds_hf", dataset="pets", label="label", extra='photographer != "nobody"'
    )
    rc, hf_report, err = _run(
        tmp_path, capsys, recipe, ["--data", f"pets=hf_datasets:{sources['hf']}"]
    )
    assert rc == 0, err
    assert hf_report is not None and hf_report["dataset"]["format"] == "hf_datasets"
    # the same pixels (PNG keeps the decoded JPEG exactly) and labels: the same numbers
    assert hf_report["metrics"] == table_report["metrics"]
    assert hf_report["plan"]["sites"] == table_report["plan"]["sites"]


def test_misspelt_column_stops_before_the_model(
    sources: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    import steerlang.model.clip as clip

    def no_model(*a: Any, **k: Any) -> None:
        raise AssertionError("the model loaded before the column check")

    monkeypatch.setattr(clip, "load_model", no_model)
    recipe = RECIPE.format(
        name="typo", dataset="birds", label="bird", extra='photograher != "nobody"'
    )
    rc, _, err = _run(tmp_path, capsys, recipe, ["--data", f"birds=table:{sources['csv']}"])
    assert rc != 0
    assert (
        "concept `water` reads the column 'photograher', which dataset 'birds' (table, "
        f"{sources['csv']}) does not have" in err
    )
    assert "did you mean 'photographer'?" in err
