"""The relative prior scale: s_ℓ = c × median logit spread, and guides in prior units."""

import json

import pytest
import torch

from tests.common import assert_close, toy_batch, toy_net
from vmoer_ppl import bayesianize
from vmoer_ppl.adapter_io import CONFIG_NAME
from vmoer_ppl.pretrained import from_pretrained
from vmoer_ppl.priors import GaussianPrior, PerSitePrior
from vmoer_ppl.priors.relative import logit_spread, parse_prior_scale, relative_prior


def _data(n=5, T=6):
    ids, mask, labels = toy_batch(B=n, T=T, seed=3)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_spread_is_the_median_over_real_tokens_of_the_std_across_experts():
    net = toy_net()
    model, _ = bayesianize(net, family="logit-mf")
    data = _data()
    got = logit_spread(model, data, batch_size=2)  # batches must not change the median
    seen = {}

    def keep(name):
        def hook(module, args, out):
            seen[name] = out.logits.detach()  # returns None: the output is untouched

        return hook

    hooks = [s.router.register_forward_hook(keep(s.name)) for s in model.sites]
    with torch.no_grad():
        net(data["input_ids"], attention_mask=data["attention_mask"])
    for h in hooks:
        h.remove()
    real = data["attention_mask"].bool()
    for site in model.sites:
        want = seen[site.name].std(-1)[real].median().item()
        assert_close(got[site.name], want, rtol=1e-6)


def test_relative_prior_puts_each_router_in_its_own_units_and_q_starts_there():
    net = toy_net()
    model, _ = bayesianize(net, family="logit-mf")
    spreads = logit_spread(model, _data())
    prior = relative_prior(spreads, 0.5)
    model, guide = bayesianize(net, family="logit-mf", prior=prior)
    for site in model.sites:
        assert guide.scale_at(site) == pytest.approx(0.5 * spreads[site.name])
        u = torch.randn(2, 3, site.hidden_size)
        l_det = u @ site.weight.T
        q = guide.logits_dist(site, u, l_det)
        assert_close(q.base_dist.loc, l_det)  # Δμ = 0 at initialisation
        assert_close(q.base_dist.scale.mean(), guide.scale_at(site), rtol=1e-2)


def test_the_mean_head_moves_the_mean_in_prior_units():
    net = toy_net()
    model, guide = bayesianize(net, family="logit-fc", prior=0.25)
    site, head = model.sites[0], guide.nets[0]
    with torch.no_grad():
        head.mean.bias.fill_(1.0)
    u = torch.randn(1, 2, site.hidden_size)
    l_det = u @ site.weight.T
    assert_close(guide.logits_dist(site, u, l_det).loc - l_det, torch.full_like(l_det, 0.25))


def test_per_site_prior_round_trips_through_the_adapter(tmp_path):
    net = toy_net()
    model, _ = bayesianize(net, family="logit-mf")
    prior = relative_prior({s.name: 0.1 * (i + 1) for i, s in enumerate(model.sites)}, 2.0)
    model, guide = bayesianize(net, family="logit-mf", prior=prior)
    with torch.no_grad():
        for p in guide.parameters():
            p.add_(0.05)
    guide.save_pretrained(tmp_path)
    spec = json.loads((tmp_path / CONFIG_NAME).read_text())["prior"]
    assert spec["type"] == "per-site"
    m2, g2 = from_pretrained(net, tmp_path)
    assert isinstance(m2.prior, PerSitePrior)
    for site in model.sites:
        assert g2.scale_at(site) == pytest.approx(guide.scale_at(site))


def test_a_format_1_adapter_loads_to_the_same_posterior(tmp_path):
    net = toy_net()
    model, guide = bayesianize(net, family="logit-mf", prior=0.3)
    with torch.no_grad():
        for p in guide.parameters():
            p.add_(0.05)
    guide.save_pretrained(tmp_path)
    # rewrite as format 1: Δμ in absolute units (the mean head's output times s)
    from safetensors.torch import load_file, save_file

    cfg = json.loads((tmp_path / CONFIG_NAME).read_text())
    cfg["format_version"] = 1
    cfg.pop("weights_sha256")  # format 1 recorded no hash
    (tmp_path / CONFIG_NAME).write_text(json.dumps(cfg))
    state = load_file(tmp_path / "router_adapter.safetensors")
    state = {k: v * 0.3 if ".mean." in k else v for k, v in state.items()}
    save_file(state, tmp_path / "router_adapter.safetensors")
    _, g2 = from_pretrained(net, tmp_path)
    site = model.sites[0]
    u = torch.randn(2, 3, site.hidden_size)
    l_det = u @ site.weight.T
    a, b = guide.logits_dist(site, u, l_det), g2.logits_dist(site, u, l_det)
    assert_close(a.base_dist.loc, b.base_dist.loc, rtol=1e-5, atol=1e-6)
    assert_close(a.base_dist.scale, b.base_dist.scale)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("relative:0.5", ("relative", 0.5)),
        ("absolute:2", ("absolute", 2.0)),
        ("1", ("absolute", 1.0)),
        (0.3, ("absolute", 0.3)),
        (None, None),
    ],
)
def test_parse_prior_scale(text, want):
    assert parse_prior_scale(text) == want


@pytest.mark.parametrize("text", ["relative:0", "relative:x", "fancy:1", "-1"])
def test_bad_prior_scales_name_the_fix(text):
    with pytest.raises(ValueError, match="relative:C"):
        parse_prior_scale(text)


def test_relative_prior_refuses_a_router_with_constant_logits():
    with pytest.raises(ValueError, match="constant logits"):
        relative_prior({"r": 0.0}, 1.0)
    assert isinstance(relative_prior({"r": 1.0}, 1.0).default, GaussianPrior)
