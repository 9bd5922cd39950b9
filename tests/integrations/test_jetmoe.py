"""JetMoE's gating: its grouped output rebuilt exactly, for the MLP and the attention experts."""

import torch

from tests.integrations.routing_probe import upstream_and_routed
from vmoer_ppl import bayesianize
from vmoer_ppl.integrations.hf.tiny import tiny_model
from vmoer_ppl.nn.gates import GateRule, route


def test_attention_and_mlp_routers_are_both_sites():
    model, _ = bayesianize(tiny_model("jetmoe"), family="logit-mf", layers="all")
    names = [s.name for s in model.sites]
    assert any(n.endswith("self_attention.experts.router") for n in names), names
    assert any(n.endswith("mlp.router") for n in names), names
    assert {s.gate_rule for s in model.sites} == {GateRule.TOPK_SOFTMAX}


def test_grouped_output_equals_upstream_gating():
    model, _ = bayesianize(tiny_model("jetmoe"), family="logit-mf", layers="all")
    for site in model.sites:
        g = torch.Generator().manual_seed(0)
        h = torch.randn(9, site.hidden_size, generator=g, dtype=site.weight.dtype)
        want, got, _ = upstream_and_routed(site, h)
        assert got[3] == want[3]  # expert sizes
        for a, b in zip(got[:3] + got[4:], want[:3] + want[4:], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_different_selection_changes_the_answer():
    hf = tiny_model("jetmoe")
    model, _ = bayesianize(hf, family="logit-mf", layers="all")
    ids = torch.randint(3, 100, (2, 6), generator=torch.Generator().manual_seed(1))
    want = hf(input_ids=ids).logits
    for s in model.sites:  # the K smallest logits instead of the K largest
        s.router.routing_fn = lambda u, l_det, s=s: route(-l_det, s.top_k, s.gate_rule)
    try:
        got = hf(input_ids=ids).logits
    finally:
        for s in model.sites:
            s.router.routing_fn = None
    assert (got - want).abs().max() > 1e-3
