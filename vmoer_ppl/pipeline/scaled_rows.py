"""``vmoer-<family>+ts``: each VMoER router's predictive, then post-hoc temperature scaling.

Post-hoc temperature scaling (Guo et al. 2017) fits one T on the validation answers and divides
the log-probabilities by it: it fixes a model's global over- or under-confidence and nothing
else. The deterministic router's scaled row (``temperature-scaling``) is always evaluated; these
rows scale every other router the same way (its own T, fitted on its own validation predictive):
each VMoER router, its ``@mean`` control and each baseline. Both sides of "is Bayesian routing
better than a temperature" are then calibrated post hoc and their OOD AUROC is compared at
(nearly) equal NLL, and a control's scaled row tells whether what remains is the posterior or the
tuning. Answer-level only: scaling the answers does not change the routing, so these rows have no
routing signals and no stability probe.
"""

from __future__ import annotations

import time

import torch

from vmoer_ppl.evaluation.temperature_scaling import apply_temperature, fit_temperature
from vmoer_ppl.pipeline.evaluate import bayesian_outputs, option_counts, with_answer_scores

#: The ``--baselines`` name that adds these rows.
TEMPERATURE_SCALED = "temperature-scaled"

#: Suffix of a scaled row's name (``vmoer-logit-mf+ts``).
SCALED_SUFFIX = "+ts"


def scaled_name(router: str) -> str:
    """The name of ``router``'s temperature-scaled row."""
    return f"{router}{SCALED_SUFFIX}"


def scale_row(row: dict, data: dict, val_probs, val_labels) -> tuple[dict, float]:
    """One router's outputs on every set, scaled by the T fitted on its validation answers.

    Parameters
    ----------
    row : dict
        Set -> outputs with ``probs`` `(N, C)`.
    data : dict
        Set -> encoded set (for its option counts).
    val_probs, val_labels : torch.Tensor
        `(N_val, C)` the router's validation answer probabilities, `(N_val,)` the answers.

    Returns
    -------
    tuple
        Set -> ``{"probs": (N, C), answer scores}``, and T.
    """
    temp = fit_temperature(val_probs, val_labels)
    scaled = {}
    for k, o in row.items():
        p = apply_temperature(o["probs"], temp)
        scaled[k] = with_answer_scores({"probs": p}, option_counts(data[k], p))
    return scaled, temp


def scaled_routers(opened, predictors: dict, outs: dict, seed: int, timings: dict) -> tuple:
    """Routers' outputs in ``outs``, each temperature-scaled on its own validation predictive.

    Parameters
    ----------
    opened : OpenedRun
        The opened run (encoded sets with ``val``).
    predictors : dict
        Row name -> ``(model, guide, kwargs)``: how that row predicts
        (:func:`~vmoer_ppl.pipeline.evaluate.bayesian_outputs` keyword arguments: S, mode, link).
    outs : dict
        Router -> set -> outputs; holds every row of ``predictors``.
    seed : int
        Seeds each row's validation draws (per row, not by order).
    timings : dict
        Filled with ``<row>+ts_s``.

    Returns
    -------
    tuple of dict
        ``{"<row>+ts": {set: {"probs": (N, C), answer scores}}}`` and the fitted ``{row: T}``.
    """
    rows, temps = {}, {}
    val = opened.data["val"]
    for row, (model, guide, kwargs) in predictors.items():
        t = time.perf_counter()
        torch.manual_seed(seed)
        pred = bayesian_outputs(model, guide, val, desc=f"{row} val", **kwargs)
        name = scaled_name(row)
        rows[name], temps[name] = scale_row(outs[row], opened.data, pred["probs"], val["labels"])
        timings[f"{name}_s"] = time.perf_counter() - t
    return rows, temps
