"""Rule objects against the upstream functions they reproduce, on many random logits."""

import torch
from transformers.models.phimoe.modeling_phimoe import sparsemixer

from vmoer_ppl.nn.gates import GateRule, route
from vmoer_ppl.nn.rules import SparseMixerRule


def test_sparsemixer_rule_equals_phimoe_sparsemixer_in_eval_mode():
    g = torch.Generator().manual_seed(0)
    logits = (
        torch.randn(4096, 16, generator=g)
        * torch.tensor([0.02, 0.3, 3.0, 30.0]).repeat(1024)[:, None]
    )
    want_w, want_e = sparsemixer(logits, jitter_eps=0.01, training=False, top_k=2)
    got = route(logits, 2, SparseMixerRule(0.01))
    assert torch.equal(got.experts, want_e)
    torch.testing.assert_close(got.weights, want_w, atol=0, rtol=0)


def test_sparsemixer_rule_gates_a_given_selection_in_its_order():
    logits = torch.tensor([[3.0, 2.99, -1.0, 0.5]])
    out = route(logits, 2, SparseMixerRule(0.01), experts=torch.tensor([[1, 0]]))
    assert out.experts.tolist() == [[1, 0]]
    # expert 1 first: expert 0 lies above it (distance < 0), so both share the first softmax
    assert 0.4 < out.weights[0, 0].item() < 0.5 and out.weights[0, 1].item() == 1.0


def test_llama4_sigmoid_topk_rule_is_sigmoid_of_the_selected_logits():
    logits = torch.tensor([[0.0, 2.0, -1.0, 1.0]])
    out = route(logits, 2, GateRule.SIGMOID_TOPK)
    assert out.experts.tolist() == [[1, 3]]
    torch.testing.assert_close(out.weights, torch.sigmoid(torch.tensor([[2.0, 1.0]])))
