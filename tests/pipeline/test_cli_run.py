"""The runtime commands end to end through `steer ...` (in process): run, plan, explain, sweep
on a tiny random open_clip model with tiny SAEs, over fixtures in every dataset format."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from steerlang.cli import main

MODEL = "openclip:steer-tiny-cli@random"

HEADER = """steer 1
recipe {name} "cli test"
model default
dataset {dataset}
"""

RECIPES = {
    "waterbirds": """task classify y as ["landbird", "waterbird"] prompt "a photo of a {{}}."
groups y, place
concept water = place == 1
param thr = 0.05
set batch_size = 32
set attack = "typographic"
rule bg: at layer 3 suppress features where corr(water) > thr
rule topw: at layer 7 tokens patches scale top 3 features by corr(water) by 0.5
rule pin: at layer 7 mean-ablate features 1, 2
""",
    "celeba": """task classify Blond_Hair as ["dark hair", "blond hair"]
groups Blond_Hair, Male
concept male = Male == 1
set classifier = "linear_probe"
rule gender: at layer 7 suppress top 4 features by corr(male) where freq() > 0
""",
    "typographic": """task classify label as ["boat", "car", "cat", "cup", "dog", "tree"]
concept dogs = label_name == "dog"
rule reading: at layer 7 suppress features where corr(dogs) > 0.2 or max() > 100
""",
    "disentangling": """task classify label as ["boat", "car", "cup", "dog", "tree"] prompt "a photo of {{}}."
concept cups = label_name == "cup"
rule r1: at layer 3 scale features where corr(cups) > 0.1 by 0.0
""",
    "imagefolder": """task classify label_name as ["car", "cat", "dog"]
