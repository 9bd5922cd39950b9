"""The confidence regime of a deterministic model: over- or under-confident.

Bayesian routing corrects over-confidence (the paper's backbone, LoRA fine-tuned on the ID set,
is over-confident); on an under-confident model the same method can only lower accuracy to meet
low confidence. Measure the regime before the method: accuracy against mean confidence, ECE,
and the post-hoc temperature T that minimises NLL (T > 1: over-confident).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import torch

from vmoer_ppl.evaluation.metrics import accuracy, calibration_errors, nll
from vmoer_ppl.evaluation.temperature_scaling import T_RANGE, fit_temperature
from vmoer_ppl.pipeline.evaluate import deterministic_outputs

log = logging.getLogger(__name__)

#: |log T| below which one temperature is said to barely change the answers (T within ~5 % of 1).
NEAR_ONE = 0.05


def regime_of(
    probs: torch.Tensor, labels: torch.Tensor, temperature: float | None = None
) -> dict[str, float]:
    """Accuracy, mean confidence, NLL, ECE and post-hoc temperature of answers `(N, C)`.

    Parameters
    ----------
    probs : torch.Tensor
        `(N, C)` answer probabilities.
    labels : torch.Tensor
        `(N,)` correct options.
    temperature : float, optional
        The post-hoc temperature when already fitted on these answers (else fitted here).

    Returns
    -------
    dict
        ``acc``, ``mean_confidence``, ``nll``, ``ece``, ``temperature`` (T > 1: the model is
        over-confident), ``overconfident`` (T > 1).
    """
    t = fit_temperature(probs, labels) if temperature is None else temperature
    return {
        "acc": accuracy(probs, labels),
        "mean_confidence": probs.max(-1).values.mean().item(),
        "nll": nll(probs, labels),
        "ece": calibration_errors(probs, labels)[0],
        "temperature": t,
        "overconfident": t > 1,
    }


def confidence_side(temperature: float) -> str:
    """``"over"`` (T > 1), ``"under"`` (T < 1) or ``"near"`` (|log T| < :data:`NEAR_ONE`)."""
    if abs(math.log(temperature)) < NEAR_ONE:
        return "near"
    return "over" if temperature > 1 else "under"


def fit_regime(out: Path, head, val: dict) -> dict:
    """The deterministic model's validation regime before SVI, logged; warns when under-confident.

    Stage 1 measures it after training (``stage1/regime.json``'s ``val_after``, on the same
    validation split): reused. Otherwise one deterministic pass over the validation split.

    Parameters
    ----------
    out : Path
        The run directory.
    head : nn.Module
        The answer network, routed deterministically when called directly.
    val : dict
        The encoded validation split, with ``labels``.

    Returns
    -------
    dict
        :func:`regime_of`'s result, ``questions`` and ``source`` (``"stage 1"`` or ``"measured"``).
    """
    regime = None
    saved = out / "stage1" / "regime.json"
    if saved.is_file():
        try:
            regime = {**json.loads(saved.read_text())["val_after"], "source": "stage 1"}
            confidence_side(float(regime["temperature"]))  # a number > 0
        except (ValueError, KeyError, TypeError):
            regime = None  # unreadable: measured again
    if regime is None:
        regime = {**measure_regime(head, val, desc="regime"), "source": "measured"}
    regime["questions"] = len(val["labels"])
    t = regime["temperature"]
    if confidence_side(t) == "under":
        log.warning(
            "the deterministic model is under-confident on validation (post-hoc T = %.2f, "
            "accuracy %.3f against mean confidence %.3f): Bayesian routing averages answers over "
            "routings, which lowers confidence further, so expect no calibration gain from it "
            "(a backbone fitted to the task, e.g. --lora-steps, is the regime the method is for)",
            t,
            regime["acc"],
            regime["mean_confidence"],
        )
    else:
        log.info("validation regime of the deterministic model: %s", regime)
    return regime


def measure_regime(head, data: dict, desc: str = "regime") -> dict[str, float]:
    """:func:`regime_of` the deterministic ``head`` on an encoded set with ``labels``."""
    inputs = {k: v for k, v in data.items() if k != "num_options"}  # labels: dropped there
    probs = deterministic_outputs(head, inputs, desc=desc)["probs"]
    return regime_of(probs, data["labels"])


def regime_text(regime: dict | None) -> str:
    """The report's sentences on the deterministic router's validation regime.

    Parameters
    ----------
    regime : dict, optional
        :func:`regime_of`'s result with ``questions`` (the validation size); None for a run
        evaluated before the regime was recorded.

    Returns
    -------
    str
    """
    if not regime:
        return "Regime: not recorded (evaluated before metrics.json held it)."
    t, acc, conf = regime["temperature"], regime["acc"], regime["mean_confidence"]
    side = "below" if conf < acc else "above"
    scaled = {
        "near": "≈ 1: one temperature barely changes these answers",
        "over": "> 1: over-confident",
        "under": "< 1: under-confident",
    }[confidence_side(t)]
    if t >= T_RANGE[1]:  # the fit ran into its upper bound
        scaled = (
            "its upper bound: near-uniform answers score best on validation, as for a model at "
            "chance on this set"
        )
    return (
        f"Regime (deterministic router on the {regime.get('questions', '?')} validation "
        f"questions): accuracy {acc:.3f}, mean confidence {conf:.3f} ({side} accuracy), ECE "
        f"{regime['ece']:.3f}, post-hoc temperature T = {t:.2f} ({scaled}). Bayesian routing "
        "averages answers over routings, which lowers confidence: it is meant for routers whose "
        "confidence is above their accuracy (T > 1)."
    )


def regime_seeds_text(metas: list[dict]) -> str:
    """One line on the deterministic router's validation regime over seeds (``vmoer compare``).

    Parameters
    ----------
    metas : list of dict
        Each run's ``metrics.json`` ``meta``, in seed order.

    Returns
    -------
    str
        Per seed, T and accuracy − mean confidence; ``""`` when no run records its regime.
    """
    regimes = [m.get("regime") for m in metas]
    if not any(regimes):
        return ""
    t = ", ".join("–" if r is None else f"{r['temperature']:.2f}" for r in regimes)
    gap = ", ".join(
        "–" if r is None else f"{r['acc'] - r['mean_confidence']:+.3f}" for r in regimes
    )
    return (
        f"Regime of the deterministic router on validation, per seed: post-hoc T = {t}; "
        f"accuracy − mean confidence = {gap} (T > 1, a negative gap: over-confident, the regime "
        "Bayesian routing is meant for)."
    )
