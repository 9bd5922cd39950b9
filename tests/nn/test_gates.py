import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vmoer_ppl.nn import GateRule, gate_weights, route

LOGITS = torch.tensor([[0.5, 2.0, -1.0, 1.0]], dtype=torch.float64)


def test_topk_softmax_is_softmax_over_the_selected_logits():
    out = route(LOGITS, 2, "topk-softmax")
    assert out.experts.tolist() == [[1, 3]]
    e = torch.exp(torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(out.weights[0], e / e.sum())


def test_softmax_topk_keeps_full_softmax_probabilities():
    out = route(LOGITS, 2, "softmax-topk")
    p = torch.softmax(LOGITS[0], -1)
    torch.testing.assert_close(out.weights[0], p[[1, 3]])
    assert out.weights.sum() < 1


def test_sigmoid_rule_normalises_sigmoid_scores():
    out = route(LOGITS, 2, "sigmoid-topk-norm")
    s = torch.sigmoid(torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(out.weights[0], s / s.sum())


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 8), st.integers(0, 10_000))
def test_softmax_then_renormalise_equals_softmax_over_selected(E, seed):
    # Mixtral's rule and Granite's rule give the same weights (renormalised softmax identity).
    logits = torch.randn(5, E, generator=torch.Generator().manual_seed(seed))
    k = max(1, E // 2)
    experts = torch.topk(logits, k).indices
    torch.testing.assert_close(
        gate_weights(logits, experts, GateRule.SOFTMAX_TOPK_NORM),
        gate_weights(logits, experts, GateRule.TOPK_SOFTMAX),
    )


def test_given_selection_is_gated_not_reselected():
    experts = torch.tensor([[2, 0]])
    out = route(LOGITS, 2, "topk-softmax", experts=experts)
    assert out.experts.tolist() == [[2, 0]]


def test_k_larger_than_e_is_refused():
    with pytest.raises(ValueError, match="top_k=5 must be between 1 and num_experts=4"):
        route(LOGITS, 5, "topk-softmax")


def test_unknown_gate_rule_lists_known_rules():
    with pytest.raises(ValueError, match="known rules: 'topk-softmax'"):
        route(LOGITS, 2, "softmax-then-magic")
