"""Report tables of OOD AUROC at equal prompt length, for one run and pooled over seeds."""

from __future__ import annotations

import math
import statistics

from vmoer_ppl.pipeline.evaluate import SCORES, mean_over_ood

#: The scores whose length-adjusted AUROC the tables show (answer- and routing-level).
CONFOUND_SCORES = ("answer_entropy", "mutual_information", "ilv")


def unmatched_sets(results: dict) -> list[str]:
    """OOD sets none of whose prompts has an ID prompt of similar length (coverage 0).

    Their AUROC at equal prompt length does not exist; :func:`length_rows` leaves them out.
    """
    first = next(iter(results.values()), {})
    return [k for k, v in first.items() if ":" in k and v.get("length_coverage", 1.0) == 0.0]


def _mean_over(result: dict, key: str, skip: list[str]) -> float:
    return mean_over_ood({k: v for k, v in result.items() if k not in skip}, key)


def length_rows(results: dict) -> dict[str, dict[str, tuple[float, float]]]:
    """Per router and score: mean over OOD sets of (AUROC, AUROC at equal prompt length).

    Both means are over the same sets: those with prompts of ID-like length
    (:func:`unmatched_sets` left out).

    Parameters
    ----------
    results : dict
        ``metrics.json`` ``results`` (router -> set -> metrics).

    Returns
    -------
    dict
        ``{router: {score: (auroc, adjusted_auroc)}}`` for the scores a router has both of.
    """
    out, skip = {}, unmatched_sets(results)
    for name, r in results.items():
        row = {}
        for score in SCORES:
            raw = _mean_over(r, f"auroc_{score}", skip)
            adj = _mean_over(r, f"adjusted_auroc_{score}", skip)
            if not (math.isnan(raw) or math.isnan(adj)):
                row[score] = (raw, adj)
        if row:
            out[name] = row
    return out


def length_alone(results: dict) -> float:
    """Mean over OOD sets of prompt length's own AUROC (the same for every router)."""
    return mean_over_ood(next(iter(results.values()), {}), "auroc_prompt_tokens")


def unmatched_text(results: dict) -> str:
    """The OOD sets whose prompt lengths miss the ID range, in a sentence; ``""`` if none."""
    skip = unmatched_sets(results)
    if not skip:
        return ""
    return (
        f"Left out: {', '.join(skip)}: every prompt of it lies outside the ID prompts' length "
        "range, so length alone separates it from the ID set and no AUROC at equal length "
        "exists."
    )


def length_table(results: dict) -> str:
    """Markdown: AUROC and AUROC at equal prompt length of :data:`CONFOUND_SCORES`, per router.

    Empty when the run has no length-adjusted figures (evaluated before they existed, or data
    without prompt masks).
    """
    rows = length_rows(results)
    if not rows:
        return unmatched_text(results)
    lines = [
        f"Prompt length alone detects the OOD sets with mean AUROC {length_alone(results):.3f}. "
        "A score's AUROC at equal prompt length compares each OOD question only with ID "
        "questions of similar length (5 quantile strata; Janes & Pepe 2009): 0.5 means the score "
        "carries nothing beyond length.",
        "",
        "| router | " + " | ".join(f"{s}: AUROC / at equal length" for s in CONFOUND_SCORES) + " |",
        "|" + "---|" * (len(CONFOUND_SCORES) + 1),
    ]
    for name, row in rows.items():
        cells = [f"{row[s][0]:.3f} / {row[s][1]:.3f}" if s in row else "–" for s in CONFOUND_SCORES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if note := unmatched_text(results):
        lines += ["", note]
    return "\n".join(lines)


def length_seeds_table(runs: list[dict]) -> str:
    """Markdown over seeds: mean ± sd of AUROC and AUROC at equal prompt length.

    Parameters
    ----------
    runs : list of dict
        From :func:`vmoer_ppl.pipeline.seeds.load_runs`.

    Returns
    -------
    str
        Empty when no run carries length-adjusted figures.
    """
    per_run = [length_rows(r["results"]) for r in runs]
    if not all(per_run):
        return ""

    def cell(vals: list[float]) -> str:
        sd = f" ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else ""
        return f"{statistics.fmean(vals):.3f}{sd}"

    alone = [length_alone(r["results"]) for r in runs]
    lines = [
        f"Prompt length alone: mean OOD AUROC {cell(alone)} over {len(runs)} seeds. "
        "Each cell: AUROC / AUROC at equal prompt length (mean ± sd over seeds).",
        "",
        "| router | " + " | ".join(CONFOUND_SCORES) + " |",
        "|" + "---|" * (len(CONFOUND_SCORES) + 1),
    ]
    for name in per_run[0]:
        cells = []
        for s in CONFOUND_SCORES:
            pairs = [rows[name][s] for rows in per_run if s in rows.get(name, {})]
            if len(pairs) < len(runs):
                cells.append("–")
                continue
            cells.append(f"{cell([p[0] for p in pairs])} / {cell([p[1] for p in pairs])}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
