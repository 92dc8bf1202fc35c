"""`columns_reader`: a recipe's dataset name -> the bound dataset's columns, through the profile
and `--data`; None (the compiler's built-in columns) wherever they cannot be read cheaply."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from steerlang.commands.dataset_columns import columns_reader
from steerlang.lang.api import compile_text


def _csv(path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "bird", "photographer"])
        w.writerow(["a.png", 1, "p0"])
    return path


RECIPE = """steer 1
recipe r "r"
model default
dataset birds
task classify bird as ["landbird", "waterbird"] prompt "a photo of a {{}}."
concept c = {column} == "p0"
rule r1: at layer 3 suppress features where corr(c) > 0.05
"""


def test_profile_and_data_entries(tmp_path: Path) -> None:
    table = _csv(tmp_path / "t.csv")
    profile = tmp_path / "steer.yaml"
    profile.write_text(f"datasets:\n  birds: {{format: table, root: {table}}}\n")
    assert columns_reader(str(profile))("birds") == ("file", "bird", "photographer")
    # --data wins over the profile's entry, as at run time
    other = _csv(tmp_path / "other.csv")
    other.write_text("path,label\nx.png,0\n")
    assert columns_reader(str(profile), [f"birds=table:{other}"])("birds") == ("path", "label")


def test_unreadable_means_builtin_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./steer.yaml: the built-in zoo profile
    read = columns_reader(None, [f"birds=table:{tmp_path / 'missing.csv'}"])
    assert read("birds") is None  # missing root: the runtime reports it when it binds
    assert read("unknown") is None  # not in the profile
    assert columns_reader(str(tmp_path / "no.yaml"))("birds") is None  # broken profile
    assert columns_reader(None)("waterbirds") is None  # the zoo copy: built-in columns


def test_compiler_uses_the_bound_columns(tmp_path: Path) -> None:
    read = columns_reader(None, [f"birds=table:{_csv(tmp_path / 't.csv')}"])
    ok = compile_text(RECIPE.format(column="photographer"), "r.steer", dataset_columns=read)
    assert ok.ok, ok.render(color=False)
    bad = compile_text(RECIPE.format(column="photografer"), "r.steer", dataset_columns=read)
    assert [d.code for d in bad.errors] == ["E105"]
    assert bad.errors[0].help == "did you mean `photographer`?"
    # without the reader, `birds` is no built-in name: its columns are unknown, nothing checked
    assert compile_text(RECIPE.format(column="photografer"), "r.steer").ok


def test_an_hf_datasets_column_misspelt_in_a_recipe_gets_the_did_you_mean(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="the hf_datasets format needs `datasets`")
    from PIL import Image

    ds = datasets.Dataset.from_dict(
        {"image": [Image.new("RGB", (4, 4))] * 2, "bird": [0, 1], "photographer": ["p0", "p1"]},
        features=datasets.Features(
            {
                "image": datasets.Image(),
                "bird": datasets.Value("int64"),
                "photographer": datasets.Value("string"),
            }
        ),
    )
    ds.save_to_disk(str(tmp_path / "birds"))
    read = columns_reader(None, [f"birds=hf_datasets:{tmp_path / 'birds'}"])
    ok = compile_text(RECIPE.format(column="photographer"), "r.steer", dataset_columns=read)
    assert ok.ok, ok.render(color=False)
    bad = compile_text(RECIPE.format(column="photografer"), "r.steer", dataset_columns=read)
    assert [d.code for d in bad.errors] == ["E105"]
    assert bad.errors[0].help == "did you mean `photographer`?"
