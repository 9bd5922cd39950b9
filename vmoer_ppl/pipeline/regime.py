"""The confidence regime of a deterministic model: over- or under-confident.

Bayesian routing corrects over-confidence (the paper's backbone, LoRA fine-tuned on the ID set,
is over-confident); on an under-confident model the same method can only lower accuracy to meet
low confidence. Measure the regime before the method: accuracy against mean confidence, ECE,
and the post-hoc temperature T that minimises NLL (T > 1: over-confident).
"""

from __future__ import annotations

import torch

from vmoer_ppl.evaluation.metrics import accuracy, calibration_errors, nll
from vmoer_ppl.evaluation.temperature_scaling import fit_temperature
from vmoer_ppl.pipeline.evaluate import deterministic_outputs


def regime_of(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy, mean confidence, NLL, ECE and post-hoc temperature of answers `(N, C)`.

    Returns
    -------
    dict
        ``acc``, ``mean_confidence``, ``nll``, ``ece``, ``temperature`` (T > 1: the model is
        over-confident), ``overconfident`` (T > 1).
    """
    t = fit_temperature(probs, labels)
    return {
        "acc": accuracy(probs, labels),
        "mean_confidence": probs.max(-1).values.mean().item(),
        "nll": nll(probs, labels),
        "ece": calibration_errors(probs, labels)[0],
        "temperature": t,
        "overconfident": t > 1,
    }


def measure_regime(head, data: dict, desc: str = "regime") -> dict[str, float]:
    """:func:`regime_of` the deterministic ``head`` on an encoded set with ``labels``."""
    inputs = {k: v for k, v in data.items() if k != "num_options"}  # labels: dropped there
    probs = deterministic_outputs(head, inputs, desc=desc)["probs"]
    return regime_of(probs, data["labels"])
