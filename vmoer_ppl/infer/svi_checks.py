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


def prior_in_words(record: dict | None) -> str:
    """A prior-scale record (``spec["prior_scale"]``) as the flag that sets it, else ``""``."""
    if not isinstance(record, dict):
        return ""
    rule = record.get("rule")
    value = record.get("c" if rule == "relative" else "scale")
    if rule in ("relative", "absolute") and isinstance(value, (int, float)):
        return f"{rule}:{value:g}"
    return ""  # the family's default prior, or a record this version does not know


#: What both init-overlap messages report (threshold, the routers below it).
LOW_OVERLAP = "at initialisation a routing draw keeps under %.2f of the deterministic top-K at %s: "


def check_init_overlap(record: dict, threshold: float, model=None) -> None:
    """Log when a draw of the initial ``q`` swaps many of the deterministic experts.

    Parameters
    ----------
    record : dict
        The first step's :func:`step_record` (``routers[name]["overlap"]``: the share of the
        deterministic top-K that one routing draw keeps).
    threshold : float
        Overlaps below it are reported.
    model : RouterModel, optional
        The family decides what a low overlap means. Logit and weight families: a prior wide
        against the routers' logit spread (a warning naming the prior and the flag that narrows
        it). A family that samples its experts (``selection_latents``, the temperature family's
        Gumbel top-K): the swaps are its selection noise, present at any prior, so it is logged
        at INFO with no advice about the prior.
    """
    routers = record["routers"].items()
    low = {k: round(v["overlap"], 3) for k, v in routers if v["overlap"] < threshold}
    if not low:
        return
    if model is not None and getattr(model, "selection_latents", None):
        log.info(
            LOW_OVERLAP
            + "the %s family samples its experts (Gumbel top-K from softmax(l/T)), so draws swap "
            "experts at any prior",
            threshold,
            low,
            getattr(model, "family", type(model).__name__),
        )
        return
    now = prior_in_words((getattr(model, "spec", None) or {}).get("prior_scale"))
    log.warning(
        LOW_OVERLAP
        + "the prior%s is wide against these routers' logit spread, and training starts from "
        "swapped experts; a smaller prior scale keeps more (--prior-scale relative:C, C the "
        "multiple of each router's logit spread%s, or absolute:S; in Python, "
        "bayesianize(prior=relative_prior(logit_spread(model, train), C)) from "
        "vmoer_ppl.priors, or prior=S, with a smaller C or S)",
        threshold,
        low,
        f" ({now})" if now else "",
        ", smaller than now" if now.startswith("relative") else "",
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


#: Largest |d weights / d logits| still read as zero (float32 rounding of ``w / w`` is ~1e-7).
BLIND_GRADIENT = 1e-4


def logit_blind_routers(sites) -> list[str]:
    """Routers whose gate weights do not depend on their logits (top-1, renormalised).

    A draw's logits reach the likelihood through the selected experts' gate weights; where
    those are constant (one expert per token whose weight is renormalised to 1), the pathwise
    gradient of the likelihood is zero whatever the draw. Measured, not looked up: the gate
    rule's weights of 64 random logit rows are differentiated against a random projection, and
    a Jacobian below :data:`BLIND_GRADIENT` (rounding of ``w / w``; a gate that depends on its
    logits gives ~1e-1) counts as zero.

    Parameters
    ----------
    sites : sequence of RouterSite
        The Bayesian routers.

    Returns
    -------
    list of str
        The names of the routers whose weights have a zero Jacobian.
    """
    from vmoer_ppl.nn.gates import route

    blind = []
    gen = torch.Generator().manual_seed(0)
    for site in sites:
        device = site.weight.device if site.weight.device.type != "meta" else torch.device("cpu")
        logits = torch.randn(64, site.num_experts, generator=gen, dtype=site.dtype)
        logits = logits.to(device).requires_grad_()
        try:
            with torch.enable_grad():
                weights = route(logits, site.top_k, site.gate_rule).weights
                probe = torch.randn(weights.shape, generator=gen, dtype=weights.dtype)
                (weights * probe.to(weights.device)).sum().backward()
            grad = None if logits.grad is None else float(logits.grad.abs().max())
        except (RuntimeError, NotImplementedError) as err:  # a rule's buffers offloaded (meta)
            log.debug("gate-gradient probe of %s skipped: %s", site.name, err)
            continue
        if grad is None or grad <= BLIND_GRADIENT:
            blind.append(site.name)
    return blind


def check_gate_gradient(model, estimator: str) -> None:
    """Warn when the pathwise estimator cannot see the likelihood through any Bayesian router.

    Parameters
    ----------
    model : RouterModel
        Its ``sites`` are probed with :func:`logit_blind_routers`.
    estimator : str
        ``"pathwise"`` is checked; the score-function estimator differentiates through the
        selection itself.
    """
    if estimator != "pathwise":
        return
    blind = logit_blind_routers(getattr(model, "sites", ()))
    if not blind:
        return
    if getattr(model, "selection_latents", None):
        advice = (
            f"the {getattr(model, 'family', 'temperature')} family's temperature then learns "
            "nothing from the data; fit a logit family with --estimator score-function"
        )
    else:
        advice = "use --estimator score-function, which differentiates through the selection"
    log.warning(
        "the gate weights of %s do not depend on the routing logits (one expert per token, "
        "its weight renormalised to 1), so the pathwise gradient of the likelihood is zero and "
        "SVI fits only the KL; %s",
        blind,
        advice,
    )
