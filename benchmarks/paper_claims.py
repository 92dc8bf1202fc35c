"""The paper's claims against the zoo: runs the zoo command that tests each claim, reads the
numbers from its `--json` output, and writes docs/paper.md (a generated file) and the measured
tables of docs/zoo.md (between `<!-- paper_claims:NAME -->` markers), so neither can drift from
what the commands print.

    python benchmarks/paper_claims.py --write            # measure, write docs/paper.md + zoo.md
    python benchmarks/paper_claims.py --check            # measure, fail if either file differs
    python benchmarks/paper_claims.py --write --measurements m.json   # keep the raw outputs
    python benchmarks/paper_claims.py --render m.json --write         # re-render, no runs

Each claim has a verdict rule (the `verdict_*` functions, quoted in docs/paper.md): "yes" when
the zoo shows the claimed effect by that rule, "partly" when it shows the direction but not the
size or only one half of a two-part claim, "no" when it does not or cannot test it. The paper's
own numbers are only context: a 64-pixel synthetic world is not ImageNet, so the rules judge the mechanism
(direction, sign, ordering), never the size, except where a claim is itself a size.

Every command runs in a fresh subprocess with the zoo profile (no steer.yaml is read from the
working directory: the commands run in a temporary folder) and the shared statistics cache, so
a second run is fast. The last line printed is one JSON object (the verdicts).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PAPER_MD = REPO / "docs" / "paper.md"
ZOO_MD = REPO / "docs" / "zoo.md"
ZOO_CARD = REPO / "steerlang" / "zoo" / "weights" / "zoo_card.json"  # `steer zoo build` writes it

STRENGTHS = (5.0, 10.0, 20.0, 50.0, 150.0)
SWEEP_LAYER = 11
SWEEP_SAMPLE = "1/8"
LAYER_GRID = tuple(range(12))
REAL_MODEL = "openclip:ViT-B-32@datacomp_xl_s13b_b90k"
PRISMA = "hf:Prisma-Multimodal/sparse-autoencoder-clip-b-32-sae-vanilla-x64"

# The zoo commands, as argv after `python -m steerlang` ({tmp}: a scratch folder for run folders).
COMMANDS: dict[str, list[str]] = {
    "sweep": [
        "sweep",
        "--layer",
        str(SWEEP_LAYER),
        "--sample",
        SWEEP_SAMPLE,
        "--strengths",
        ",".join(f"{s:g}" for s in STRENGTHS),
        "--matched",
        "--json",
        "-q",
    ],
    "sweep_model_scale": [
        "sweep",
        "--layer",
        str(SWEEP_LAYER),
        "--sample",
        SWEEP_SAMPLE,
        "--strengths",
        "5,150",
        "--logit-scale",
        "model",
        "--json",
        "-q",
    ],
    "sae_stats": [
        "sae-stats",
        "zoo:sae/L{layer}/resid_post",
        "--layers",
        "0..11",
        "--dataset",
        "waterbirds",
        "--split",
        "val",
        "--json",
    ],
    "waterbirds": ["run", "recipes/waterbirds.steer", "--json", "-q", "--out", "{tmp}"],
    "celeba": ["run", "recipes/celeba.steer", "--json", "-q", "--out", "{tmp}"],
    "typographic": ["run", "recipes/typographic.steer", "--json", "-q", "--out", "{tmp}"],
}
# The layer claim: recipes/waterbirds.steer with its rule moved to each layer of LAYER_GRID.
LAYER_RECIPE = "recipes/waterbirds.steer"
LAYER_PARAM = "L"  # the recipe's int param for its rule's layer (`at layer L`)

# The same experiments on real CLIP with the released Prisma SAEs (docs/real-data.md).
REAL_COMMANDS: dict[str, str] = {
    "steerability": f"steer sweep --model {REAL_MODEL} "
    f"--sae 11:resid_post={PRISMA}-layer-11-hook_resid_post-l1-0.0001 --layer 11 "
    "--sample 1/20 --dataset imagenet --split val --strengths 5,10,20,50,150 --matched "
    "(with `imagenet: {format: imagefolder, root: /data/imagenet}` in steer.yaml)",
    "celeba": f"steer run recipes/celeba.steer --model {REAL_MODEL} --data celeba=/data/celeba "
    "--sae 7=DIR (DIR: a CelebA-domain SAE for that model, which `--sae` puts in place of the "
    "recipe's zoo one; the authors' is not released: train one with `steer train-sae --model "
    f"{REAL_MODEL} --layer 7 --tokens patches --dataset celeba --split train --arch topk "
    "--input-norm per_token_ln --out DIR`, docs/training.md)",
    "waterbirds": f"steer run recipes/waterbirds.steer --model {REAL_MODEL} "
    "--data waterbirds=/data/waterbird_complete95_forest2water2",
    "typographic": f"steer run recipes/typographic_rta.steer --model {REAL_MODEL} "
    "--data typographic=/data/Defense-Prefix (RTA-100; PAINT and Disentangling likewise, "
    "docs/real-data.md)",
    "l0": f"steer sae-stats '{PRISMA}-layer-{{layer}}-hook_resid_post-l1-1e-05' --layers 0..11 "
    f"--model {REAL_MODEL} --data imagefolder:/data/imagenet/val",
    "layers": f"steer run recipes/waterbirds.steer --model {REAL_MODEL} "
    "--data waterbirds=/data/waterbird_complete95_forest2water2, the rule's layer set to "
    "0..11 in turn",
}


def zoo_command_text(name: str) -> str:
    """The command as a user types it (`steer ...`, no scratch folder)."""
    argv = [a for a in COMMANDS[name] if a != "{tmp}"]
    argv = [a for i, a in enumerate(argv) if not (a == "--out" and i == len(argv) - 1)]
    return "steer " + " ".join(f"'{a}'" if "{" in a else a for a in argv)


# ------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------


def _run_json(argv: Sequence[str], tmp: Path, cwd: Path) -> Any:
    """`python -m steerlang ARGV` in a subprocess; its stdout parsed as JSON."""
    args = [a.replace("{tmp}", str(tmp / "runs")) for a in argv]
    args = [str(REPO / a) if a.startswith("recipes/") else a for a in args]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print("running: steer " + " ".join(args), file=sys.stderr, flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "steerlang", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"`steer {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def measure(layers: Sequence[int] = LAYER_GRID, only: Sequence[str] | None = None) -> dict:
    """Run every zoo command; {name: its JSON output}, plus `layers`: {layer: run JSON}."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="paper-claims-") as d:
        tmp = Path(d)
        cwd = tmp / "cwd"
        cwd.mkdir()
        for name, argv in COMMANDS.items():
            if only is None or name in only:
                out[name] = _run_json(argv, tmp, cwd)
        if only is None or "layers" in only:
            # The recipe's layer is its int param L (`at layer L`), so each layer is an override.
            out["layers"] = {}
            for layer in layers:
                argv = ["run", str(REPO / LAYER_RECIPE), "--param", f"{LAYER_PARAM}={layer}"]
                rep = _run_json([*argv, "--json", "-q", "--out", "{tmp}"], tmp, cwd)
                out["layers"][str(layer)] = rep
    return out


