"""Deterministic pieces: gate rules, MC-averaged routing, the hookable router, a toy MoE."""

from vmoer_ppl.nn.gates import GateRule, as_gate_rule, gate_weights, route
from vmoer_ppl.nn.mc import entropy, mc_logits, mc_route, mean_probs, mutual_information
from vmoer_ppl.nn.outputs import RoutingOutput
from vmoer_ppl.nn.router import Router, RoutingFn
from vmoer_ppl.nn.selection import gumbel_topk, subset_probabilities
from vmoer_ppl.nn.toy import ToyMoEClassifier, ToyMoEConfig

__all__ = [
    "GateRule",
    "Router",
    "RoutingFn",
    "RoutingOutput",
    "ToyMoEClassifier",
    "ToyMoEConfig",
    "as_gate_rule",
    "entropy",
    "gate_weights",
    "gumbel_topk",
    "mc_logits",
    "mc_route",
    "mean_probs",
    "mutual_information",
    "route",
    "subset_probabilities",
]
