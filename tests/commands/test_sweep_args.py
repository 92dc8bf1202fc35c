"""`steer sweep` arguments: --strengths and --logit-scale are read or refused with a fix."""

from __future__ import annotations

import pytest

from steerlang.commands.sweep import _logit_scale_arg, parse_strengths, scale_phrase
from steerlang.errors import SteerError


def test_strengths() -> None:
    assert parse_strengths(None) is None
    assert parse_strengths("5,10,20,50,150") == [5.0, 10.0, 20.0, 50.0, 150.0]
    with pytest.raises(SteerError, match="cannot read --strengths") as e:
        parse_strengths("5;10")
    assert "5,10,20,50,150" in (e.value.help or "")


def test_logit_scale_argument_and_how_it_is_named() -> None:
    assert _logit_scale_arg("model") == "model"
    assert _logit_scale_arg("15.8") == 15.8
    for bad in ("0", "-1", "inf", "nan", "Model"):
        with pytest.raises(SteerError, match="neither a positive number nor `model`"):
            _logit_scale_arg(bad)
    assert scale_phrase(100.0, "fixed") == "logit scale 100 (fixed; the authors' default is 100)"
    assert scale_phrase(15.8123, "model") == "logit scale 15.81 (the model's own exp(logit_scale))"
