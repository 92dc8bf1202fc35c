"""`steer compare` (steerlang/commands/compare.py) on run folders written by hand: metrics side
by side with exact differences, and the shared and unshared features."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steerlang.cli import main


def _run(root: Path, name: str, acc: float, wg: float, feats: dict[int, list[int]]) -> Path:
    d = root / name
    d.mkdir(parents=True)
    metrics = {
        "baseline": {"accuracy": 0.8, "worst_group": 0.5},
        "steered": {"accuracy": acc, "worst_group": wg},
    }
    (d / "report.json").write_text(json.dumps({"recipe": {"name": "wb"}, "metrics": metrics}))
    sites = [
        {"layer": layer, "site": "resid_post", "edits": [{"feature": f} for f in fs]}
        for layer, fs in feats.items()
    ]
    (d / "plan.json").write_text(json.dumps({"params": {"L": name}, "sites": sites}))
    return d


def test_metrics_differences_and_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _run(tmp_path, "a", 0.9, 0.75, {7: [1, 2, 3]})
    b = _run(tmp_path, "b", 0.85, 0.8, {7: [2, 3, 4], 8: [9]})
    assert main(["compare", str(a), str(b), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["key"]: r for r in doc["metrics"]}
    assert rows["steered.accuracy"]["values"] == [0.9, 0.85]
    assert rows["steered.accuracy"]["diff_from_first"][1] == pytest.approx(-0.05)
    assert rows["steered.worst_group"]["diff_from_first"][1] == pytest.approx(0.05)
    assert rows["baseline.accuracy"]["diff_from_first"] == [0.0, 0.0]
    f7 = doc["features"]["L7 resid_post"]
    assert f7["in_all"] == [2, 3]
    assert f7["only_in"] == {"a": [1], "b": [4]}
    assert f7["shared_with_first"] == {"b": 2}
    assert doc["features"]["L8 resid_post"]["only_in"] == {"b": [9]}
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "+5.0" in out and "-5.0" in out


def test_not_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _run(tmp_path, "a", 0.9, 0.75, {7: [1]})
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(a), str(tmp_path / "empty")]) == 1
    assert "not a finished run folder" in capsys.readouterr().err
    assert main(["compare", str(a)]) == 1
