"""Closed-form predictive routing against Monte Carlo ground truth (fixed seeds, float64)."""

import math

import pytest
import torch

from vmoer_ppl.nn.link import (
    LINKS,
    gaussian_gate_logits,
    hermite_rule,
    laplace_bridge,
    mean_field_softmax,
    probit_softmax,
    second_order_softmax,
    weighted_gate_logits,
)
from vmoer_ppl.nn.rules import GroupLimitedSigmoidRule, GroupLimitedSqrtSoftplusRule


def gaussians(n=128, e=8, sigma=0.4, full=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, e, generator=g, dtype=torch.float64)
    if not full:
        return mu, (sigma * (0.5 + torch.rand(n, e, generator=g, dtype=torch.float64))) ** 2
    a = sigma * torch.randn(n, e, e, generator=g, dtype=torch.float64) / math.sqrt(e)
    return mu, a @ a.transpose(-1, -2) + 0.01 * sigma**2 * torch.eye(e, dtype=torch.float64)


def monte_carlo(mu, cov, fn=lambda x: torch.softmax(x, -1), draws=50_000, seed=1):
    g = torch.Generator().manual_seed(seed)
    scale = cov.sqrt() if cov.dim() == mu.dim() else torch.linalg.cholesky(cov)
    total = 0.0
    for _ in range(10):
        eps = torch.randn(draws // 10, *mu.shape, generator=g, dtype=mu.dtype)
        if cov.dim() == mu.dim():
            noise = scale * eps
        else:  # one (draws × e) @ (e × e) product per row: 5x faster than 1-column products
            noise = torch.einsum("...ij,d...j->d...i", scale, eps)
        total += fn(mu + noise).mean(0)
    return total / 10


def tv(p, q):
    return float((p - q).abs().sum(-1).mean() / 2)


@pytest.mark.parametrize("fn", [second_order_softmax, probit_softmax, mean_field_softmax])
def test_every_link_is_the_softmax_at_zero_variance(fn):
    mu, var = gaussians()
    torch.testing.assert_close(fn(mu, torch.zeros_like(var)), torch.softmax(mu, -1))


@pytest.mark.parametrize("full", [False, True])
def test_second_order_beats_35_draws_where_the_posterior_is_narrower_than_the_logits(full):
    mu, cov = gaussians(full=full)
    ref = monte_carlo(mu, cov)
    err = tv(second_order_softmax(mu, cov), ref)
    assert err < 0.003
    if not full:
        g = torch.Generator().manual_seed(2)
        eps = torch.randn(35, *mu.shape, generator=g, dtype=mu.dtype)
        assert err < tv(torch.softmax(mu + cov.sqrt() * eps, -1).mean(0), ref) / 5
        assert err < tv(probit_softmax(mu, cov), ref) / 3  # probit misses σ's asymmetry


def test_full_covariance_enters_second_order_exactly():
    mu, cov = gaussians(full=True, sigma=0.6)
    ref = monte_carlo(mu, cov)
    diag_only = second_order_softmax(mu, cov.diagonal(dim1=-2, dim2=-1))
    assert tv(second_order_softmax(mu, cov), ref) < tv(diag_only, ref) / 2


def test_bridge_and_mean_field_are_probability_vectors_close_to_monte_carlo_at_large_variance():
    mu, var = gaussians(sigma=2.0)
    ref = monte_carlo(mu, var)
    for fn in (mean_field_softmax, laplace_bridge):
        p = fn(mu, var)
        torch.testing.assert_close(p.sum(-1), torch.ones(len(mu), dtype=mu.dtype))
        assert tv(p, ref) < tv(torch.softmax(mu, -1), ref) + 0.2


def test_sigmoid_rules_get_the_probit_average_score():
    mu, var = gaussians(sigma=0.8)
    rule = GroupLimitedSigmoidRule(torch.zeros(8), 1, 1, True, 1.0)
    want = monte_carlo(mu, var, fn=torch.sigmoid)
    got = gaussian_gate_logits(mu, var, rule).sigmoid()
    assert (got - want).abs().max() < 0.02


def test_gate_logits_are_the_log_of_the_link():
    mu, var = gaussians()
    got = gaussian_gate_logits(mu, var, "softmax_topk", "probit")
    torch.testing.assert_close(got.exp(), probit_softmax(mu, var))


def test_unknown_link_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown link approximation 'laplace'.*second-order"):
        gaussian_gate_logits(*gaussians(), "softmax_topk", "laplace")
    assert LINKS[0] == "second-order"


def test_hermite_quadrature_integrates_a_tempered_softmax_over_log_t():
    x, w = hermite_rule(16, torch.float64)
    assert abs(float(w.sum()) - 1) < 1e-12 and abs(float((w * x**2).sum()) - 1) < 1e-12
    g = torch.Generator().manual_seed(0)
    l_det = 2 * torch.randn(64, 8, generator=g, dtype=torch.float64)
    loc, scale = (
        0.2 * torch.randn(64, 1, dtype=torch.float64, generator=g),
        torch.full((64, 1), 0.7, dtype=torch.float64),
    )
    got = weighted_gate_logits(
        l_det / (loc + scale * x.view(-1, 1, 1)).exp(), w, "softmax_topk"
    ).exp()
    t = (loc + scale * torch.randn(50_000, 64, 1, generator=g, dtype=torch.float64)).exp()
    want = torch.softmax(l_det / t, -1).mean(0)
    assert (got - want).abs().max() < 3e-3


@pytest.mark.parametrize("full", [False, True])
def test_mutual_information_is_half_the_fisher_trace_at_small_variance(full):
    from vmoer_ppl.nn.link import gaussian_mutual_information
    from vmoer_ppl.nn.mc import entropy

    mu, cov = gaussians(sigma=0.2, full=full)

    def probs_and_entropy(x):
        p = torch.softmax(x, -1)
        return torch.cat([p, entropy(p).unsqueeze(-1)], -1)

    both = monte_carlo(mu, cov, fn=probs_and_entropy)  # one set of draws for both averages
    want = entropy(both[..., :-1]) - both[..., -1]
    got = gaussian_mutual_information(mu, cov)
    assert (got >= 0).all()
    assert abs(float(got.mean() / want.mean()) - 1) < 0.05
    assert abs(float(torch.corrcoef(torch.stack([got, want]))[0, 1])) > 0.95


def test_sqrt_softplus_rule_averages_its_own_scores_in_every_mode():
    rule = GroupLimitedSqrtSoftplusRule(None, 1, 1, True, 1.0)
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(5, 6, generator=g, dtype=torch.float64) * 2
    var = torch.rand(5, 6, generator=g, dtype=torch.float64) * 2
    s = rule.scores(mean)
    torch.testing.assert_close(rule.scores(rule.from_scores(s)), s)  # the inverse is exact
    draws = mean + var.sqrt() * torch.randn(200_000, 5, 6, generator=g, dtype=torch.float64)
    want = rule.scores(draws).mean(0)  # E[sqrt(softplus(l))] by Monte Carlo
    got = rule.scores(gaussian_gate_logits(mean, var, rule))  # quadrature, through link.py
    torch.testing.assert_close(got, want, rtol=0, atol=1e-2)  # 5 Monte Carlo standard errors
    torch.testing.assert_close(rule.scores(rule.mc_logits(draws)), want)
    x, w = hermite_rule(16, torch.float64)
    nodes = mean + var.sqrt() * x.reshape(-1, 1, 1)
    torch.testing.assert_close(
        weighted_gate_logits(nodes, w, rule),
        rule.from_scores((w.reshape(-1, 1, 1) * rule.scores(nodes)).sum(0)),
    )
