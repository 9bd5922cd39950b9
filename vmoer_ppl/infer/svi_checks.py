"""Checks and records of single SVI steps.

The diagnostics entry, a too-wide initial ``q``, and a diverging loss (stopped before anything
non-finite reaches the guide).
"""

from __future__ import annotations

import logging
import math

import torch

from vmoer_ppl.infer.diagnostics import Recorder

log = logging.getLogger("vmoer_ppl.infer.svi")


def step_record(step: int, loss: float, recorder: Recorder, grad_norm, lr: float) -> dict:
    """One entry of :attr:`SVIResult.diagnostics` (the statistics of the pass before the update)."""
    return {
        "step": step + 1,
        "loss": loss,
        "nll": recorder.nll,
        "grad_norm": float(grad_norm),
        "lr": lr,
        "routers": recorder.summary(),
    }


def check_init_overlap(record: dict, threshold: float) -> None:
    """Log a warning when a draw of the initial ``q`` swaps many of the deterministic experts."""
    routers = record["routers"].items()
    low = {k: round(v["overlap"], 3) for k, v in routers if v["overlap"] < threshold}
    if low:
        log.warning(
            "at initialisation a routing draw keeps under %.2f of the deterministic top-K at %s: "
            "the prior is wide against these routers' logit spread, and training starts from "
            "swapped experts; use a relative prior scale (--prior-scale relative:C) or a "
            "smaller one",
            threshold,
            low,
        )


def check_finite(loss: float, grad_norm: torch.Tensor, step: int, lr: float) -> None:
    """Stop before a non-finite loss or gradient reaches the guide (nothing NaN is ever saved).

    Raises
    ------
    FloatingPointError
        Naming the step and the learning rate to lower.
    """
    if math.isfinite(loss) and bool(torch.isfinite(grad_norm)):
        return
    what = f"the loss became {loss}" if not math.isfinite(loss) else "the gradient became inf/NaN"
    raise FloatingPointError(diverged(what, step, lr))


def diverged(what: str, step: int, lr: float) -> str:
    """The message of a diverging fit: what happened, when, and the setting to change."""
    return (
        f"{what} at step {step}; lower the learning rate (--lr, now {lr:g}) or the prior "
        "scale, or check the data for empty questions"
    )
