"""Routing stability over seeds, in the model's own units of noise.

A noise level γ (noise norm / mean embedding norm) perturbs each model differently: a router
whose clean top-K margins are wide keeps most of its experts at a γ that reshuffles another's.
The paper's +38 % stability is read against a deterministic mean Jaccard of 0.650 (thesis,
Granite; PAPER.md §6.3), so `vmoer compare` also reads it where this model's deterministic router
is that brittle, and shows every router's paired difference at every γ probed.
"""

from __future__ import annotations

import math

from vmoer_ppl.pipeline.controls import paired

#: The deterministic router's mean Jaccard behind the paper's +38 % (thesis, Granite; PAPER.md
#: §6.3: 0.650 deterministic, 0.897 FCVR; its γ = 0.01 distribution plot marks 0.6).
PAPER_DET_JACCARD = 0.650

_PREFIX = "Jaccard (γ="


def jaccard_gammas(agg: dict) -> list[str]:
    """The deterministic router's ``"Jaccard (γ=…)"`` columns of ``agg``, by increasing γ."""
    det = agg.get("deterministic", {})
    cols = [c for c in det if c.startswith(_PREFIX) and not math.isnan(det[c]["mean"])]
    return sorted(cols, key=lambda c: float(c.removeprefix(_PREFIX).removesuffix(")")))


def matched_jaccard(agg: dict) -> str | None:
    """The Jaccard column where the deterministic router is as brittle as the paper's.

    Parameters
    ----------
    agg : dict
        :func:`vmoer_ppl.pipeline.seeds.aggregate`, with ``"Jaccard (γ=…)"`` columns.

    Returns
    -------
    str or None
        Of the noise levels probed, the column whose deterministic mean over seeds is nearest
        :data:`PAPER_DET_JACCARD`; None without a stability probe.
    """
    det = agg.get("deterministic", {})
    cols = jaccard_gammas(agg)
    return min(cols, key=lambda c: abs(det[c]["mean"] - PAPER_DET_JACCARD), default=None)


def stability_table(agg: dict, n_runs: int) -> str:
    """Markdown: deterministic mean Jaccard per γ, and each router's paired Δ with 95 % t-CI.

    Parameters
    ----------
    agg : dict
        :func:`vmoer_ppl.pipeline.seeds.aggregate`.
    n_runs : int
        Seeds pooled (for the heading).

    Returns
    -------
    str
        Empty when the runs probed at most one noise level.
    """
    cols = jaccard_gammas(agg)
    if len(cols) < 2:
        return ""
    matched = matched_jaccard(agg)
    names = [
        c.removeprefix("Jaccard (").removesuffix(")") + ("*" if c == matched else "") for c in cols
    ]
    lines = [
        f"Routing stability vs noise ({n_runs} seeds; * = deterministic nearest the paper's "
        f"{PAPER_DET_JACCARD:.3f}): mean Jaccard, then paired Δ to deterministic [95% t-CI]",
        "",
        "| router | " + " | ".join(names) + " |",
        "|" + "---|" * (len(cols) + 1),
    ]
    det = agg["deterministic"]
    lines.append("| deterministic | " + " | ".join(f"{det[c]['mean']:.3f}" for c in cols) + " |")
    for r, c_r in agg.items():
        if r == "deterministic" or not all(c in c_r for c in cols):
            continue
        cells = []
        for c in cols:
            d = paired(agg, r, "deterministic", c)
            ci = "" if math.isnan(d["lo"]) else f" [{d['lo']:+.3f}, {d['hi']:+.3f}]"
            cells.append(f"{d['mean']:+.3f}{ci}")
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
