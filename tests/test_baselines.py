"""Every baseline router runs end to end through predict on the toy model and a tiny HF model,
with the properties that define it."""

import pytest
import torch

from tests.integrations.tiny_hf import tiny_model
from vmoer_ppl import predict
from vmoer_ppl.baselines import BASELINES, finetune_routers, make_baseline
from vmoer_ppl.data import make_counting_task
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig


def toy():
    torch.manual_seed(0)
    return ToyMoEClassifier(ToyMoEConfig(hidden_size=16, num_local_experts=8))


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_predicts_on_the_toy_model(name):
    data = make_counting_task(24, max_len=8, seed=0)
    model, guide = make_baseline(toy(), name, layers="all", data=data, steps=4, members=2)
    inputs = {k: v for k, v in data.items() if k != "labels"}
    out = predict(model, guide, num_samples=6, **inputs)
    assert out.probs.shape == (24, 4)
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(24, dtype=out.probs.dtype))
    assert (out.mutual_information >= -1e-9).all() and (out.ilv >= 0).all()


@pytest.mark.parametrize("name", ["mc-dropout", "swag"])
def test_baseline_predicts_on_a_tiny_hf_model(name):
    net = tiny_model("mixtral")
    ids = torch.randint(3, 64, (4, 7))
    data = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.randint(64, (4,)),
    }
    model, guide = make_baseline(net, name, layers="last:1", data=data, steps=4)
    out = predict(model, guide, num_samples=4, input_ids=ids, attention_mask=data["attention_mask"])
    assert out.probs.shape == (4, 64)


def test_mc_dropout_variance_is_the_closed_form():
    model, guide = make_baseline(toy(), "mc-dropout", layers="all")
    site = model.sites[0]
    u = torch.randn(3, 5, site.hidden_size)
    q = guide.logits_dist(site, u, u @ site.weight.T)
    torch.testing.assert_close(q.sampler(40000).var(0), q.variance, rtol=0.05, atol=1e-3)
    torch.testing.assert_close(q.sampler(40000).mean(0), q.mean, rtol=0.05, atol=2e-2)


def test_temperature_sampling_draws_follow_softmax_over_t():
    model, guide = make_baseline(toy(), "temperature-sampling", layers="all")
    site = model.sites[0]
    logits = torch.tensor([[[1.0, 0.5, 0.0, -0.5, -1.0, 0.2, 0.1, 0.3]]], dtype=torch.float64)
    q = guide.logits_dist(site, torch.zeros(1, 1, site.hidden_size), logits)
    top1 = q.sampler(40000).argmax(-1).flatten()
    freq = torch.bincount(top1, minlength=8).double() / 40000
    torch.testing.assert_close(freq, torch.softmax(logits[0, 0] / 0.3, -1), atol=0.01, rtol=0)


def test_ensemble_members_differ_by_seed_and_draws_cycle_them():
    data = make_counting_task(32, max_len=8, seed=0)
    net = toy()
    model, guide = make_baseline(
        net, "ensemble", layers="all", data=data, steps=6, members=3, lr=1e-2
    )
    d0, d1 = (m.deltas[model.sites[0].name] for m in guide.members[:2])
    assert not torch.equal(d0, d1) and d0.abs().sum() > 0
    site = model.sites[0]
    u = torch.randn(2, 3, site.hidden_size)
    q = guide.logits_dist(site, u, u @ site.weight.T)
    draws = q.rsample((6,))
    torch.testing.assert_close(draws[0], draws[3])
    torch.testing.assert_close(draws.mean(0), q.mean)


def test_finetuning_lowers_the_loss_and_swag_collects_moments():
    data = make_counting_task(64, max_len=8, seed=0)
    model, _ = make_baseline(toy(), "mc-dropout", layers="all")
    res = finetune_routers(model, data, steps=40, lr=5e-2, batch_size=64, swag=True, rank=5)
    assert sum(res.losses[-5:]) < sum(res.losses[:5])
    name = model.sites[0].name
    assert res.deviations[name].shape[0] == 5
    assert (res.sq_mean[name] - res.swa_mean[name] ** 2 >= -1e-9).all()


def test_map_baseline_is_one_tuned_router_without_uncertainty():
    data = make_counting_task(24, max_len=8, seed=0)
    inputs = {k: v for k, v in data.items() if k != "labels"}
    model, guide = make_baseline(toy(), "map", layers="all", data=data, steps=4, seed=3)
    tuned = finetune_routers(model, data, steps=4, seed=3)
    assert all(d.abs().sum() > 0 for d in tuned.deltas.values())  # the routers moved
    a = predict(model, guide, num_samples=5, **inputs)
    for name, d in guide.members[0].deltas.items():
        torch.testing.assert_close(d, tuned.deltas[name])  # the same fine-tuning, seeded
    torch.testing.assert_close(a.mutual_information, torch.zeros_like(a.mutual_information))
    torch.testing.assert_close(predict(model, guide, num_samples=2, **inputs).probs, a.probs)
