"""The seeded draw behind `random K features [where P]` (docs/language.md §4.3).

A random control must be the same on every run and machine, and different rules and sites
must not draw the same ids by construction. The draw is therefore a pure function of

    (seed setting, rule index, layer, site kind, the eligible ids, K):

numpy's `Generator(PCG64(SeedSequence([seed mod 2**64, rule index, layer, site number])))`,
where the site number is the site kind's position in `steerlang.facts.SITE_KINDS`, draws K of
the eligible ids uniformly without replacement (`Generator.choice(..., replace=False)`: every
K-subset is equally likely). The ids come back sorted. Inserting a rule before a random rule
changes its index and so its draw; change `set seed = N` to draw a different control.
"""

from __future__ import annotations

import numpy as np

from steerlang.facts import SITE_KINDS


def draw_generator(seed: int, rule_index: int, layer: int, site: str) -> np.random.Generator:
    """The generator of one rule at one site."""
    site_no = SITE_KINDS.index(site) if site in SITE_KINDS else len(SITE_KINDS)
    entropy = [int(seed) % 2**64, int(rule_index), int(layer), site_no]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def random_draw(
    eligible: np.ndarray, k: int, *, seed: int, rule_index: int, layer: int, site: str
) -> np.ndarray:
    """K ids drawn uniformly without replacement from `eligible` (all of them when there are
    no more than K), sorted ascending."""
    eligible = np.sort(np.asarray(eligible, dtype=np.int64))
    if k >= len(eligible):
        return eligible
    rng = draw_generator(seed, rule_index, layer, site)
    return np.sort(rng.choice(eligible, size=k, replace=False))
