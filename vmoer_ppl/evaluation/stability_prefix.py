"""Routing stability on the frozen-prefix cache: the noisy prefix states computed once per γ.

Embedding noise travels through the deterministic layers below the first Bayesian router
unchanged by the router under test, and the noise of level γ is one seeded tensor
(:class:`~vmoer_ppl.evaluation.stability.GaussianNoise`). So the states entering the first
Bayesian layer, clean and at every γ, are the same for the deterministic router and every fitted
family: computed once (``1 + len(gammas)`` prefix passes), each router then runs only the suffix.
On the demo (8 questions, 3 γ, 4 routers, 25 of 30 layers below the routers) this replaces 16 full
forwards by 4 prefix passes and 16 suffix passes, and gives the same experts as the full forward
(``tests/evaluation/test_stability_prefix.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vmoer_ppl.evaluation.stability import (
    GaussianNoise,
    forward_hook,
    input_embedding,
    norms_hook,
)


@dataclass
class StabilityInputs:
    """Network inputs of the stability probe with the prefix states already computed.

    Attributes
    ----------
    clean : dict of str to torch.Tensor
        Token inputs plus the clean ``prompt_states`` / ``option_states``.
    noisy : dict of float to dict
        γ -> the same inputs with the states computed under embedding noise of level γ.
    """

    clean: dict[str, torch.Tensor]
    noisy: dict[float, dict[str, torch.Tensor]]


@torch.no_grad()
def stability_inputs(
    head, inputs: dict[str, torch.Tensor], gammas: Sequence[float], seed: int = 0
) -> StabilityInputs:
    """Clean and noisy prefix states of the probe questions, shared by every router.

    Parameters
    ----------
    head : ClozeHead
        The cloze scorer over the backbone; ``head.first_layer`` is the first Bayesian layer.
    inputs : dict of str to torch.Tensor
        Token inputs of the probe questions (``prompt_ids``, ``prompt_mask``, ``option_ids``,
        ``option_mask``, ...; any ``labels`` or cached states are dropped).
    gammas : sequence of float
        Noise levels relative to the mean token-embedding norm (measured on the clean pass).
    seed : int
        The noise's seed, as in :func:`~vmoer_ppl.evaluation.stability.routing_stability`.

    Returns
    -------
    StabilityInputs
    """
    first = int(getattr(head, "first_layer", 0) or 0)
    if not first or not hasattr(head, "states_entering"):
        raise ValueError(
            f"{type(head).__name__} has no frozen prefix (first_layer={first}); call "
            "routing_stability with token inputs instead"
        )
    tokens = {k: v for k, v in inputs.items() if k != "labels" and not k.endswith("_states")}
    embedding, norms = input_embedding(head), []

    def states(hook) -> dict[str, torch.Tensor]:
        with forward_hook(embedding, hook):
            prompts, options = head.states_entering(first, **tokens)
        return {**tokens, "prompt_states": prompts, "option_states": options}

    clean = states(norms_hook(norms))
    scale = torch.cat([n.flatten() for n in norms]).mean()
    noisy = {g: states(GaussianNoise(g * scale, seed + 1).hook) for g in gammas}
    return StabilityInputs(clean, noisy)
