"""Gemma-4's router: the patched router in mean mode returns upstream's output exactly."""

import torch

from vmoer_ppl import bayesianize
from vmoer_ppl.integrations.hf.tiny import tiny_model
from vmoer_ppl.nn.gates import GateRule, route


def _router_and_input():
    hf = tiny_model("gemma4_text")
    model, _ = bayesianize(hf, family="logit-mf", layers="last:1")
    site = model.sites[0]
    g = torch.Generator().manual_seed(0)
    h = torch.randn(7, site.hidden_size, generator=g, dtype=site.weight.dtype)
    return site, h


def test_router_input_is_the_normalised_scaled_hidden_state_and_w_is_proj():
    site, h = _router_and_input()
    r = site.router
    assert site.weight is r.proj.weight and site.gate_rule is GateRule.SOFTMAX_TOPK_NORM
    assert site.top_k == r.config.top_k_experts
    seen = {}

    def fn(u, l_det):
        seen["u"], seen["l"] = u, l_det
        return route(l_det, site.top_k, site.gate_rule)

    r.routing_fn = fn
    try:
        r(h)
    finally:
        r.routing_fn = None
    u = r.norm(h) * r.scale * r.scalar_root_size
    torch.testing.assert_close(seen["u"], u)
    torch.testing.assert_close(seen["l"], r.proj(u))


def test_gate_rule_output_matches_upstream_router_including_per_expert_scale():
    site, h = _router_and_input()
    r = site.router
    assert not torch.allclose(r.per_expert_scale, torch.ones_like(r.per_expert_scale))
    want = r(h)  # no routing function: upstream's forward
    r.routing_fn = lambda u, l_det: route(l_det, site.top_k, site.gate_rule)
    try:
        got = r(h)
    finally:
        r.routing_fn = None
    torch.testing.assert_close(got[2], want[2], rtol=0, atol=0)  # the same experts
    torch.testing.assert_close(got[1], want[1])  # weights x per-expert scale
    torch.testing.assert_close(got[0], want[0])  # the softmax probabilities
