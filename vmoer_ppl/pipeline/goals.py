"""The paper's claims as checks on pooled seeds: does VMoER pay off on this model.

Each goal compares a VMoER router with the deterministic router of the same runs (paired over
seeds) or with post-hoc temperature scaling, on the means over seeds (VMoER, arXiv:2603.09453:
no accuracy loss, −94 % ECE, lower NLL, +38 % routing stability, +12 % OOD AUROC):

- accuracy within 1 point of deterministic (mean Δ ≥ −0.01);
- ECE ≤ 0.5 × deterministic;
- NLL below deterministic (mean Δ < 0);
- better than post-hoc temperature scaling on NLL or ECE, or on OOD AUROC at equal NLL: with
  ``--baselines temperature-scaled`` the router's own temperature-scaled row
  (:mod:`~vmoer_ppl.pipeline.scaled_rows`) is read against ``temperature-scaling``: met when its
  answer-entropy AUROC is higher at an NLL no worse (both calibrated post hoc, so the comparison
  is of what the scores rank, not of a temperature);
- Jaccard stability ≥ 1.2 × deterministic, read at the noise level where the deterministic
  router is as brittle as the paper's (its mean Jaccard nearest the paper's
  deterministic 0.650, :data:`~vmoer_ppl.pipeline.stability_report.PAPER_DET_JACCARD`):
  the same γ is a different perturbation for every model (a router whose clean top-K margins
  are wide keeps 0.85 at γ = 0.01, where +20 % would exceed 1), so the claim is taken in the
  model's own units; the γ = 0.01 reading is shown beside it;
- best OOD AUROC of the router's scores ≥ deterministic answer-entropy AUROC + 0.03 (on the
  means; the paired 95 % t-interval of the difference is shown, as for NLL).

A goal met on the mean whose paired 95 % interval over seeds reaches past the bound is marked
"met on the mean only" (:data:`ON_MEAN`): an effect smaller than its noise is not claimed.
"""

from __future__ import annotations

import math

from vmoer_ppl.pipeline.controls import fitted_vmoer, paired
from vmoer_ppl.pipeline.scaled_rows import scaled_name
from vmoer_ppl.pipeline.stability_report import (
    PAPER_DET_JACCARD,
    SELF_AGREEMENT,
    draws,
    gamma_of,
    jaccard_column,
    matched_jaccard,
)

AUROC_COLUMNS = ("OOD AUROC (entropy)", "OOD AUROC (MI)", "OOD AUROC (ILV)")


def _m(agg: dict, router: str, col: str) -> float:
    v = agg.get(router, {}).get(col)
    return math.nan if v is None else v["mean"]


def _ood_goal(agg: dict, router: str) -> tuple:
    """The OOD goal's ``add`` arguments: the router's best AUROC column against deterministic's."""
    scores = {c: _m(agg, router, c) for c in AUROC_COLUMNS}
    scores = {c: v for c, v in scores.items() if not math.isnan(v)}
    base = _m(agg, "deterministic", "OOD AUROC (entropy)")
    best_col, best = max(scores.items(), key=lambda kv: kv[1], default=("–", math.nan))
    measured, sure = f"{best:.3f} {best_col.removeprefix('OOD AUROC ')} vs {base:.3f}", None
    if best_col in agg.get(router, {}) and "values" in agg[router][best_col]:
        d = paired(agg, router, "deterministic", best_col, "OOD AUROC (entropy)")
        if not math.isnan(d["lo"]):
            measured += f", Δ {best - base:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"
            sure = d["lo"] >= 0.03
    return "OOD AUROC ≥ deterministic + 0.03", measured, (best >= base + 0.03, sure), best, base


def _delta(agg: dict, row: str, col: str, base: str = "temperature-scaling") -> str:
    """`` (Δ m [lo, hi])``: ``row`` minus ``base`` in ``col``, paired over seeds; "" without."""
    if "values" not in agg[row].get(col, {}) or "values" not in agg[base].get(col, {}):
        return ""
    d = paired(agg, row, base, col)
    return "" if math.isnan(d["lo"]) else f" (Δ {d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}])"


def _ts_goal(agg: dict, router: str) -> tuple:
    """The temperature-scaling goal's ``add`` arguments: NLL or ECE, or AUROC at equal NLL."""
    ts = "temperature-scaling"
    nll, ts_nll = _m(agg, router, "ID NLL"), _m(agg, ts, "ID NLL")
    ece, ts_ece = _m(agg, router, "ID ECE"), _m(agg, ts, "ID ECE")
    measured = f"NLL {nll:.3f} vs {ts_nll:.3f}, ECE {ece:.3f} vs {ts_ece:.3f}"
    ok = nll < ts_nll or ece < ts_ece
    scaled = scaled_name(router)
    if scaled in agg:  # both calibrated post hoc: OOD AUROC at (nearly) equal NLL
        col = "OOD AUROC (entropy)"
        s_nll, s_auc, ts_auc = _m(agg, scaled, "ID NLL"), _m(agg, scaled, col), _m(agg, ts, col)
        measured += f"; scaled too: NLL {s_nll:.3f} vs {ts_nll:.3f}{_delta(agg, scaled, 'ID NLL')}"
        measured += f", OOD AUROC {s_auc:.3f} vs {ts_auc:.3f}{_delta(agg, scaled, col)}"
        ok = ok or (s_auc > ts_auc and s_nll <= ts_nll)
    goal = "better than temperature scaling (NLL or ECE, or OOD AUROC at equal NLL)"
    return goal, measured, ok, nll, ts_nll, ts_ece


