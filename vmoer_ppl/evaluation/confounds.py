"""OOD detection adjusted for a confounding covariate (e.g. prompt length).

An uncertainty score can separate two question sets only because it tracks something trivial
that also differs between them: routing signals at the last prompt token can follow the prompt's
length, and a set of longer questions is then "detected" by length, not by shift. The
covariate-adjusted AUROC (Janes & Pepe, "Adjusting for covariate effects on classification
accuracy using the covariate-adjusted ROC curve", Biometrika 96(2), 2009) compares each OOD
question only with ID questions of similar covariate: its placement value is the fraction of
those ID questions it outscores, and the AUROC is the mean placement over OOD questions. A score
that carries no information beyond the covariate comes out at 0.5; the covariate alone is also
reported (:func:`vmoer_ppl.evaluation.metrics.auroc` of the covariate itself).
"""

from __future__ import annotations

import math

import torch


def strata_edges(covariate: torch.Tensor, n_strata: int) -> torch.Tensor:
    """Inner stratum boundaries `(≤ n_strata − 1,)`: distinct quantiles of the ID covariate.

    Parameters
    ----------
    covariate : torch.Tensor
        `(N,)` the ID questions' covariate (the reference population).
    n_strata : int
        At most this many strata of about equal ID count (ties can merge strata).

    Returns
    -------
    torch.Tensor
        Sorted float64 boundaries, each an ID value below the maximum; stratum ``k`` is
        ``edges[k-1] < x <= edges[k]``, so every stratum holds at least one ID question.
    """
    if n_strata < 1:
        raise ValueError(f"n_strata must be at least 1, got {n_strata}")
    x = covariate.double()
    q = torch.linspace(0, 1, n_strata + 1, dtype=torch.float64)[1:-1]
    edges = torch.unique(torch.quantile(x, q, interpolation="lower"))
    return edges[edges < x.max()]  # edges are ID values: no stratum is empty


def adjusted_auroc(
    id_scores: torch.Tensor,
    ood_scores: torch.Tensor,
    id_covariate: torch.Tensor,
    ood_covariate: torch.Tensor,
    *,
    n_strata: int = 5,
) -> dict[str, float]:
    """AUROC of a score (OOD positive) among questions of similar covariate.

    The ID questions are cut into ``n_strata`` quantile strata of the covariate; each OOD question
    falls in the stratum of its covariate and is scored by its placement among that stratum's ID
    questions (ties count one half). OOD questions whose covariate lies outside the ID range have
    no ID question of similar covariate and are left out; ``coverage`` says how many were kept.

    Parameters
    ----------
    id_scores, ood_scores : torch.Tensor
        `(N,)` and `(M,)` uncertainty scores, higher = more OOD.
    id_covariate, ood_covariate : torch.Tensor
        `(N,)` and `(M,)` the covariate (e.g. prompt tokens).
    n_strata : int
        Quantile strata of the ID covariate.

    Returns
    -------
    dict
        ``auroc``: mean placement of the OOD questions within the ID range (0.5: nothing beyond
        the covariate; nan when none is); ``coverage``: the fraction of OOD questions within
        the ID range (low: the sets barely overlap in the covariate, and the figure rests on
        few questions).
    """
    if len(id_scores) != len(id_covariate) or len(ood_scores) != len(ood_covariate):
        raise ValueError("each score needs one covariate value per question")
    if len(id_scores) == 0 or len(ood_scores) == 0:
        raise ValueError("the adjusted AUROC needs ID and OOD questions")
    c_id, c_ood = id_covariate.double(), ood_covariate.double()
    inside = (c_ood >= c_id.min()) & (c_ood <= c_id.max())
    if not inside.any():
        return {"auroc": math.nan, "coverage": 0.0}
    edges = strata_edges(c_id, n_strata)
    s_id, s_ood = id_scores.double(), ood_scores.double()[inside]
    k_id, k_ood = torch.bucketize(c_id, edges), torch.bucketize(c_ood[inside], edges)
    placements = torch.empty(len(s_ood), dtype=torch.float64)
    for k in torch.unique(k_ood).tolist():
        ref, rows = s_id[k_id == k], k_ood == k  # every stratum holds ID questions
        x = s_ood[rows].unsqueeze(1)
        placements[rows] = ((x > ref).double() + 0.5 * (x == ref).double()).mean(1)
    return {"auroc": placements.mean().item(), "coverage": inside.double().mean().item()}
