"""DeepSeek-V4: learned routers on sqrt-softplus scores Bayesian; hash routers left alone."""

import logging

import torch

from tests.integrations.routing_probe import upstream_and_routed
from vmoer_ppl import bayesianize, predict
from vmoer_ppl.integrations.hf.tiny import tiny_model
from vmoer_ppl.nn.rules import GroupLimitedSqrtSoftplusRule


def test_hash_routers_stay_deterministic_with_a_warning_and_learned_ones_match_upstream(caplog):
    hf = tiny_model("deepseek_v4")
    kinds = [hf.config.mlp_layer_types[i] for i in range(hf.config.num_hidden_layers)]
    assert "hash_moe" in kinds and "moe" in kinds  # the tiny model has both kinds
    with caplog.at_level(logging.WARNING):
        model, guide = bayesianize(hf, family="logit-fc", layers="all")
    assert "stay deterministic" in caplog.text and "input_ids" in caplog.text
    assert len(model.sites) == kinds.count("moe")
    site = model.sites[-1]
    assert type(site.router).__name__ == "DeepseekV4TopKRouter"
    assert isinstance(site.gate_rule, GroupLimitedSqrtSoftplusRule)
    h = torch.randn(13, site.hidden_size, generator=torch.Generator().manual_seed(0))
    want, got, _ = upstream_and_routed(site, h.to(site.weight.dtype))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    ids = torch.randint(3, 128, (2, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mean = predict(model, guide, ids, mask, mode="mean").logits
    with torch.no_grad():
        torch.testing.assert_close(mean, hf(input_ids=ids, attention_mask=mask).logits[:, -1])
    for mode in ("analytic", "mc"):
        assert torch.isfinite(predict(model, guide, ids, mask, mode=mode).logits).all()
