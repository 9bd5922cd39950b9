"""tune_prior recovers the routing-noise scale the answers were simulated with."""

import pytest
import torch

from vmoer_ppl import SVIConfig, bayesianize, predict, tune_prior
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig

SCALES = [0.25, 0.5, 1.0, 2.0, 4.0]


def _toy(seed):
    torch.manual_seed(seed)
    net = ToyMoEClassifier(ToyMoEConfig())
    with torch.no_grad():  # answers that depend on the routing: sharper head, stronger experts
        net.head.weight.mul_(10)
        for layer in net.layers:
            layer.moe.experts.down.mul_(3)
    return net


def _simulate(net, s_true, n=1500):
    """Answers drawn with routing logits l ~ N(l_det, s_true² I), a fresh draw per question."""
    ids = torch.randint(32, (n, 6))
    mask = torch.ones_like(ids)
    model, guide = bayesianize(net, family="logit-mf", prior=s_true)  # q starts at the prior
    with torch.no_grad():
        logits = predict(model, guide, ids, mask, mode="sample").logits
    labels = torch.distributions.Categorical(logits=logits).sample()
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# one recovery in `make test`, the other in `make test-slow` (each ~40 s on 2 cores)
@pytest.mark.parametrize(
    ("seed", "s_true"), [(0, 0.5), pytest.param(1, 2.0, marks=pytest.mark.slow)]
)
def test_marginal_likelihood_picks_the_simulated_scale(seed, s_true):
    net = _toy(seed)
    val = _simulate(net, s_true)
    res = tune_prior(net, "logit-mf", val, SCALES, num_samples=32, batch_size=500)
    assert res.best == s_true
    assert set(res.curve) == set(SCALES)
    assert res.model.prior.scale == s_true  # the returned routers carry the choice


def test_candidates_can_be_fitted_first():
    net = _toy(0)
    train, val = _simulate(net, 1.0, n=64), _simulate(net, 1.0, n=64)
    svi = SVIConfig(num_steps=2, batch_size=16, progress=False)
    res = tune_prior(net, "logit-mf", val, [0.5, 1.0], train_data=train, svi=svi, num_samples=4)
    assert all(v == v and v > 0 for v in res.curve.values())
    with pytest.raises(ValueError, match="both train_data and svi"):
        tune_prior(net, "logit-mf", val, [1.0], svi=svi)
