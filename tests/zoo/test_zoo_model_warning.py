"""Creating the zoo model prints no false "initialized randomly" warning (its weights are
loaded right after), and other warnings still get through."""

from __future__ import annotations

import logging

import pytest


def test_the_zoo_model_is_created_without_the_random_init_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from steerlang.zoo.model import create_model

    with caplog.at_level(logging.WARNING):
        create_model("cpu")
        logging.warning(
            "No pretrained weights loaded for model 'other'. Model initialized randomly."
        )
    msgs = [r.getMessage() for r in caplog.records]
    assert not any("steer-tiny-clip" in m for m in msgs)
    assert any("'other'" in m for m in msgs)  # only the zoo model's notice is dropped
    assert not logging.getLogger().filters  # the filter is gone after the call