# ------------------------------------------------------------------------------------------
# Verdicts (each rule is quoted in docs/paper.md)
# ------------------------------------------------------------------------------------------


def _curve(sweep: dict, push: str, strength: float) -> dict | None:
    for r in sweep.get("results", []):
        if r["push"] == push and float(r["strength"]) == strength:
            return r
    return None


def verdict_steerability(sweep: dict, d_sae: int, d_model: int) -> tuple[str, str]:
    """Rule: at s = 150 the SAE fraction lies in 10-15% AND steerable SAE features outnumber
    steerable neurons (fraction × units) -> yes; only one of the two -> partly; else no."""
    sae, neu = _curve(sweep, "clamp", 150.0), _curve(sweep, "overwrite", 150.0)
    if sae is None or neu is None:
        return "no", "no s = 150 sweep"
    fs, fn = sae["fraction_steerable"], neu["fraction_steerable"]
    in_range = 0.10 <= fs <= 0.15
    more = fs * d_sae > fn * d_model
    verdict = "yes" if in_range and more else "partly" if in_range or more else "no"
    why = (
        f"{'in' if in_range else 'outside'} 10-15%; about {fs * d_sae:.0f} steerable SAE "
        f"features vs {fn * d_model:.0f} neurons"
    )
    return verdict, why


