"""The one mapping of pydantic validation errors to readable messages (steerlang/errors.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from steerlang.errors import CheckpointError, validation_problems, validation_summary


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int
    mode: Literal["fast", "exact"] = "fast"


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    ratio: float = 1.0
    inner: _Inner
    tags: list[str] = []

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v.startswith("_"):
            raise ValueError("names may not start with '_'")
        return v


def _problems(data: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as e:
        _Outer.model_validate(data)
    keys = {(): list(_Outer.model_fields), ("inner",): list(_Inner.model_fields)}
    return {
        ".".join(map(str, loc)): text
        for loc, text in validation_problems(e.value, known_keys=lambda loc: keys.get(loc, []))
    }


def test_each_kind_of_problem_reads_plainly() -> None:
    got = _problems(
        {
            "name": "_x",
            "ratio": "lots",
            "inner": {"size": "seven", "mode": "exakt", "sise": 1},
            "tags": "a",
            "nmae": 1,
        }
    )
    assert got == {
        "name": "names may not start with '_'",
        "ratio": "expected a number, found 'lots'",
        "inner.size": "expected a whole number, found 'seven'",
        "inner.mode": "'exakt' is not one of 'fast' or 'exact'; did you mean 'exact'?",
        "inner.sise": "unknown key 'sise'; did you mean 'size'? keys: mode, size",
        "tags": "expected a list, found 'a'",
        "nmae": "unknown key 'nmae'; did you mean 'name'? keys: inner, name, ratio, tags",
    }
    assert _problems({"name": "a"}) == {"inner": "missing required key 'inner'"}
    assert _problems({"name": "a", "inner": 3}) == {
        "inner": "expected a mapping (key: value lines), found 3"
    }


def test_no_pydantic_wording_leaks() -> None:
    with pytest.raises(ValidationError) as e:
        _Outer.model_validate({"name": 5, "inner": {"size": 1.5}, "ratio": [1], "tags": ["a", 2]})
    text = validation_summary(e.value, "config.json")
    assert text.startswith("config.json: 4 problems\n  ")
    assert "inner.size: expected a whole number, found 1.5" in text
    assert "tags.1: expected text, found 2" in text
    for raw in ("errors.pydantic.dev", "input_value", "Input should", "type=", "For further"):
        assert raw not in text


def test_a_bad_sae_config_names_file_and_key(tmp_path: Path) -> None:
    from steerlang.model.sae.load import load_sae
    from steerlang.zoo import zoo_sae_dir

    folder = Path(shutil.copytree(zoo_sae_dir(0), tmp_path / "sae"))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["d_in"] = "wide"
    cfg["activaton"] = "relu"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as e:
        load_sae(folder)
    msg = e.value.message
    assert msg.startswith(f"{folder / 'config.json'}: invalid SAE config: 2 problems")
    assert "d_in: expected a whole number, found 'wide'" in msg
    assert "activaton: unknown key 'activaton'" in msg
    assert "pydantic" not in msg


def test_constraints_read_as_must() -> None:
    from pydantic import Field

    class _C(BaseModel):
        n: int = Field(gt=0)

    with pytest.raises(ValidationError) as e:
        _C.model_validate({"n": -2})
    assert validation_summary(e.value, "x") == "x: n: must be greater than 0 (found -2)"


def test_bad_training_options_read_plainly() -> None:
    import argparse

    from steerlang.commands.train_sae import _train_config
    from steerlang.errors import SteerError

    args = argparse.Namespace(
        arch="topk", k=0, expansion=4, seed=0, no_normalize=False, checkpoint_every=None,
        checkpoint_dir=None, out="o", l1=None, steps=None, batch_tokens=None, lr=-0.5,
        warmup_steps=None, b_dec_init=None, d_sae=None, input_norm="scalar",
    )  # fmt: skip
    with pytest.raises(SteerError) as e:
        _train_config(args, "cpu")
    assert e.value.message == (
        "invalid training options: 2 problems\n"
        "  k: must be greater than 0 (found 0)\n"
        "  lr: must be greater than 0 (found -0.5)"
    )
