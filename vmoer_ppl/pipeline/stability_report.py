"""Routing stability over seeds, in the model's own units of noise.

A noise level γ (noise norm / mean embedding norm) perturbs each model differently: a router
whose clean top-K margins are wide keeps most of its experts at a γ that reshuffles another's.
The paper's +38 % stability is read against a deterministic mean Jaccard of 0.650 (thesis,
Granite; PAPER.md §6.3), so `vmoer compare` also reads it where this model's deterministic router
is that brittle, and shows every router's paired difference at every γ probed.

A router that draws at prediction (MC) is read as it routes, with fresh draws on the noisy side
(its own MC variability included, as a user meets it: the ``"Jaccard (γ=…)"`` columns), and with
the clean run's draws on both sides (the input noise alone: ``"Jaccard, same draws (γ=…)"``);
its MC self-agreement is the Jaccard of two clean runs with different draws.
"""

from __future__ import annotations

import math

from vmoer_ppl.pipeline.controls import paired

#: The deterministic router's mean Jaccard behind the paper's +38 % (thesis, Granite; PAPER.md
#: §6.3: 0.650 deterministic, 0.897 FCVR; its γ = 0.01 distribution plot marks 0.6).
PAPER_DET_JACCARD = 0.650

_PREFIX = "Jaccard (γ="


def jaccard_column(gamma: float, same_draws: bool = False) -> str:
    """The name of the mean-Jaccard column at noise level ``gamma`` (``"Jaccard (γ=0.01)"``).

    ``same_draws``: the reading with the clean run's routing draws on the noisy side too
    (``"Jaccard, same draws (γ=0.01)"``), instead of the router as it routes.
    """
    return f"Jaccard{', same draws' if same_draws else ''} (γ={gamma:g})"


#: Column of the Jaccard of two clean runs of a router with different routing draws.
SELF_AGREEMENT = "MC self-agreement"


def jaccard_columns(r: dict) -> dict[str, float]:
    """One router's mean Jaccard at every γ its stability probe measured, by column name.

    Parameters
    ----------
    r : dict
        The router's ``metrics.json`` results (``stability``: ``gamma``, ``overall`` and, from
        evaluations that record them, ``fresh`` and ``self_agreement``).

    Returns
    -------
    dict of str to float
        :func:`jaccard_column` names (as routed: fresh draws where the router draws; then the
        same-draws reading) and :data:`SELF_AGREEMENT` -> mean Jaccard; empty without a
        stability probe. Evaluations from before fresh draws were recorded give their one
        (same-draws) reading as the ``"Jaccard (γ=…)"`` columns.
    """
    st = r.get("stability") or {}
    gammas, same = st.get("gamma", ()), st.get("overall", ())
    routed = st["fresh"]["overall"] if "fresh" in st else same
    out = {jaccard_column(g): v for g, v in zip(gammas, routed, strict=True)}
    if "fresh" in st:
        out |= {jaccard_column(g, same_draws=True): v for g, v in zip(gammas, same, strict=True)}
        out[SELF_AGREEMENT] = st["self_agreement"]["overall"]
    return out


def gamma_of(col: str) -> float:
    """The noise level of a ``"Jaccard (γ=…)"`` column."""
    return float(col.rsplit("γ=", 1)[1].removesuffix(")"))


def jaccard_gammas(agg: dict) -> list[str]:
    """The deterministic router's ``"Jaccard (γ=…)"`` columns of ``agg``, by increasing γ."""
    det = agg.get("deterministic", {})
    cols = [c for c in det if c.startswith(_PREFIX) and not math.isnan(det[c]["mean"])]
    return sorted(cols, key=gamma_of)


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


def draws(agg: dict, router: str) -> bool:
    """Whether ``router`` routed with random draws (its MC self-agreement is below 1)."""
    v = agg.get(router, {}).get(SELF_AGREEMENT)
    return v is not None and not math.isnan(v["mean"]) and v["mean"] < 1


def _rows(agg: dict, cols: list[str], same: bool, routers: list[str]) -> list[str]:
    lines = []
    for r in routers:
        cells = []
        for c in cols:
            c_r = jaccard_column(gamma_of(c), same_draws=True) if same else c
            if c_r not in agg[r]:
                cells.append("–")
                continue
            d = paired(agg, r, "deterministic", c_r, c)
            ci = "" if math.isnan(d["lo"]) else f" [{d['lo']:+.3f}, {d['hi']:+.3f}]"
            cells.append(f"{d['mean']:+.3f}{ci}")
        if same:
            cells.append(f"{agg[r][SELF_AGREEMENT]['mean']:.3f}")
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return lines


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
        Empty when the runs probed at most one noise level. Routers as they route (fresh draws
        for those that draw); a second table gives the routers that draw with the same draws on
        both sides (the input noise alone) and their MC self-agreement.
    """
    cols = jaccard_gammas(agg)
    if len(cols) < 2:
        return ""
    matched = matched_jaccard(agg)
    names = [f"γ={gamma_of(c):g}" + ("*" if c == matched else "") for c in cols]
    others = [r for r in agg if r != "deterministic" and all(c in agg[r] for c in cols)]
    det = agg["deterministic"]
    lines = [
        f"Routing stability vs noise ({n_runs} seeds; * = deterministic nearest the paper's "
        f"{PAPER_DET_JACCARD:.3f}): mean Jaccard, then paired Δ to deterministic [95% t-CI]; "
        "each router as it routes at prediction (fresh draws for those that draw)",
        "",
        "| router | " + " | ".join(names) + " |",
        "|" + "---|" * (len(cols) + 1),
        "| deterministic | " + " | ".join(f"{det[c]['mean']:.3f}" for c in cols) + " |",
        *_rows(agg, cols, False, others),
    ]
    drawing = [r for r in others if draws(agg, r)]
    if drawing:
        lines += [
            "",
            "Routers that draw, with the clean run's draws on the noisy side too (the input "
            f"noise alone); {SELF_AGREEMENT}: two clean runs, different draws",
            "",
            "| router | " + " | ".join(names) + f" | {SELF_AGREEMENT} |",
            "|" + "---|" * (len(cols) + 2),
            *_rows(agg, cols, True, drawing),
        ]
    return "\n".join(lines)


def run_stability_table(results: dict) -> str:
    """Markdown for one run's report: each router's mean Jaccard per γ and MC self-agreement.

    Parameters
    ----------
    results : dict
        A run's ``metrics.json`` results.

    Returns
    -------
    str
        One row per probed router as it routes (fresh draws for a router that draws, which
        gets a second row with the same draws on both sides); empty without a stability probe.
    """
    probed = {r: v["stability"] for r, v in results.items() if v.get("stability")}
    if not probed:
        return ""
    gammas = next(iter(probed.values()))["gamma"]
    lines = [
        "| router | " + " | ".join(f"γ={g:g}" for g in gammas) + f" | {SELF_AGREEMENT} |",
        "|" + "---|" * (len(gammas) + 2),
    ]
    for r in probed:
        cols = jaccard_columns(results[r])
        agree = cols.get(SELF_AGREEMENT, math.nan)
        routed = " | ".join(f"{cols[jaccard_column(g)]:.3f}" for g in gammas)
        lines.append(f"| {r} | {routed} | {agree:.3f} |")
        if probed[r].get("draws") and agree < 1:
            same = " | ".join(f"{cols[jaccard_column(g, same_draws=True)]:.3f}" for g in gammas)
            lines.append(f"| {r}, same draws | {same} | |")
    return "\n".join(lines)