def _metric(rep: dict, which: str, key: str) -> float | None:
    m = (rep.get("metrics") or {}).get(which) or {}
    v = m.get(key)
    return None if v is None else float(v)


def verdict_disentangle(rep: dict) -> tuple[str, str]:
    """Rule: suppression raises worst-group accuracy by at least 10 points while the plain
    average falls by at most 5 -> yes; raises it at all -> partly; else no."""
    b, s = _metric(rep, "baseline", "worst_group"), _metric(rep, "steered", "worst_group")
    ba, sa = _metric(rep, "baseline", "average_plain"), _metric(rep, "steered", "average_plain")
    if b is None or s is None or ba is None or sa is None:
        return "no", "no worst-group metric"
    gain = s - b
    if gain >= 0.10 and sa >= ba - 0.05:
        return "yes", f"worst group +{100 * gain:.1f} points, average {100 * (sa - ba):+.1f}"
    if gain > 0:
        return "partly", f"worst group only +{100 * gain:.1f} points or average falls"
    return "no", f"worst group {100 * gain:+.1f} points"


def verdict_typographic(rep: dict) -> tuple[str, str]:
    """Rule: steered accuracy on attacked images at least 0.72 (the paper's low end) -> yes;
    at least a quarter of the attack's drop recovered -> partly; else no."""
    att = ((rep.get("metrics") or {}).get("attack") or {}).get("steered") or {}
    rec = ((rep.get("metrics") or {}).get("attack") or {}).get("recovered")
    a = att.get("attacked")
    if a is None:
        return "no", "no attacked accuracy"
    if a >= 0.72:
        return "yes", f"attacked accuracy {a:.3f} >= 0.72"
    if rec is not None and rec >= 0.25:
        return "partly", f"attacked {a:.3f} < 0.72, but {100 * rec:.0f}% of the drop recovered"
    return "no", f"attacked {a:.3f}"


def _l0_rows(stats: dict) -> list[dict]:
    rows = list(stats.get("saes", {}).values())
    return sorted(rows, key=lambda r: r["layer"])


def verdict_cls_pattern(stats: dict) -> tuple[str, str]:
    """Rule (Prisma: CLS L0 ~40 -> ~1,200 from layer 0 to 11, ~4% -> ~85% of the all-token
    L0): CLS L0 grows at least 10x from the first to the last layer and starts below 20% of
    the all-token L0 -> yes; CLS L0 grows and its share of the all-token L0 grows -> partly;
    else no."""
    rows = _l0_rows(stats)
    if len(rows) < 2:
        return "no", "fewer than two layers"
    a, z = rows[0], rows[-1]
    grow = z["l0_cls"] / a["l0_cls"]
    share_a, share_z = a["l0_cls"] / a["l0"], z["l0_cls"] / z["l0"]
    why = f"CLS L0 x{grow:.1f}; CLS share {100 * share_a:.0f}% -> {100 * share_z:.0f}%"
    if grow >= 10 and share_a < 0.2:
        return "yes", why
    if grow > 1 and share_z > share_a:
        return "partly", why
    return "no", why


def verdict_vision_vs_language(stats: dict) -> tuple[str, str]:
    """Rule: needs a language-model SAE to compare with; the zoo has none -> no (untestable)."""
    return "no", "untestable on the zoo: it has no language-model SAE"


