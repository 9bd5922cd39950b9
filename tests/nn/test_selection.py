import math

import pytest
import torch
from scipy import stats

from vmoer_ppl.nn import gumbel_topk, subset_probabilities


def test_subset_probabilities_sum_to_one_and_match_hand_case():
    p = torch.tensor([0.5, 0.3, 0.2])
    sp = subset_probabilities(p, 2)
    assert math.isclose(sum(sp.values()), 1.0)
    # P({0,1}) = p0 p1/(1-p0) + p1 p0/(1-p1)
    assert math.isclose(sp[frozenset({0, 1})], 0.5 * 0.3 / 0.5 + 0.3 * 0.5 / 0.7)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_gumbel_topk_frequencies_match_sampling_without_replacement(temperature):
    E, K, N = 5, 2, 40_000
    logits = torch.tensor([1.0, 0.2, -0.5, 0.7, 0.0])
    g = torch.distributions.Gumbel(0.0, 1.0).sample((N, E))
    picks = gumbel_topk(logits / temperature, K, g)  # (N, K)
    exact = subset_probabilities(torch.softmax(logits / temperature, -1), K)
    keys = sorted(exact, key=sorted)
    counts = {k: 0 for k in keys}
    for row in picks.tolist():
        counts[frozenset(row)] += 1
    observed = [counts[k] for k in keys]
    expected = [N * exact[k] for k in keys]
    chi2 = stats.chisquare(observed, expected)
    assert chi2.pvalue > 1e-3, (observed, expected)


def test_gumbel_topk_returns_distinct_experts():
    picks = gumbel_topk(
        torch.zeros(1000, 6), 3, torch.distributions.Gumbel(0.0, 1.0).sample((1000, 6))
    )
    assert all(len(set(r)) == 3 for r in picks.tolist())
