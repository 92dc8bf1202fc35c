"""What `steer compile` prints for every recipe and fixture, and what `steer plan` prints for the
waterbirds recipe, are exactly what tests/golden/expected/ recorded (see tests/golden/golden_outputs.py
for how it was recorded and for the slower `steer run` comparison)."""

from __future__ import annotations

import json

import golden_outputs as outputs
import pytest


@pytest.fixture(scope="module")
def found() -> dict[str, dict[str, object]]:
    return outputs.gather(with_runs=False)


@pytest.mark.parametrize("kind", ["compile", "plan"])
def test_outputs_equal_the_recorded_ones(found: dict[str, dict[str, object]], kind: str) -> None:
    expected = json.loads((outputs.STORE / f"{kind}.json").read_text())
    assert set(found[kind]) == set(expected)
    for key, value in expected.items():
        assert found[kind][key] == value, f"{kind} {key}"


def test_every_steer_file_is_covered(found: dict[str, dict[str, object]]) -> None:
    assert len(found["compile"]) == len(outputs.steer_files()) > 50
    recorded = json.loads((outputs.STORE / "compile.json").read_text())
    assert any(v["rc"] == 1 and "error[" in v["stderr"] for v in recorded.values())


@pytest.mark.slow
def test_runs_equal_the_recorded_ones() -> None:
    found = outputs.gather(with_runs=True)["run"]
    expected = json.loads((outputs.STORE / "run.json").read_text())
    assert found == expected
