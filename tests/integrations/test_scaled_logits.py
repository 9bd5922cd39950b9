"""A router whose logits are ``c · h Wᵀ`` (MUSE Spark's output multiplier): found generically."""

import torch
from torch import nn

from tests.integrations.routing_probe import upstream_and_routed
from vmoer_ppl import bayesianize
from vmoer_ppl.integrations.hf.generic import logit_scale
from vmoer_ppl.integrations.hf.tiny import tiny_model


def test_muse_spark_router_input_is_scaled_by_its_own_multiplier_and_matches_upstream():
    hf = tiny_model("muse_spark")
    model, _ = bayesianize(hf, family="logit-mf", layers="last:1")
    site = model.sites[0]
    r = site.router
    g = torch.Generator().manual_seed(0)
    h = torch.randn(9, site.hidden_size, generator=g, dtype=torch.float32)
    want, got, seen = upstream_and_routed(site, h)
    assert r.output_multiplier != 1.0
    torch.testing.assert_close(seen["u"], h * r.output_multiplier, rtol=0, atol=0)
    torch.testing.assert_close(seen["l"], want[0])  # the router's own (scaled) logits
    assert torch.equal(got[2].sort(-1).values, want[2].sort(-1).values)  # the same experts
    torch.testing.assert_close(got[1], want[1])


def test_logit_scale_is_none_for_plain_or_biased_logits_and_exact_when_named():
    router = nn.Linear(8, 4, bias=False, dtype=torch.float32)
    h = torch.randn(32, 8, dtype=torch.float32)
    logits = router(h).detach()
    assert logit_scale(router, logits, logits) is None  # c = 1
    assert logit_scale(router, logits, logits.softmax(-1)) is None  # not a multiple
    router.multiplier = 0.3
    assert logit_scale(router, logits, 0.3 * logits) == 0.3  # the router's own number
    biased = nn.Linear(8, 4, dtype=torch.float32)
    assert logit_scale(biased, logits, 0.3 * logits) is None  # c · (h Wᵀ + b) is not u Wᵀ + b
