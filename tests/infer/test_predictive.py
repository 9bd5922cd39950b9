import pytest
import torch

from tests.common import FAMILIES, toy_batch, toy_net, toy_pair
from vmoer_ppl import bayesianize, predict


@pytest.mark.parametrize("mode", ["mean", "mc", "sample"])
@pytest.mark.parametrize("family", FAMILIES)
def test_predictive_shapes_and_signals(family, mode):
    model, guide = toy_pair(family)
    ids, mask, _ = toy_batch()
    out = predict(model, guide, ids, mask, mode=mode, num_samples=35)
    assert out.logits.shape == out.probs.shape == (3, 4)
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(3))
    assert set(out.routing) == {"layers.0.moe.router", "layers.1.moe.router"}
    r = out.routing["layers.1.moe.router"]
    assert r.probs.shape == (3, 6, 4) and r.experts.shape == (3, 6, 2)
    assert r.entropy.shape == r.mutual_information.shape == r.ilv.shape == (3, 6)
    assert (r.mutual_information > -1e-9).all() and (r.ilv >= 0).all()
    assert out.routing_entropy.shape == out.ilv.shape == (3,)


@pytest.mark.parametrize("family", ["logit-mf", "logit-fc", "temperature", "weight"])
def test_mean_mode_at_initialisation_reproduces_the_deterministic_network(family):
    net = toy_net()
    ids, mask, _ = toy_batch()
    want = net(ids, mask)
    model, guide = bayesianize(net, family=family)
    torch.testing.assert_close(predict(model, guide, ids, mask, mode="mean").logits, want)


def test_closed_form_ilv_matches_the_sample_variance():
    model, guide = toy_pair("logit-fc", perturb=0.1)
    ids, mask, _ = toy_batch()
    exact = predict(model, guide, ids, mask, num_samples=2).routing["layers.0.moe.router"].ilv
    site = model.sites[0]
    draws = []

    def grab(u, l_det):
        q = guide.q_dists(site, u, l_det)["logits"]
        draws.append(q.rsample((20_000,)).var(0).sum(-1))
        return model.route_latents(site, u, l_det, {"logits": q.mean})

    site.router.routing_fn = grab
    try:
        model.net(ids, mask)
    finally:
        site.router.routing_fn = None
    torch.testing.assert_close(draws[0], exact, rtol=0.05, atol=0)


def test_unknown_mode_is_refused():
    model, guide = toy_pair("logit-mf")
    with pytest.raises(ValueError, match="unknown mode 'ensemble'"):
        predict(model, guide, *toy_batch()[:2], mode="ensemble")


@pytest.mark.parametrize(
    "mode, keep, drawn",
    [
        ("mc", False, {"temperature"}),
        ("mean", False, {"temperature"}),
        ("sample", False, {"temperature", "gumbel"}),
        ("mc", True, {"temperature", "gumbel"}),
    ],
)
def test_selection_noise_is_drawn_only_where_a_forward_uses_it(monkeypatch, mode, keep, drawn):
    import vmoer_ppl.infer.predictive as predictive

    model, guide = toy_pair("temperature")
    assert model.selection_latents == {"gumbel"}
    seen = []
    real = predictive.draw

    def spy(d, num_samples):
        seen.append(d)
        return real(d, num_samples)

    monkeypatch.setattr(predictive, "draw", spy)
    ids, mask, _ = toy_batch()
    out = predict(model, guide, ids, mask, mode=mode, num_samples=5, keep_draws=keep)
    gumbel = [isinstance(getattr(d, "base_dist", None), torch.distributions.Gumbel) for d in seen]
    names = {"gumbel" if g else "temperature" for g in gumbel}
    assert names == drawn and len(seen) == len(drawn) * len(model.sites)
    if keep:
        assert set(out.routing["layers.0.moe.router"].draws) == drawn


def test_routing_signals_leave_out_routers_that_did_not_run_and_say_when_none_did():
    from types import SimpleNamespace

    import pytest

    from vmoer_ppl.infer.predictive import last_token_signal

    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    grid = SimpleNamespace(shape=mask.shape, mask=mask, name="")
    text, vision = SimpleNamespace(name="text_gate"), SimpleNamespace(name="vision_gate")
    ent = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    store = {"text_gate": SimpleNamespace(entropy=ent)}  # the vision router never ran
    got = last_token_signal(store, [text, vision], grid, "entropy")
    assert torch.equal(got, torch.tensor([1.0, 5.0]))  # each row's last real token, text only
    with pytest.raises(ValueError, match=r"none of the Bayesian routers \(vision_gate\) ran"):
        last_token_signal(store, [vision], grid, "entropy")


@pytest.mark.parametrize("mode", ["analytic", "mc"])
def test_prediction_skips_argument_checks_but_nan_answers_still_raise(mode):
    from torch.distributions import Distribution

    model, guide = toy_pair("logit-fc")
    ids, mask, _ = toy_batch()
    before = Distribution._validate_args
    good = predict(model, guide, ids, mask, mode=mode, num_samples=4, validate_args=True)
    fast = predict(model, guide, ids, mask, mode=mode, num_samples=4)
    if mode == "analytic":  # nothing drawn: the checks change nothing but the time
        torch.testing.assert_close(fast.logits, good.logits, rtol=0, atol=0)
    assert Distribution._validate_args is before  # restored after the unchecked forward
    last = guide.nets[guide.index[model.sites[-1].name]]  # earlier routers' NaN: next one's check
    with torch.no_grad():
        for p in last.parameters():
            p.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"validate_args=True"):
        predict(model, guide, ids, mask, mode=mode, num_samples=4)
    with pytest.raises(ValueError, match="Expected parameter"):  # the check names the site
        predict(model, guide, ids, mask, mode=mode, num_samples=4, validate_args=True)
