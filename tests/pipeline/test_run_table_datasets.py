"""`steer run` end to end on CPU with the zoo model over a `table` (CSV) dataset and a
`hf_datasets` dataset (saved to disk) holding the same images and labels: both runs must
report the same numbers, and a misspelt column stops the run before a model loads. The same
for an extra column of a Waterbirds metadata.csv: the recipe compiles against the folder's
real columns (steerlang/commands/dataset_columns.py)."""

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
    """`steer run` compiles against the table's header: E105 with the did-you-mean, before
    anything loads."""
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
    assert "error[E105]: unknown column `photograher`" in err
    assert "did you mean `photographer`?" in err
    assert "columns of `birds`: file, bird, background, subset, photographer" in err


def test_runtime_column_check_backs_up_the_compiler(sources: dict[str, Path]) -> None:
    """Compiled without the dataset's columns (plain `steer check`, the notebook's in-memory
    tables), a misspelt column is still stopped when the runtime binds the table."""
    from steerlang.data import load_dataset
    from steerlang.data.columns import check_recipe_columns
    from steerlang.errors import DatasetError
    from steerlang.lang.api import compile_text

    recipe = RECIPE.format(
        name="typo", dataset="birds", label="bird", extra='photograher != "nobody"'
    )
    res = compile_text(recipe, "typo.steer")
    assert res.ok and res.ir is not None  # `birds` is no built-in name: nothing to check
    table = load_dataset("table", sources["csv"], name="birds")
    with pytest.raises(DatasetError) as e:
        check_recipe_columns(res.ir, table)
    assert (
        "concept `water` reads the column 'photograher', which dataset 'birds' (table, "
        f"{sources['csv']}) does not have" in e.value.message
    )
    assert "did you mean 'photographer'?" in (e.value.help or "")


WATERBIRDS_RECIPE = """steer 1
recipe {name} "{name}"
model default
dataset waterbirds
task classify y as ["landbird", "waterbird"] prompt "a photo of a {{}}."
groups y, place
concept water = {column} == 1
set batch_size = 32
rule bg: at layer 3 suppress features where corr(water) > 0.05
"""


@pytest.fixture(scope="module")
def wb_extra(sources: dict[str, Path]) -> Path:
    """The Waterbirds fixture with one extra metadata.csv column, `background_type`."""
    import shutil

    root = sources["csv"].parent / "wb_extra"
    if not root.is_dir():
        shutil.copytree(sources["csv"].parent / "wb", root)
        lines = (root / "metadata.csv").read_text().splitlines()
        out = [lines[0] + ",background_type"]
        out += [line + "," + line.split(",")[4] for line in lines[1:]]  # = place
        (root / "metadata.csv").write_text("\n".join(out) + "\n")
    return root


def test_waterbirds_extra_column_runs(
    wb_extra: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`dataset waterbirds` bound to a folder whose metadata.csv has an extra column: a concept
    on it compiles against the folder's header and runs, and selects what the same concept on
    `place` (the column it copies) selects."""
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    profile = tmp_path / "steer.yaml"
    profile.write_text(f"datasets:\n  waterbirds: {{format: waterbirds, root: {wb_extra}}}\n")
    args = ["--profile", str(profile)]
    recipe = WATERBIRDS_RECIPE.format(name="wb_extra", column="background_type")
    rc, extra, err = _run(tmp_path, capsys, recipe, args)
    assert rc == 0, err
    assert extra is not None and extra["dataset"]["format"] == "waterbirds"
    assert extra["metrics"]["baseline"]["n"] == 28
    recipe = WATERBIRDS_RECIPE.format(name="wb_place", column="place")
    rc, place, err = _run(tmp_path, capsys, recipe, args)
    assert rc == 0, err
    assert place is not None
    assert extra["plan"]["sites"] == place["plan"]["sites"]
    assert extra["metrics"] == place["metrics"]


def test_waterbirds_misspelt_extra_column(
    wb_extra: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt extra column: E105 with the did-you-mean among the folder's real columns,
    from `steer check --data` as from `steer run`; with no dataset bound, `steer check` knows
    only the built-in columns, as before."""
    path = tmp_path / "r.steer"
    path.write_text(WATERBIRDS_RECIPE.format(name="typo", column="backgroud_type"))
    assert main(["check", str(path), "--data", f"waterbirds={wb_extra}"]) == 1
    out = capsys.readouterr().out
    assert "error[E105]: unknown column `backgroud_type`" in out
    assert "did you mean `background_type`?" in out
    assert "place_filename, background_type" in out

    path.write_text(WATERBIRDS_RECIPE.format(name="ok", column="background_type"))
    assert main(["check", str(path), "--data", f"waterbirds={wb_extra}"]) == 0
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "error[E105]: unknown column `background_type`" in out
    assert "columns of `waterbirds`: img_id, img_filename, y, split, place, place_filename, " in out
