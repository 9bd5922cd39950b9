"""LongCat-Flash's router: zero-computation experts as choices, the biased softmax selection."""

import torch

from tests.integrations.routing_probe import upstream_and_routed
from vmoer_ppl import bayesianize
from vmoer_ppl.integrations.hf.tiny import tiny_model


def _site():
    hf = tiny_model("longcat_flash")
    model, _ = bayesianize(hf, family="logit-mf", layers="last:1")
    return hf, model.sites[0]


def test_the_site_routes_over_routed_and_zero_experts():
    hf, site = _site()
    assert site.num_experts == hf.config.n_routed_experts + hf.config.zero_expert_num
    assert site.weight is site.router.classifier.weight


def test_output_equals_upstream_and_follows_the_correction_bias():
    _, site = _site()
    h = torch.randn(11, site.hidden_size, generator=torch.Generator().manual_seed(0))
    h = h.to(site.weight.dtype)
    for shift in (None, 5):  # a large bias on expert 5 puts it in every token's selection
        if shift is not None:
            site.router.e_score_correction_bias.zero_()[shift] = 10.0
        want, got, _ = upstream_and_routed(site, h)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        if shift is not None:
            assert (got[2] == shift).any(-1).all()
