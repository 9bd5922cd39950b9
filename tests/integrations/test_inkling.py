"""Inkling's router: shared experts inside the normalisation, a 4-tuple output."""

import torch

from tests.integrations.routing_probe import upstream_and_routed
from vmoer_ppl import SVIConfig, bayesianize, fit_svi, predict
from vmoer_ppl.integrations.hf.tiny import tiny_model


def _site(family="logit-mf"):
    hf = tiny_model("inkling_text")
    model, guide = bayesianize(hf, family=family, layers="last:1")
    return hf, model, guide, model.sites[0]


def test_the_site_routes_over_routed_and_shared_experts():
    hf, _, _, site = _site()
    assert site.num_experts == hf.config.n_routed_experts + hf.config.n_shared_experts


def test_output_equals_upstream_with_the_bias_and_global_scale_it_has_at_call_time():
    _, _, _, site = _site()
    h = torch.randn(11, site.hidden_size, generator=torch.Generator().manual_seed(0))
    h = h.to(site.weight.dtype)
    for step in range(2):
        if step:  # a large bias on expert 5 puts it in every selection; the scale is re-read
            site.router.e_score_correction_bias.zero_()[5] = 10.0
            with torch.no_grad():
                site.router.global_scale.fill_(1.7)
        want, got, _ = upstream_and_routed(site, h)
        assert len(got) == 4
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        if step:
            assert (got[2] == 5).any(-1).all()


def test_the_temperature_family_never_selects_a_shared_expert():
    hf, model, guide, site = _site("temperature")
    routed = hf.config.n_routed_experts
    seen = []
    site.router.register_forward_hook(lambda m, a, out: seen.append(out[2]))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 128, (4, 9), generator=g)
    data = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids[:, 0]}
    res = fit_svi(model, guide, data, SVIConfig(num_steps=2, batch_size=4, progress=False))
    assert all(torch.isfinite(torch.tensor(res.losses)))
    predict(model, guide, ids, data["attention_mask"], mode="sample")
    assert seen and all(int(e.max()) < routed for e in seen)
