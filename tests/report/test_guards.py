"""The report's guards (steerlang/report/guards.py) fire on the cases they exist for and stay
silent otherwise; thresholds come from steer.yaml's `report:` section."""

from __future__ import annotations

from typing import Any

from steerlang.report.guards import DEFAULTS, guard_warnings, settings


def _report(
    *,
    selected: int = 10,
    n_features: int = 1000,
    stats_images: int | None = 480,
    counts: list[int] | None = None,
    accuracy: float = 0.8,
    worst: float = 0.5,
) -> dict[str, Any]:
    counts = [100, 100, 100, 100] if counts is None else counts
    return {
        "plan": {
            "rules": [
                {
                    "rule": "background",
                    "layer": 7,
                    "site": "resid_post",
                    "tokens": "all",
                    "selected": selected,
                    "n_features": n_features,
                    "stats_n_images": stats_images,
                }
            ]
        },
        "groups": ["landbird, water=no", "landbird, water=yes", "waterbird, water=no", "w"],
        "metrics": {
            "baseline": {"accuracy": accuracy, "worst_group": worst, "group_counts": counts}
        },
    }


def _codes(rep: dict[str, Any], **over: float) -> list[str]:
    return [w["code"] for w in guard_warnings(rep, settings(over))]


def test_silent_on_a_run_with_a_shortcut_enough_images_and_a_small_selection() -> None:
    assert _codes(_report()) == []


def test_a_rule_selecting_more_than_the_share_fires() -> None:
    # The real-data case from issue 11: 44,814 of 49,152 features.
    ws = guard_warnings(_report(selected=44814, n_features=49152), settings(None))
    assert [w["code"] for w in ws] == ["guard:rule_share"]
    assert "44814 of 49152 features" in ws[0]["message"] and "91.2%" in ws[0]["message"]
    assert _codes(_report(selected=200, n_features=1000)) == []  # exactly 20%: not more
    assert _codes(_report(selected=201, n_features=1000)) == ["guard:rule_share"]
    assert _codes(_report(selected=201, n_features=1000), warn_rule_share=0.5) == []


def test_statistics_from_few_images_fire() -> None:
    assert _codes(_report(stats_images=24)) == ["guard:stats_images"]
    assert _codes(_report(stats_images=200)) == []
    assert _codes(_report(stats_images=24), warn_stats_images=20) == []
    assert _codes(_report(stats_images=None)) == []  # unknown: no claim


def test_small_groups_fire_with_their_names_and_n() -> None:
    ws = guard_warnings(_report(counts=[100, 3, 29, 30]), settings(None))
    assert [w["code"] for w in ws] == ["guard:group_images"]
    msg = ws[0]["message"]
    assert "landbird, water=yes (n=3)" in msg and "waterbird, water=no (n=29)" in msg
    assert "(n=30)" not in msg and "(n=100)" not in msg
    assert "33 points" in msg  # one image of three
    # Empty groups are reported separately (empty_groups), not here.
    assert _codes(_report(counts=[100, 0, 100, 100])) == []


def test_no_shortcut_fires_when_the_worst_group_is_near_the_average() -> None:
    assert _codes(_report(accuracy=0.80, worst=0.78)) == ["guard:no_shortcut"]
    assert _codes(_report(accuracy=0.80, worst=0.77)) == []  # 3 points: a gap
    assert _codes(_report(accuracy=0.80, worst=0.78), warn_shortcut_points=1) == []
    # One group only: no gap to speak of, no warning.
    assert _codes(_report(counts=[100, 0, 0, 0], accuracy=0.8, worst=0.8)) == []


def test_unknown_keys_do_not_change_the_defaults() -> None:
    assert settings({"warn_rule_share": 0.3, "other": 1}) == {**DEFAULTS, "warn_rule_share": 0.3}


def test_the_profile_report_section_sets_the_thresholds(tmp_path: Any) -> None:
    import pytest

    from steerlang.profile import ProfileError, profile_from_text

    prof = profile_from_text("report:\n  warn_group_images: 10\n", str(tmp_path / "steer.yaml"))
    assert prof.report == {"warn_group_images": 10}
    assert prof.to_dict()["report"] == {"warn_group_images": 10}
    with pytest.raises(ProfileError, match="warn_rule_share"):
        profile_from_text("report:\n  warn_rule_share: 2\n", str(tmp_path / "steer.yaml"))
