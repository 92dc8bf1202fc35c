"""The terminal summary (steerlang/report/terminal.py): n beside every group, intervals, the
worst group marked, signed changes coloured, the report's path last."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from steerlang.report.terminal import print_summary


def _report() -> dict[str, Any]:
    return {
        "recipe": {"name": "wb", "description": ""},
        "model": {"ref": "zoo:tiny-clip"},
        "device": "cpu",
        "dataset": {"name": "waterbirds", "stats_split": "train", "eval_split": "test"},
        "plan": {"n_edits": 0, "rules": []},
        "groups": ["landbird, water=no", "waterbird, water=no"],
        "metrics": {
            "baseline": {
                "accuracy": 0.8,
                "worst_group": 0.5,
                "per_group": [0.9, 0.5],
                "group_counts": [40, 12],
                "worst_group_id": 1,
            },
            "steered": {
                "accuracy": 0.85,
                "worst_group": 0.7,
                "per_group": [0.85, 0.7],
                "group_counts": [40, 12],
                "worst_group_id": 0,
            },
            "intervals": {
                "baseline": {"accuracy": [0.7, 0.88], "per_group": [[0.77, 0.96], [0.25, 0.75]]},
                "steered": {"accuracy": [0.75, 0.91]},
                "delta": {"accuracy": [0.01, 0.09], "per_group": [[-0.1, 0.0], [0.0, 0.4]]},
            },
        },
        "warnings": [{"code": "guard:group_images", "message": "1 group(s) have fewer"}],
        "run_dir": "/runs/wb-1",
    }


def _text(color: bool) -> str:
    console = Console(
        file=io.StringIO(),
        width=120,
        color_system="truecolor" if color else None,
        force_terminal=color,
    )
    print_summary(_report(), console)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_groups_show_n_intervals_and_the_worst_group() -> None:
    text = _text(color=False)
    assert "waterbird, water=no ◀ worst" in text and "landbird, water=no ◀" not in text
    assert "│ 12 │" in text and "│ 40 │" in text
    assert "[25.0, 75.0]" in text and "[+0.0, +40.0]" in text and "[70.0, 88.0]" in text
    assert "warning[guard:group_images]: 1 group(s) have fewer" in text
    assert text.rstrip().endswith("report: /runs/wb-1/report.html")


def test_changes_are_green_when_better_and_red_when_worse() -> None:
    text = _text(color=True)
    green, red = "\x1b[32m", "\x1b[31m"
    assert f"{green}+20.0" in text  # worst group 50 -> 70
    assert f"{red}-5.0" in text  # landbird 90 -> 85