def middle_layers(n_layers: int) -> range:
    """The middle half of the network: layers n/4 .. 3n/4 − 1 (3..8 of 12)."""
    return range(n_layers // 4, (3 * n_layers) // 4)


def verdict_middle_layers(by_layer: dict[str, dict], n_layers: int = 12) -> tuple[str, str]:
    """Rule: every layer with the best steered worst-group accuracy lies in the middle half
    (layers 3..8 of 12) -> yes; some do -> partly; none -> no."""
    wg = {int(k): _metric(v, "steered", "worst_group") for k, v in by_layer.items()}
    wg = {k: v for k, v in wg.items() if v is not None}
    if not wg:
        return "no", "no layers measured"
    top = max(wg.values())
    best = sorted(k for k, v in wg.items() if abs(v - top) < 1e-9)
    mid = middle_layers(n_layers)
    inside = [k for k in best if k in mid]
    verdict = "yes" if len(inside) == len(best) else "partly" if inside else "no"
    return (
        verdict,
        f"best layer(s) {', '.join(map(str, best))}; middle = {mid.start}..{mid.stop - 1}",
    )


# ------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _wg_line(rep: dict) -> str:
    b, s = _metric(rep, "baseline", "worst_group"), _metric(rep, "steered", "worst_group")
    ba, sa = _metric(rep, "baseline", "average_plain"), _metric(rep, "steered", "average_plain")
    return f"worst group {_pct(b)} → {_pct(s)}, average {_pct(ba)} → {_pct(sa)}"


def claims(m: dict) -> list[dict[str, str]]:
    """One dict per claim: claim, paper, command, measured, verdict, why, rule, real."""
    out = []
    sw = m["sweep"]
    d_sae = _sweep_units(m)
    fr = {(r["push"], float(r["strength"])): r["fraction_steerable"] for r in sw["results"]}
    ms = m.get("sweep_model_scale", {})
    fr_model = {
        (r["push"], float(r["strength"])): r["fraction_steerable"] for r in ms.get("results", [])
    }
    v, why = verdict_steerability(sw, d_sae, _d_model(m))
    pushes = {float(p["strength"]): p for p in sw.get("push_norms", [])}
    ratios = ", ".join(f"s = {s:g}: ×{pushes[s]['ratio']:.2f}" for s in STRENGTHS if s in pushes)
    out.append(
        {
            "id": "steerability",
            "claim": "10–15% of SAE features and of neurons are steerable (S_f > 0.1 at "
            "s = 150); SAEs give many more steerable features than the base model",
            "paper": "10–15% (abstract); stored run: 259 / 2,457 sampled features (10.5%)",
            "command": zoo_command_text("sweep"),
            "measured": (
                "steerable at s = "
                + ", ".join(f"{s:g}" for s in STRENGTHS)
                + ": SAE features "
                + " / ".join(_pct(fr.get(("clamp", s))) for s in STRENGTHS)
                + "; neurons (coordinate := s) "
                + " / ".join(_pct(fr.get(("overwrite", s))) for s in STRENGTHS)
                + "; neurons pushed by the SAE clamp's mean residual norm "
                + " / ".join(_pct(fr.get(("matched", s))) for s in STRENGTHS)
                + f". Residual move of an SAE clamp ÷ a coordinate overwrite: {ratios}. "
                + f"Readout logit scale {sw['logit_scale']:g} ({sw['logit_scale_source']})"
                + (
                    f"; with the model's own scale ({ms['logit_scale']:.3g}): SAE "
                    f"{_pct(fr_model.get(('clamp', 5.0)))} / {_pct(fr_model.get(('clamp', 150.0)))}, "
                    f"neurons {_pct(fr_model.get(('overwrite', 5.0)))} / "
                    f"{_pct(fr_model.get(('overwrite', 150.0)))} at s = 5 / 150"
                    if ms
                    else ""
                )
            ),
            "verdict": v,
            "why": why,
            "rule": _doc(verdict_steerability),
            "real": REAL_COMMANDS["steerability"],
        }
    )
    for key, claim, paper in (
        (
            "celeba",
            "CelebA (gender target, blond spurious): suppressing SAE features disentangles",
            "worst group up to 81.11% (seed list; not verified against the paper's body)",
        ),
        (
            "waterbirds",
            "Waterbirds: suppressing background SAE features disentangles",
            "up to 24.61% (seed list, quantity not stated there; not verified against the paper's body)",
        ),
    ):
        rep = m[key]
        v, why = verdict_disentangle(rep)
        out.append(
            {
                "id": key,
                "claim": claim,
                "paper": paper,
                "command": zoo_command_text(key),
                "measured": _wg_line(rep) + f" (test split, {_n_edits(rep)} features)",
                "verdict": v,
                "why": why,
                "rule": _doc(verdict_disentangle),
                "real": REAL_COMMANDS[key],
            }
        )
    rep = m["typographic"]
    att = (rep.get("metrics") or {}).get("attack") or {}
    v, why = verdict_typographic(rep)
    out.append(
        {
            "id": "typographic",
            "claim": "typographic-attack defence by suppressing text features, state of the art",
            "paper": "0.72–0.88 accuracy on attacked images (seed list; not verified against the paper's body)",
            "command": zoo_command_text("typographic"),
            "measured": "attacked accuracy "
            f"{_pct((att.get('baseline') or {}).get('attacked'))} → "
            f"{_pct((att.get('steered') or {}).get('attacked'))}, clean "
            f"{_pct((att.get('baseline') or {}).get('clean'))} → "
            f"{_pct((att.get('steered') or {}).get('clean'))}, drop recovered "
            f"{_pct(att.get('recovered'))}",
            "verdict": v,
            "why": why,
            "rule": _doc(verdict_typographic),
            "real": REAL_COMMANDS["typographic"],
        }
    )
    rows = _l0_rows(m["sae_stats"])
    l0_text = "; ".join(
        f"L{r['layer']} {r['l0']:.1f} (CLS {r['l0_cls']:.1f}, patches {r['l0_patches']:.1f})"
        for r in rows
        if r["layer"] in (0, 3, 7, 11)
    )
    v, why = verdict_vision_vs_language(m["sae_stats"])
    out.append(
        {
            "id": "l0_vision",
            "claim": "vision SAEs have higher L0 than language SAEs (spatial tokens 3–14× denser "
            "than GPT-2's)",
            "paper": "Prisma CLIP-B/32 x64 SAEs: L0 ~600–2,000 per token (ViT-Prisma docs/sae_table.md)",
            "command": zoo_command_text("sae_stats"),
            "measured": f"zoo L0 per token of 1,024 latents: {l0_text}",
            "verdict": v,
            "why": why,
            "rule": _doc(verdict_vision_vs_language),
            "real": REAL_COMMANDS["l0"],
        }
    )
    v, why = verdict_cls_pattern(m["sae_stats"])
    out.append(
        {
            "id": "cls_pattern",
            "claim": "CLS-versus-patch sparsity across layers: the CLS token is sparse early and "
            "dense late",
            "paper": "Prisma resid_post SAEs: CLS L0 40 → 1,189 from layer 0 to 11, all-token L0 1,111 → 1,405 (ViT-Prisma docs/sae_table.md)",
            "command": zoo_command_text("sae_stats"),
            "measured": l0_text,
            "verdict": v,
            "why": why,
            "rule": _doc(verdict_cls_pattern),
            "real": REAL_COMMANDS["l0"],
        }
    )
    by_layer = m.get("layers", {})
    v, why = verdict_middle_layers(by_layer)
    per = ", ".join(
        f"L{k} {_pct(_metric(r, 'steered', 'worst_group'))}"
        for k, r in sorted(by_layer.items(), key=lambda kv: int(kv[0]))
    )
    out.append(
        {
            "id": "layers",
            "claim": "disentanglement is best in the middle layers",
            "paper": "“optimal disentanglement in middle model layers” (abstract)",
            "command": f"the rule of {LAYER_RECIPE} moved to each of layers "
            f"{', '.join(sorted(by_layer, key=int))}: steer run (one recipe per layer) --json",
            "measured": f"steered worst group on Waterbirds test: {per}",
            "verdict": v,
            "why": why,
            "rule": _doc(verdict_middle_layers),
            "real": REAL_COMMANDS["layers"],
        }
    )
    return out


def _doc(fn: Callable[..., Any]) -> str:
    return " ".join((fn.__doc__ or "").split())


def _sweep_units(m: dict) -> int:
    """The SAE's width, from the sweep's sample (every k-th feature, `SWEEP_SAMPLE`)."""
    n = next(r["n_units"] for r in m["sweep"]["results"] if r["push"] == "clamp")
    every = int(SWEEP_SAMPLE.split("/")[1])
    rows = _l0_rows(m.get("sae_stats", {}))
    return int(rows[0]["d_sae"]) if rows else n * every


def _d_model(m: dict) -> int:
    return int(next(r["n_units"] for r in m["sweep"]["results"] if r["push"] == "overwrite"))


def _n_edits(rep: dict) -> str:
    plan = rep.get("plan") or {}
    n = plan.get("n_edits", plan.get("total_edits"))
    return "?" if n is None else str(n)


HEADER = (
    "<!-- Generated by benchmarks/paper_claims.py: do not edit by hand. Regenerate with\n"
    "     `python benchmarks/paper_claims.py --write`; `--check` fails when this file differs\n"
    "     from what the commands print now. -->\n"
)


def render_paper(m: dict) -> str:
    """docs/paper.md from the measured JSON outputs."""
    cs = claims(m)
    lines = [
        HEADER,
        "# The paper's claims on the zoo",
        "",
        "Joseph et al., *Steering CLIP's vision transformer with sparse autoencoders* (CVPR 2025 "
        "MIV workshop). Each claim below names the zoo command that tests it, the number that "
        "command prints now, whether the zoo reproduces the claim by the rule stated with it, "
        "and the command for real CLIP with the released Prisma SAEs ([real-data.md]"
        "(real-data.md)). The rules judge mechanisms (direction, ordering), not sizes: the zoo "
        "is a 64-pixel synthetic world ([zoo.md](zoo.md)). Paper numbers marked 'not verified' come "
        "from the seed list the claims were collected from and could not be checked against "
        "the paper's body.",
        "",
        "| claim | paper | zoo now | reproduces |",
        "|---|---|---|---|",
    ]
    for c in cs:
        lines.append(f"| {c['claim']} | {c['paper']} | {c['why']} | **{c['verdict']}** |")
    lines.append("")
    for c in cs:
        lines += [
            f"## {c['claim'][0].upper()}{c['claim'][1:]}",
            "",
            f"- Paper: {c['paper']}.",
            f"- Zoo command: `{c['command']}`",
            f"- Zoo prints: {c['measured']}.",
            f"- Reproduces: **{c['verdict']}** ({c['why']}). {c['rule']}",
            f"- Real CLIP: `{c['real']}`",
            "",
        ]
    lines += [
        "## Why the zoo saturates steerability",
        "",
        "The zoo CLIP's readout vocabulary has 31 words (its tokenizer knows no others), so a "
        "clamp that moves probability onto any one of them reaches S_f > 0.1 easily: at the "
        "authors' s = 150 nearly every SAE feature and neuron is steerable, and the fraction "
        "only says how far s is above the activations' scale. An SAE clamp also moves the "
        "residual further than overwriting one coordinate at the same nominal s "
        "(the ratio above; [zoo.md](zoo.md) gives it by layer), so the push-matched neuron row is "
        "the like-for-like comparison. "
        "The readout uses the authors' fixed logit scale of 100 unless `set logit_scale = "
        '"model"` asks for the model\'s own.',
        "",
    ]
    return "\n".join(lines)


# Measured tables of docs/zoo.md, each between `<!-- paper_claims:NAME -->` and
# `<!-- /paper_claims:NAME -->`.
def render_zoo_tables(m: dict) -> dict[str, str]:
    rows = _l0_rows(m["sae_stats"])
    sae = [
        "| layer | FVU | L0 | L0 CLS | L0 patches | dead | dense (>1%) | zero-shot acc. spliced "
        "(recovered) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sp = r.get("splice") or {}
        rec = sp.get("recovered")
        sae.append(
            f"| {r['layer']} | {r['fvu']:.3f} | {r['l0']:.1f} | {r['l0_cls']:.1f} | "
            f"{r['l0_patches']:.1f} | {100 * r['dead_fraction']:.1f}% | "
            f"{100 * r['dense_fraction']:.0f}% | {sp.get('acc_spliced', float('nan')):.3f} "
            f"({'n/a' if rec is None else f'{100 * rec:.0f}%'}) |"
        )
    sw = m["sweep"]
    by = {(r["push"], float(r["strength"])): r for r in sw["results"]}
    pushes = {float(p["strength"]): p for p in sw.get("push_norms", [])}
    steer = [
        "| clamp strength s | SAE features steerable (S_f > 0.1) | distinct top concepts | "
        "neurons steerable (coordinate := s) | neurons steerable (matched push) | "
        "SAE clamp ÷ overwrite residual move |",
        "|---|---|---|---|---|---|",
    ]
    for s in STRENGTHS:
        a, n, mt = by.get(("clamp", s)), by.get(("overwrite", s)), by.get(("matched", s))
        if a is None:
            continue
        p = pushes.get(s)
        ratio = "n/a" if p is None else f"×{p['ratio']:.2f}"
        default = " (author default)" if s == 150 else ""
        steer.append(
            f"| {s:g}{default} | {_cell(a)} | {a['distinct_top_concepts']} | {_cell(n)} | "
            f"{_cell(mt)} | {ratio} |"
        )
    card = json.loads(ZOO_CARD.read_text(encoding="utf-8"))
    return {
        "sae_table": "\n".join(sae),
        "steer_table": "\n".join(steer),
        "phenomena_table": render_phenomena(card.get("phenomena") or {}),
    }


def render_phenomena(ph: dict) -> str:
    """The model card's steering checks (`steerlang.training.zoo.phenomena`, measured by
    `steer zoo build` into zoo_card.json): one row per (layer, threshold)."""
    rows = [
        "| layer | thr | background features | Waterbirds avg | WGA | text features | "
        "attacked acc. | clean acc. | drop recovered |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ty = {(t["layer"], t["threshold"]): t for t in ph.get("typographic", [])}
    for w in ph.get("waterbirds", []):
        t = ty.get((w["layer"], w["threshold"]))
        b, s = w["baseline"], w["steered"]
        text = "n/a | n/a | n/a | n/a"
        if t is not None:
            tb, ts = t["baseline"], t["steered"]
            text = (
                f"{t['n_features']} | {100 * tb['attacked_accuracy']:.1f} → "
                f"{100 * ts['attacked_accuracy']:.1f} | {100 * tb['clean_accuracy']:.1f} → "
                f"{100 * ts['clean_accuracy']:.1f} | {_pct(t.get('recovered'))}"
            )
        rows.append(
            f"| {w['layer']} | {w['threshold']:g} | {w['n_features']} ({w['n_water']} water, "
            f"{w['n_land']} land) | {100 * b['average']:.1f} → {100 * s['average']:.1f} | "
            f"{100 * b['worst_group']:.0f} → {100 * s['worst_group']:.0f} | {text} |"
        )
    return "\n".join(rows)


def _cell(r: dict | None) -> str:
    if r is None:
        return "n/a"
    return f"{r['n_steerable']} / {r['n_units']} ({_pct(r['fraction_steerable'])})"


def splice_tables(text: str, tables: dict[str, str]) -> str:
    """Replace each marked region of `text` with its table (markers kept)."""
    for name, body in tables.items():
        pat = re.compile(
            rf"(<!-- paper_claims:{name} -->\n)(?:.*?\n)?(<!-- /paper_claims:{name} -->)", re.S
        )
        if not pat.search(text):
            raise SystemExit(f"docs/zoo.md has no <!-- paper_claims:{name} --> markers")
        text = pat.sub(lambda mm, body=body: mm.group(1) + body + "\n" + mm.group(2), text)
    return text


def outputs(m: dict) -> dict[Path, str]:
    """The generated files and their contents."""
    zoo = ZOO_MD.read_text(encoding="utf-8")
    return {PAPER_MD: render_paper(m), ZOO_MD: splice_tables(zoo, render_zoo_tables(m))}


def check(files: dict[Path, str]) -> list[str]:
    """Unified diffs of the files that differ from what is on disk (empty: all current)."""
    diffs = []
    for path, want in files.items():
        have = path.read_text(encoding="utf-8") if path.exists() else ""
        if have != want:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        have.splitlines(True), want.splitlines(True), str(path), "generated"
                    )
                )
            )
    return diffs


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="write docs/paper.md and zoo.md tables")
    ap.add_argument("--check", action="store_true", help="fail if the files differ")
    ap.add_argument("--measurements", metavar="FILE", help="also save the raw JSON outputs here")
    ap.add_argument("--render", metavar="FILE", help="render saved outputs instead of measuring")
    ap.add_argument(
        "--layers",
        default=",".join(map(str, LAYER_GRID)),
        help="layers for the middle-layer claim (default 0..11)",
    )
    args = ap.parse_args(argv)
    if args.render:
        m = json.loads(Path(args.render).read_text(encoding="utf-8"))
    else:
        m = measure([int(x) for x in args.layers.split(",")])
        if args.measurements:
            Path(args.measurements).write_text(json.dumps(m, indent=1), encoding="utf-8")
    files = outputs(m)
    rc = 0
    if args.check:
        diffs = check(files)
        for d in diffs:
            sys.stderr.write(d)
        rc = 1 if diffs else 0
    if args.write:
        from steerlang.files import atomic_write_text

        for path, text in files.items():
            atomic_write_text(path, text)
    print(json.dumps({c["id"]: c["verdict"] for c in claims(m)} | {"stale": rc == 1}))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
