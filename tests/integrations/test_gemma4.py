"""Gemma-4's router: the patched router in mean mode returns upstream's output exactly."""

import torch

from tests.integrations.routing_probe import upstream_and_routed
from vmoer_ppl import bayesianize
from vmoer_ppl.integrations.hf.tiny import tiny_model
from vmoer_ppl.nn.gates import GateRule


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
    _, _, seen = upstream_and_routed(site, h)
    u = r.norm(h) * r.scale * r.scalar_root_size
    torch.testing.assert_close(seen["u"], u)
    torch.testing.assert_close(seen["l"], r.proj(u))


def test_gate_rule_output_matches_upstream_router_including_per_expert_scale():
    site, h = _router_and_input()
    r = site.router
    assert not torch.allclose(r.per_expert_scale, torch.ones_like(r.per_expert_scale))
    want, got, _ = upstream_and_routed(site, h)
    torch.testing.assert_close(got[2], want[2], rtol=0, atol=0)  # the same experts
    torch.testing.assert_close(got[1], want[1])  # weights x per-expert scale
    torch.testing.assert_close(got[0], want[0])  # the softmax probabilities
