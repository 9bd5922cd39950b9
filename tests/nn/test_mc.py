import math

import torch

from vmoer_ppl.nn import entropy, mc_logits, mc_route, mean_probs, mutual_information, route


def test_mc_logits_is_log_of_mean_softmax():
    s = torch.randn(35, 2, 3, 8)
    torch.testing.assert_close(mc_logits(s), torch.log(torch.softmax(s, -1).mean(0)))
    torch.testing.assert_close(mean_probs(s).sum(-1), torch.ones(2, 3))


def test_one_sample_routes_like_deterministic_top_k():
    logits = torch.randn(4, 6)
    for rule in ["topk-softmax", "softmax-topk", "softmax-topk-norm"]:
        a, b = mc_route(logits.unsqueeze(0), 2, rule), route(logits, 2, rule)
        assert torch.equal(a.experts, b.experts)
        torch.testing.assert_close(a.weights, b.weights)


def test_mutual_information_is_zero_for_identical_samples_and_positive_otherwise():
    logits = torch.randn(3, 5)
    assert (mutual_information(logits.expand(10, 3, 5) * 7.3) == 0).all()  # exactly, not ~1e-9
    assert (mutual_information(torch.randn(50, 3, 5) * 3) > 0).all()


def test_entropy_of_uniform_is_log_e():
    torch.testing.assert_close(entropy(torch.full((4,), 0.25)), torch.tensor(math.log(4)))