concept cars = label == 0
rule r1: at layer 11 suppress bottom 2 features by mean(not cars)
""",
}


class _Datasets:
    """Dataset fixtures written on first use (each test pays only for the formats it runs)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[str, Path] = {}

    def __getitem__(self, fmt: str) -> Path:
        if fmt not in self.made:
            from steerlang.data import fixtures as F

            t = self.root / fmt
            self.made[fmt] = {
                "waterbirds": lambda: F.make_waterbirds_fixture(t, scale=200, image_size=32),
                "celeba": lambda: F.make_celeba_fixture(t, scale=2000, image_size=(32, 40)),
                "typographic": lambda: F.make_typographic_fixture(t, n_per_class=2, image_size=32),
                "disentangling": lambda: F.make_disentangling_fixture(t, image_size=32),
                "imagefolder": lambda: F.make_imagefolder_fixture(t, n_per_class=3, image_size=32),
            }[fmt]()
        return self.made[fmt]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> _Datasets:
    return _Datasets(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module", autouse=True)
def tiny_model_name() -> None:
    from steerlang.model.clip import TINY_CONFIG, register_model_config

    register_model_config("steer-tiny-cli", TINY_CONFIG)


def _recipe(tmp: Path, fmt: str) -> Path:
    p = tmp / f"{fmt}.steer"
    p.write_text(HEADER.format(name=f"{fmt}_cli", dataset="d") + RECIPES[fmt].format())
    return p


def _args(fmt: str, root: Path, sae_dirs: dict[int, Path], tmp: Path) -> list[str]:
    out = ["--model", MODEL, "--data", f"d={fmt}:{root}", "--device", "cpu"]
    for layer, d in sae_dirs.items():
        out += ["--sae", f"{layer}={d}"]
    return out + ["--out", str(tmp / "runs")]


def _run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[dict[str, Any], str]:
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return json.loads(cap.out), cap.err


def test_waterbirds_run_twice_plan_and_explain(
    datasets: _Datasets,
    sae_dirs: dict[int, Path],
    tmp_path: Path,
    monkeypatch: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    recipe = _recipe(tmp_path, "waterbirds")
    args = _args("waterbirds", datasets["waterbirds"], sae_dirs, tmp_path)
    first, err1 = _run_json(capsys, ["run", str(recipe), "--json", *args])
    assert "computing statistics" in err1
    second, err2 = _run_json(capsys, ["run", str(recipe), "--json", *args])
    for key in first["statistics"]["keys"].values():
        assert f"using cached statistics {key}" in err2
    assert second["metrics"] == first["metrics"]
    m = first["metrics"]
    # (the intervals are seeded: equal across the two runs, as the line above checks)
    assert set(m) == {"baseline", "steered", "attack", "intervals"}
    for which in ("baseline", "steered"):
        a = m["attack"][which]
        assert a["drop"] == pytest.approx(a["clean"] - a["attacked"])
        assert a["clean"] == pytest.approx(m[which]["accuracy"])  # same clean images
    run_dir = Path(first["run_dir"])
    plan_on_disk = json.loads((run_dir / "plan.json").read_text())

    # `steer plan` gives the same plan (statistics from the cache).
    plan, err3 = _run_json(capsys, ["plan", str(recipe), *args[:-2]])
    assert plan == plan_on_disk
    assert "using cached statistics" in err3
    # `steer explain` (text) names every rule, its near misses and the overlap winners.
    rc = main(["explain", str(recipe), *args[:-2]])
    out = capsys.readouterr().out
    assert rc == 0 and "rule topw" in out and "near misses" in out
    assert "overridden by later rules" in out or plan["overrides"] == []


def test_explain_with_a_statistics_file_needs_no_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = _recipe(tmp_path, "waterbirds")
    stats = tmp_path / "stats.yaml"
    stats.write_text(
        """n_features: 5
stats:
  "3": {corr:water: [0.9, 0.04, 0.06, -0.5, 0.3]}
  "7:resid_post:patches": {corr:water: [0.1, 0.2, 0.3, 0.4, 0.5]}
  "7": {mean: [1, 2, 3, 4, 5]}
"""
    )
    ex, _ = _run_json(capsys, ["explain", str(recipe), "--stats", str(stats), "--json"])
    rows = {r["rule"]: r for r in ex["rules"]}
    assert rows["bg"]["selected_ids"] == [0, 2, 4] and rows["bg"]["rejected"] == 2
    assert rows["bg"]["thresholds"] == [{"stat": "corr:water", "op": ">", "threshold": 0.05}]
    assert [m["feature"] for m in rows["bg"]["near_misses"]] == [1]  # 0.04 is within 0.05
    assert rows["topw"]["selected_ids"] == [4, 3, 2]  # rank order
    assert rows["topw"]["lost_to"] == {"2": "pin"}  # the later rule wins feature 2
    assert [(o["feature"], o["winner"], o["overridden"]) for o in ex["overrides"]] == [
        (2, "pin", ["topw"])
    ]
    rc = main(["explain", str(recipe), "--stats", str(stats), "--rule", "bgg"])
    assert rc == 1 and "did you mean" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["celeba", "typographic", "disentangling", "imagefolder"])
def test_run_on_every_dataset_format(
    fmt: str,
    datasets: _Datasets,
    sae_dirs: dict[int, Path],
    tmp_path: Path,
    monkeypatch: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    recipe = _recipe(tmp_path, fmt)
    rep, err = _run_json(
        capsys, ["run", str(recipe), "--json", *_args(fmt, datasets[fmt], sae_dirs, tmp_path)]
    )
    base = rep["metrics"]["baseline"]
    assert 0.0 <= base["accuracy"] <= 1.0 and base["n"] == rep["dataset"]["n_eval"] > 0
    if fmt in ("typographic", "disentangling"):
        assert "text_rate" in base  # the images carry a written word
    if fmt == "celeba":
        assert rep["classifier"]["kind"] == "linear_probe"
        assert len(base["per_group"]) == 4
    if fmt in ("typographic", "disentangling", "imagefolder"):
        assert "no splits" in err  # statistics and evaluation share images: said loudly
    assert (Path(rep["run_dir"]) / "report.html").is_file()


def test_sweep_reports_sae_and_neuron_fractions(
    datasets: _Datasets,
    sae_dirs: dict[int, Path],
    tmp_path: Path,
    monkeypatch: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    vocab = tmp_path / "words.txt"
    vocab.write_text("bird\nwater\nland\ntree\nboat\nsky\n")
    args = [
        "sweep",
        "--vocabulary",
        str(vocab),
        "--layer",
        "11",
        "--sample",
        "1/6",
        "--images",
        "4",
        "--json",
        "--model",
        MODEL,
        "--dataset",
        "d",
        "--data",
        f"d=waterbirds:{datasets['waterbirds']}",
        "--sae",
        f"11={sae_dirs[11]}",
        "--device",
        "cpu",
    ]
    rep, _ = _run_json(capsys, args)
    sae, neu = rep["results"]
    assert (sae["kind"], sae["n_units"]) == ("sae", 8)  # 48 features, every 6th
    assert (neu["kind"], neu["n_units"]) == ("neuron", 64)  # every residual coordinate
    for r in (sae, neu):
        assert r["n_steerable"] == round(r["fraction_steerable"] * r["n_units"])
        assert r["n_images"] == 4 and r["strength"] == 150.0 and r["threshold"] == 0.1
    rep2, err = _run_json(capsys, args)
    assert "using cached steerability" in err and rep2 == rep


def test_recipe_sae_lines_resolve_relative_to_the_recipe_and_sites_must_match(
    datasets: _Datasets,
    sae_dirs: dict[int, Path],
    tmp_path: Path,
    monkeypatch: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "saes").symlink_to(sae_dirs[3].parent)
    recipe = tmp_path / "r.steer"
    recipe.write_text(
        HEADER.format(name="r", dataset="d")
        + 'task classify label_name as ["car", "cat", "dog"]\n'
        + 'sae at layer 3 = "saes/L3"\n'
        + "rule r1: at layer 3 suppress features 0, 5\n"
    )
    base = [
        "--model",
        MODEL,
        "--data",
        f"d=imagefolder:{datasets['imagefolder']}",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "runs"),
    ]
    rep, _ = _run_json(capsys, ["run", str(recipe), "--json", *base])
    assert rep["saes"] == {"3:resid_post": str(tmp_path / "saes" / "L3")}
    assert rep["plan"]["n_edits"] == 2 and rep["statistics"]["keys"] == {}  # ids need no stats
    rc = main(["run", str(recipe), *base, "--sae", f"3={sae_dirs[7]}"])
    err = capsys.readouterr().err
    assert rc == 1 and "trained on blocks.7.hook_resid_post" in err and "help:" in err


# ------------------------------------------------------------------------------------------
# --out: checked before any work; a failed write at the end keeps the results
# ------------------------------------------------------------------------------------------


def _no_model(monkeypatch: Any) -> None:
    """Fail the test if the run gets as far as binding (loading the model, SAEs, data)."""

    def bind(*a: Any, **k: Any) -> None:
        raise AssertionError("the run bound a model before checking --out")

    monkeypatch.setattr("steerlang.pipeline.run.bind", bind)
    monkeypatch.setattr("steerlang.pipeline.bind.bind", bind)


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_out_naming_a_file_fails_before_any_work(
    where: str,
    datasets: _Datasets,
    sae_dirs: dict[int, Path],
    tmp_path: Path,
    monkeypatch: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Works as root (CI): a file in the way stops root as it stops anyone."""
    _no_model(monkeypatch)
    recipe = _recipe(tmp_path, "waterbirds")
    f = tmp_path / "results.txt"
    f.write_text("not a folder")
    out = f if where == "file" else f / "runs"
    args = _args("waterbirds", datasets["waterbirds"], sae_dirs, tmp_path)[:-2]
    rc = main(["run", str(recipe), "--json", *args, "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 1 and cap.out == ""
    assert f"{f} is a file, not a folder" in cap.err and "help: pass `--out DIR`" in cap.err
    assert "Traceback" not in cap.err and f.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_out_fails_before_any_work(
    datasets: _Datasets,
    sae_dirs: dict[int, Path],
    tmp_path: Path,
    monkeypatch: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _no_model(monkeypatch)
    recipe = _recipe(tmp_path, "waterbirds")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        args = _args("waterbirds", datasets["waterbirds"], sae_dirs, tmp_path)[:-2]
        rc = main(["run", str(recipe), *args, "--out", str(ro)])
    finally:
        ro.chmod(0o700)
    err = capsys.readouterr().err
    assert rc == 1 and f"cannot write in {ro}" in err


def test_a_write_failing_at_the_end_still_reports_and_says_where(
    datasets: _Datasets,
    sae_dirs: dict[int, Path],
    tmp_path: Path,
    monkeypatch: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The disk fills while the run folder is written: the numbers reach stdout, the kept
    folder holds report.json, and the error names it."""
    import errno

    from steerlang.report import folder

    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    real_write = folder._write

    def full_disk(path: Path, text: str) -> None:
        if path.name == "report.html":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, text)

    monkeypatch.setattr(folder, "_write", full_disk)
    recipe = _recipe(tmp_path, "imagefolder")
    args = _args("imagefolder", datasets["imagefolder"], sae_dirs, tmp_path)
    rc = main(["run", str(recipe), "--json", *args])
    cap = capsys.readouterr()
    assert rc == 1 and "Traceback" not in cap.err
    printed = json.loads(cap.out)
    kept = Path(printed["run_dir"])
    assert kept.parent == tmp_path / "runs" and kept.name.startswith(".imagefolder_cli-")
    assert "No space left on device" in cap.err and f"kept in {kept}" in cap.err
    on_disk = json.loads((kept / "report.json").read_text())
    assert on_disk["metrics"] == printed["metrics"] and "accuracy" in on_disk["metrics"]["baseline"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [kept.name]