def _jaccard_goal(agg: dict, router: str) -> tuple:
    """The stability goal's ``add`` arguments: +20 % at the matched γ, γ = 0.01 beside it.

    Each router is read as it routes at prediction (fresh draws for one that draws: its own MC
    variability included, as its users meet it).
    """
    at01 = jaccard_column(0.01)
    col = matched_jaccard(agg) or at01
    jac, det = _m(agg, router, at01), _m(agg, "deterministic", at01)
    measured = f"γ=0.01: {jac:.3f} vs {det:.3f}"
    if det * 1.2 > 1:
        measured += f" (+20 % would be {1.2 * det:.3f} > 1)"
    if col != at01:
        jac, det = _m(agg, router, col), _m(agg, "deterministic", col)
        measured += f"; γ={gamma_of(col):g}, deterministic nearest the paper's"
        measured += f" {PAPER_DET_JACCARD:.3f}: {jac:.3f} vs {det:.3f} ({jac / det - 1:+.1%})"
    sure = None
    if "values" in agg.get(router, {}).get(col, {}):
        d = paired(agg, router, "deterministic", col)
        if not math.isnan(d["lo"]):
            measured += f", Δ {d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"
            sure = d["lo"] >= 0.2 * det
    if draws(agg, router):
        measured += f", fresh draws (MC self-agreement {_m(agg, router, SELF_AGREEMENT):.3f})"
    goal = "Jaccard ≥ +20 % (at the paper's brittleness)"
    return goal, measured, (jac >= 1.2 * det, sure), jac, det


#: The marks of :func:`goals`: the claim holds on the mean and, where the figure has a paired 95 %
#: t-interval over seeds, on all of it; on the mean only; not on the mean; a figure is missing.
MET, ON_MEAN, MISSED, NA = (
    "met",
    "met on the mean only (the CI reaches past the bound)",
    "missed",
    "n/a",
)


def _ci(agg: dict, router: str, col: str) -> dict:
    return agg.get(router, {}).get(col, {"mean": math.nan, "lo": math.nan, "hi": math.nan})


def goals(agg: dict, router: str) -> list[tuple[str, str, str]]:
    """``(goal, measured, mark)`` for one router of :func:`vmoer_ppl.pipeline.seeds.aggregate`.

    The mark is one of :data:`MET`, :data:`ON_MEAN` (the mean meets the goal but its paired 95 %
    interval over seeds does not: accuracy's lower end below −0.01, NLL's upper end not below 0,
    Jaccard's or OOD AUROC's lower end short of the bound), :data:`MISSED`, or :data:`NA` when a
    figure is missing (nan). ECE and the temperature-scaling goal compare means, with no interval.
    """
    out = []

    def add(goal: str, measured: str, ok, *values) -> None:
        ok, sure = ok if isinstance(ok, tuple) else (ok, None)
        if any(math.isnan(x) for x in values):
            mark = NA
        else:
            mark = MISSED if not ok else ON_MEAN if sure is not None and not sure else MET
        out.append((goal, measured, mark))

    def sig(d: dict) -> str:
        return "" if math.isnan(d["hi"]) else f" [{d['lo']:+.3f}, {d['hi']:+.3f}]"

    d = _ci(agg, router, "Δ ID acc")
    sure = None if math.isnan(d["lo"]) else d["lo"] >= -0.01
    add(
        "accuracy within 1 point",
        f"Δacc {d['mean']:+.3f}{sig(d)}",
        (d["mean"] >= -0.01, sure),
        d["mean"],
    )
    ece, ece_det = _m(agg, router, "ID ECE"), _m(agg, "deterministic", "ID ECE")
    add(
        "ECE ≤ 0.5× deterministic",
        f"{ece:.3f} vs {ece_det:.3f}",
        ece <= 0.5 * ece_det,
        ece,
        ece_det,
    )
    d = _ci(agg, router, "Δ ID NLL")
    sure = None if math.isnan(d["hi"]) else d["hi"] < 0
    add(
        "NLL below deterministic",
        f"ΔNLL {d['mean']:+.3f}{sig(d)}",
        (d["mean"] < 0, sure),
        d["mean"],
    )
    add(*_ts_goal(agg, router))
    add(*_jaccard_goal(agg, router))
    add(*_ood_goal(agg, router))
    return out


def goals_table(agg: dict) -> str:
    """Markdown table of :func:`goals` for every ``vmoer-*`` router in ``agg``."""
    routers = fitted_vmoer(agg)
    if not routers or "deterministic" not in agg:
        return ""
    lines = [
        "| goal (paper's claim) | " + " | ".join(routers) + " |",
        "|" + "---|" * (len(routers) + 1),
    ]
    rows = {r: goals(agg, r) for r in routers}
    for i, (goal, _, _) in enumerate(rows[routers[0]]):
        cells = []
        for r in routers:
            _, measured, mark = rows[r][i]
            cells.append(f"{mark}: {measured}")
        lines.append(f"| {goal} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
