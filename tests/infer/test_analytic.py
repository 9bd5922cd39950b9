"""``predict(mode="analytic")``: deterministic answers equal to the Monte Carlo integral."""

import math

import pytest
import torch

from tests.common import toy_batch, toy_pair
from vmoer_ppl import predict

GAUSSIAN = ["logit-mf", "logit-fc", "weight", "temperature"]


@pytest.mark.parametrize("family", GAUSSIAN)
def test_analytic_answers_do_not_move_with_the_seed(family):
    model, guide = toy_pair(family, perturb=0.2)
    ids, mask, _ = toy_batch()
    torch.manual_seed(0)
    a = predict(model, guide, ids, mask, mode="analytic", num_samples=8)
    torch.manual_seed(1)
    b = predict(model, guide, ids, mask, mode="analytic", num_samples=8)
    torch.testing.assert_close(a.probs, b.probs, rtol=0, atol=0)
    torch.testing.assert_close(a.routing_entropy, b.routing_entropy, rtol=0, atol=0)


@pytest.mark.parametrize("family", GAUSSIAN)
def test_analytic_routing_probabilities_match_many_draws(family):
    # prior scale 0.3: the posterior narrower than the toy's logit spread, the regime the
    # second-order link is for (with s = 1 on this toy the top-K sets already differ)
    model, guide = toy_pair(family, perturb=0.2, prior=0.3)
    ids, mask, _ = toy_batch()
    torch.manual_seed(0)
    mc = predict(model, guide, ids, mask, mode="mc", num_samples=40_000)
    exact = predict(model, guide, ids, mask, mode="analytic", num_samples=2)
    for name, r in exact.routing.items():
        real = mask.bool()
        err = (r.probs - mc.routing[name].probs).abs().sum(-1)[real] / 2  # TV per token
        assert err.max() < 0.01, (name, float(err.max()))
        assert torch.equal(r.experts.sort(-1).values, mc.routing[name].experts.sort(-1).values)
    torch.testing.assert_close(exact.probs, mc.probs, atol=5e-3, rtol=0)


@pytest.mark.parametrize("family", ["logit-mf", "logit-fc"])
@pytest.mark.parametrize("link", ["mean-field", "probit", "bridge"])
def test_every_link_routes(family, link):
    model, guide = toy_pair(family)
    out = predict(model, guide, *toy_batch()[:2], mode="analytic", link=link)
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(3))


def test_per_expert_temperature_names_the_mode_that_works():
    model, guide = toy_pair("temperature-expert")
    with pytest.raises(NotImplementedError, match="per_expert=True use mode='mc'"):
        predict(model, guide, *toy_batch()[:2], mode="analytic")


def test_unknown_link_is_refused():
    model, guide = toy_pair("logit-mf")
    with pytest.raises(ValueError, match="unknown link approximation"):
        predict(model, guide, *toy_batch()[:2], mode="analytic", link="unscented")


@pytest.mark.parametrize(
    "family, rel", [("logit-mf", 0.1), ("logit-fc", 0.1), ("temperature", 0.03)]
)
def test_closed_form_signals_match_many_draws_and_nothing_is_drawn(family, rel):
    model, guide = toy_pair(family, perturb=0.2, prior=0.3)
    ids, mask, _ = toy_batch()
    torch.manual_seed(0)
    mc = predict(model, guide, ids, mask, mode="mc", num_samples=40_000)
    state = torch.get_rng_state()
    exact = predict(model, guide, ids, mask, mode="analytic")
    assert torch.equal(torch.get_rng_state(), state)  # no draws at all
    real = mask.bool()
    for name, r in exact.routing.items():
        a, b = r.mutual_information[real], mc.routing[name].mutual_information[real]
        assert (a >= 0).all() and abs(float(a.mean() / b.mean()) - 1) < rel, name
        torch.testing.assert_close(r.ilv[real], mc.routing[name].ilv[real], rtol=0.1, atol=1e-4)


@pytest.mark.parametrize("sigma", [0.25, 0.5, 1.0, 2.0])
def test_temperature_quadrature_picks_enough_nodes_for_the_widest_posterior(sigma):
    import pyro.distributions as dist
    from vmoer_ppl.models.temperature_router import log_space

    from vmoer_ppl.nn.link import quadrature_nodes

    model, _ = toy_pair("temperature")
    site = model.sites[0]
    l_det = 4.0 * torch.randn(3, 6, site.num_experts, generator=torch.Generator().manual_seed(0))
    scale = torch.full((3, 6), sigma).index_fill(1, torch.tensor([0]), sigma / 4)
    q = {"temperature": log_space(dist.Normal(torch.zeros(3, 6), scale))}
    auto = model.analytic_routing(site, None, l_det, q, "second-order")
    exact = model.analytic_routing(site, None, l_det, q, "second-order", nodes=128)
    assert quadrature_nodes(scale) == min(64, 8 * max(1, int(torch.tensor(2 * sigma).ceil())))
    tv = (auto.probs - exact.probs).abs().sum(-1).max() / 2
    assert tv < 5e-3, float(tv)  # Monte Carlo at S = 35 errs by ~2e-2
    torch.testing.assert_close(auto.ilv, exact.ilv, rtol=1e-4, atol=0)  # a moment of 1/T


def test_a_very_wide_temperature_posterior_routes_finite_numbers():
    # a demo's amortised guide gave log T a σ of 6 on one validation token: its outer Gauss-Hermite
    # node reached log T = -92, where 1 / T overflows float32 and 0 · inf made the gate NaN
    import pyro.distributions as dist
    from vmoer_ppl.models.temperature_router import LOG_T_BOUND, log_space

    model, _ = toy_pair("temperature")
    site = model.sites[0]
    f32 = {"dtype": torch.float32}
    l_det = 4.0 * torch.randn(2, 5, site.num_experts, generator=torch.Generator().manual_seed(0))
    l_det = l_det.float()
    scale = torch.full((2, 5), 7.0, **f32)
    q = {"temperature": log_space(dist.Normal(torch.zeros(2, 5, **f32), scale))}
    out = model.analytic_routing(site, None, l_det, q, "second-order")
    for t in (out.gate_logits, out.probs, out.mutual_information, out.ilv):
        assert t.dtype == torch.float32 and torch.isfinite(t).all()
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(2, 5, **f32))
    tiny = torch.full((2, 5), math.exp(-LOG_T_BOUND - 80), **f32)  # a draw that underflows to 0
    assert (tiny == 0).all() and torch.isfinite(model._scores(l_det, tiny)).all()
