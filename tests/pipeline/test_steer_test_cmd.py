"""`steer test`: promtool-style rule tests on synthetic statistics tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from steerlang.cli import main
from steerlang.commands.test import run_file

FIXTURES = Path(__file__).parent / "fixtures"


def test_fixture_file_passes(capsys: pytest.CaptureFixture[str]) -> None:
    results = run_file(FIXTURES / "rules.steertest.yaml")
    assert [r.ok for r in results] == [True, True, True], [r.problems for r in results]
    assert main(["test", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "3 passed, 0 failed"


def test_wrong_expectation_fails_with_a_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.steer").write_text((FIXTURES / "rules.steer").read_text())
    (tmp_path / "bad.steertest.yaml").write_text(
        """recipe: rules.steer
tests:
  - name: wrong ids
    stats:
      "7": {corr:water: [0.9, 0.1, 0.35, 0.29, 0.5], freq: [0.1, 0.1, 0.1, 0.1, 0.1]}
      "9": {top_concept: [text], promotes:text: [0.0]}
    expect:
      "7": [0, 1]
"""
    )
    assert main(["test", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "missing [], extra [2, 3, 4]" in out


def test_recipe_errors_are_reported(tmp_path: Path) -> None:
    (tmp_path / "broken.steer").write_text("steer 1\nat layer 7 supress features 1\n")
    (tmp_path / "b.steertest.yaml").write_text(
        "recipe: broken.steer\ntests:\n  - name: x\n    n_features: 3\n    expect: {}\n"
    )
    (res,) = run_file(tmp_path / "b.steertest.yaml")
    assert not res.ok and "does not compile" in res.problems[0] and "supress" in res.problems[0]
