"""The report's guards: warnings that a run's numbers are weaker evidence than they look.

Each guard reads only `report.json`'s data and fires on one situation seen in practice:

- `guard:rule_share` — a rule selects more than `warn_rule_share` (default 20%) of a site's
  features. A shortcut is carried by a few features; removing a large share of a layer is
  ablating the layer (with 24 statistics images the waterbirds rule once took 44,814 of
  49,152 features).
- `guard:stats_images` — a rule's statistics come from fewer than `warn_stats_images`
  (default 200) images: correlations over a few dozen images are mostly noise, and a threshold
  on them selects noise.
- `guard:group_images` — a group has fewer than `warn_group_images` (default 30) evaluation
  images: one image moves its accuracy by more than 3 points (groups without images are
  reported separately, as `empty_groups`).
- `guard:no_shortcut` — the baseline's worst group is within `warn_shortcut_points` (default
  3) points of its average accuracy: there is no group gap for steering to close, so a change
  in worst-group accuracy is not evidence that a shortcut was removed.

The thresholds are set in steer.yaml's `report:` section (docs/profiles.md); the codes are
runtime warnings, not compiler diagnostics (steerlang/lang/codes.py).
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, float] = {
    "warn_rule_share": 0.20,
    "warn_stats_images": 200,
    "warn_group_images": 30,
    "warn_shortcut_points": 3.0,
}


def settings(overrides: dict[str, Any] | None) -> dict[str, float]:
    """The thresholds: the defaults with the profile's `report:` keys over them."""
    return {**DEFAULTS, **{k: v for k, v in (overrides or {}).items() if k in DEFAULTS}}


def _warning(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "severity": "warning", "message": message, "source": "report"}


def guard_warnings(report: dict[str, Any], thresholds: dict[str, float]) -> list[dict[str, Any]]:
    """The guards that fire on `report` (report.json's data), in a fixed order."""
    out: list[dict[str, Any]] = []
    share = float(thresholds["warn_rule_share"])
    min_stats = int(thresholds["warn_stats_images"])
    seen_sites: set[tuple[int, str, str]] = set()
    for r in (report.get("plan") or {}).get("rules", []):
        n, sel = r.get("n_features") or 0, r.get("selected") or 0
        if n and sel / n > share:
            out.append(
                _warning(
                    "guard:rule_share",
                    f"rule `{r['rule']}` selects {sel} of {n} features at L{r['layer']} "
                    f"{r['site']} ({100 * sel / n:.1f}%, more than {100 * share:g}%): this "
                    "ablates much of the layer rather than a shortcut; tighten its threshold "
                    "or use `top K features by ...`",
                )
            )
        n_img = r.get("stats_n_images")
        site = (r["layer"], r["site"], str(r.get("tokens")))
        if n_img is not None and n_img < min_stats and site not in seen_sites:
            seen_sites.add(site)
            out.append(
                _warning(
                    "guard:stats_images",
                    f"the statistics at L{r['layer']} {r['site']} come from {n_img} images "
                    f"(fewer than {min_stats}): correlations this noisy select features by "
                    "chance; use a larger `stats_split` or raise `stats_limit`",
                )
            )
    m = report.get("metrics") or {}
    base = m.get("baseline") or {}
    counts = base.get("group_counts") or []
    names = report.get("groups") or []
    min_group = int(thresholds["warn_group_images"])
    small = [(names[i] if i < len(names) else str(i), c) for i, c in enumerate(counts)]
    small = [(g, c) for g, c in small if 0 < c < min_group]
    if small:
        listed = "; ".join(f"{g} (n={c})" for g, c in small)
        out.append(
            _warning(
                "guard:group_images",
                f"{len(small)} group(s) have fewer than {min_group} evaluation images: "
                f"{listed}; one image moves such a group's accuracy by "
                f"{100 / min(c for _, c in small):.0f} points, so read their intervals, not "
                "the point values",
            )
        )
    present = [c for c in counts if c]
    worst, avg = base.get("worst_group"), base.get("accuracy")
    pts = float(thresholds["warn_shortcut_points"])
    if len(present) >= 2 and worst is not None and avg is not None:
        gap = 100 * (avg - worst)
        if gap < pts:
            out.append(
                _warning(
                    "guard:no_shortcut",
                    f"the baseline's worst group is within {gap:.1f} points of its average "
                    f"accuracy (less than {pts:g}): there is no group gap for steering to "
                    "close, so a worst-group change here is not evidence of a removed shortcut",
                )
            )
    return out
