"""The stability probe routes as prediction does, and separates input noise from MC variability."""

import pytest
import torch

from vmoer_ppl import bayesianize, predict
from vmoer_ppl.data import make_counting_task
from vmoer_ppl.evaluation import routing_stability
from vmoer_ppl.evaluation.stability import probe_experts
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig


def toy(family="logit-mf", seed=0):
    torch.manual_seed(seed)
    net = ToyMoEClassifier(ToyMoEConfig(hidden_size=16, num_local_experts=8))
    model, guide = bayesianize(net, family=family)
    return model, guide, make_counting_task(12, max_len=8, seed=0)


@pytest.mark.parametrize("mode", ["analytic", "mean", "mc"])
def test_probe_selects_the_experts_that_prediction_routes(mode):
    model, guide, data = toy()
    inputs = {k: v for k, v in data.items() if k != "labels"}
    real = data["attention_mask"].bool()
    probed = probe_experts(model, guide, inputs, num_samples=6, seed=3, mode=mode)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        out = predict(model, guide, mode=mode, num_samples=6, **inputs)
    for s in model.sites:
        k = s.top_k
        torch.testing.assert_close(probed[s.name], out.routing[s.name].experts[..., :k][real])


def test_fresh_draws_include_the_routers_own_mc_variability():
    model, guide, data = toy()
    with torch.no_grad():  # σ far above the logits' spread: draws decide the experts
        for p in guide.parameters():
            p.add_(torch.randn_like(p))
    res = routing_stability(model, guide, data, gammas=(0.0, 0.01), num_samples=4, mode="mc")
    assert res["draws"] is True
    assert res["overall"][0] == 1.0  # the same draws on both sides, no noise: identical
    agree = res["self_agreement"]["overall"]
    assert agree < 0.9  # two clean runs with different draws disagree
    # γ = 0: the fresh-draws run is a clean run with other draws, i.e. the self-agreement
    assert res["fresh"]["overall"][0] == pytest.approx(agree)
    assert set(res["self_agreement"]["per_layer"]) == {s.name for s in model.sites}


@pytest.mark.parametrize("guide_on", [False, True])
def test_routing_without_draws_has_perfect_self_agreement_and_no_extra_runs(guide_on):
    model, guide, data = toy()
    g = guide if guide_on else None
    res = routing_stability(model, g, data, gammas=(0.01, 0.1), mode="analytic")
    assert res["draws"] is False
    assert res["self_agreement"]["overall"] == 1.0
    assert res["fresh"]["overall"] == res["overall"]
