"""Per-step SVI diagnostics: closed-form values at known guides, the init-overlap warning."""

import logging

import pytest
import torch

from tests.common import toy_batch, toy_net
from vmoer_ppl import bayesianize
from vmoer_ppl.infer.diagnostics import SITE_KEYS, Recorder
from vmoer_ppl.infer.fused import fused_loss
from vmoer_ppl.infer.svi import SVIConfig, fit_svi, make_optimizer, steps_for_epochs


def _data(n=6):
    ids, mask, labels = toy_batch(B=n, T=5, seed=2)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_recorded_statistics_match_closed_form_at_a_known_guide():
    s = 0.3
    model, guide = bayesianize(toy_net(), family="logit-mf", prior=s)
    with torch.no_grad():
        for net in guide.nets:
            net.scale.weight.zero_()  # σ = s exactly
            net.mean.weight.zero_()
            net.mean.bias.fill_(1.0)  # Δμ = s in every expert: one prior std
    rec = Recorder()
    fused_loss(model, guide, recorder=rec, **_data())
    out = rec.summary()
    assert set(out) == {site.name for site in model.sites}
    for site in model.sites:
        r = out[site.name]
        assert set(r) == set(SITE_KEYS)
        # KL(N(m + s, s²) ‖ N(m, s²)) = 1/2 per expert
        assert r["kl"] == pytest.approx(0.5 * site.num_experts, rel=1e-5)
        assert r["dmu_over_s"] == pytest.approx(1.0, rel=1e-5)
        assert r["mu_over_s"] == pytest.approx(1.0, rel=1e-5)
        assert r["log_sigma_mean"] == pytest.approx(0.0, abs=1e-6)
        assert r["log_sigma_std"] == pytest.approx(0.0, abs=1e-6)
        assert 0.0 <= r["overlap"] <= 1.0
    assert rec.nll > 0


def test_overlap_is_one_for_a_narrow_prior_and_the_wide_one_warns(caplog):
    data = _data()
    narrow = fit_svi(
        *bayesianize(toy_net(), family="logit-fc", prior=1e-6),
        data,
        SVIConfig(num_steps=1, progress=False),
    )
    for r in narrow.diagnostics[0]["routers"].values():
        assert r["overlap"] == 1.0
        assert r["kl"] == pytest.approx(0.0, abs=1e-3)  # q starts at the prior
    with caplog.at_level(logging.WARNING, logger="vmoer_ppl.infer.svi"):
        wide = fit_svi(
            *bayesianize(toy_net(), family="logit-fc", prior=100.0),
            data,
            SVIConfig(num_steps=1, progress=False),
        )
    assert min(r["overlap"] for r in wide.diagnostics[0]["routers"].values()) < 0.9
    assert "--prior-scale relative:C" in caplog.text and "a smaller prior scale" in caplog.text


def test_the_overlap_message_fits_the_family_and_names_the_prior(caplog):
    from vmoer_ppl.infer.svi_checks import check_init_overlap

    low = {"routers": {"model.layers.3.mlp.gate": {"overlap": 0.48}}}
    logit, _ = bayesianize(toy_net(), family="logit-mf", prior=1.0)
    logit.spec["prior_scale"] = {"rule": "relative", "c": 0.5}  # as `vmoer fit` records it
    with caplog.at_level(logging.INFO, logger="vmoer_ppl.infer.svi"):
        check_init_overlap(low, 0.9, logit)
    (rec,) = caplog.records
    assert rec.levelno == logging.WARNING and "prior (relative:0.5)" in rec.getMessage()
    assert "smaller than now" in rec.getMessage()
    caplog.clear()
    temperature, _ = bayesianize(toy_net(), family="temperature")
    with caplog.at_level(logging.INFO, logger="vmoer_ppl.infer.svi"):
        check_init_overlap(low, 0.9, temperature)
    (rec,) = caplog.records  # its experts are sampled: not a prior-width problem
    assert rec.levelno == logging.INFO and "samples its experts" in rec.getMessage()
    assert "--prior-scale" not in rec.getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vmoer_ppl.infer.svi"):
        check_init_overlap({"routers": {"a": {"overlap": 0.95}}}, 0.9, logit)
    assert not caplog.records
    for odd in ({"rule": "relative"}, {"rule": "default"}, None):  # no scale to name: no crash
        logit.spec["prior_scale"] = odd
        check_init_overlap(low, 0.9, logit)
    assert "the prior is wide" in caplog.text and "smaller than now" not in caplog.text


def test_posterior_summary_reads_a_temperature_shift_in_prior_units():
    from vmoer_ppl.infer.diagnostics import posterior_summary

    model, guide = bayesianize(toy_net(), family="temperature", prior=0.5)
    with torch.no_grad():
        for net in guide.nets:
            net.scale.weight.zero_()
            net.mean.weight.zero_()
            net.mean.bias.fill_(-2.0)  # log T = 0.5 × -2 = -1: T ≈ 0.37, sharper routing
    post = posterior_summary(model, guide, _data(), batch_size=4)
    for site in model.sites:
        r = post[site.name]
        assert r["mu_over_s"] == pytest.approx(-2.0, rel=1e-6)
        assert r["prior_scale"] == 0.5
        assert r["kl"] == pytest.approx(2.0, rel=1e-5)  # KL = (Δμ/s)² / 2 for equal scales


def test_each_step_records_loss_grad_norm_and_the_scheduled_lr():
    model, guide = bayesianize(toy_net(), family="temperature")
    cfg = SVIConfig(num_steps=4, lr=1e-2, warmup_ratio=0.5, progress=False)
    res = fit_svi(model, guide, _data(), cfg)
    d = res.diagnostics
    assert [r["step"] for r in d] == [1, 2, 3, 4]
    assert [r["loss"] for r in d] == res.losses
    assert d[0]["lr"] == pytest.approx(0.5e-2)  # warm-up over 2 steps
    assert d[1]["lr"] == pytest.approx(1e-2)
    assert all(r["grad_norm"] > 0 for r in d)
    # the temperature family is Gaussian in log T: its statistics are recorded too
    assert all(0 <= r["overlap"] <= 1 for r in d[0]["routers"].values())


def test_epochs_set_the_step_count_and_adamw_is_the_default():
    assert steps_for_epochs(2, 10, 4) == 6
    assert steps_for_epochs(0.5, 10, 4) == 2
    with pytest.raises(ValueError, match="epochs"):
        steps_for_epochs(0, 10, 4)
    model, guide = bayesianize(toy_net(), family="logit-mf")
    res = fit_svi(model, guide, _data(), SVIConfig(epochs=2, batch_size=4, progress=False))
    assert len(res.losses) == 4
    params = list(guide.parameters())
    assert isinstance(make_optimizer(SVIConfig(), params), torch.optim.AdamW)
    assert type(make_optimizer(SVIConfig(optimizer="adam"), params)) is torch.optim.Adam
    with pytest.raises(ValueError, match="adamw"):
        make_optimizer(SVIConfig(optimizer="sgd"), params)


@pytest.mark.parametrize(
    ("k", "rule", "blind"),
    [
        (1, "softmax-topk-norm", True),  # Mixtral with one expert: its weight is always 1
        (1, "sigmoid-topk-norm", True),
        (1, "softmax-topk", False),  # Qwen2-MoE unnormalised: the weight is p_i
        (2, "softmax-topk-norm", False),
    ],
)
def test_routers_whose_weights_ignore_the_logits_are_found_and_named(caplog, k, rule, blind):
    from vmoer_ppl.infer.svi_checks import logit_blind_routers

    model, guide = bayesianize(
        toy_net(num_experts_per_tok=k, gate_rule=rule), family="logit-mf", prior=0.5
    )
    names = [s.name for s in model.sites]
    assert logit_blind_routers(model.sites) == (names if blind else [])
    # what the check predicts: the likelihood's pathwise gradient is zero exactly then
    nll_only = bayesianize(
        toy_net(num_experts_per_tok=k, gate_rule=rule), family="logit-mf", prior=0.5, beta=1e-12
    )
    torch.manual_seed(0)
    fused_loss(*nll_only, **_data()).backward()
    grad = sum(p.grad.abs().sum() for p in nll_only[1].parameters() if p.grad is not None)
    assert (float(grad) < 1e-6) == blind
    with caplog.at_level(logging.WARNING, logger="vmoer_ppl.infer.svi"):
        fit_svi(model, guide, _data(), SVIConfig(num_steps=1, progress=False))
    assert ("--estimator score-function" in caplog.text) == blind
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vmoer_ppl.infer.svi"):
        fit_svi(
            *bayesianize(toy_net(num_experts_per_tok=k, gate_rule=rule), family="logit-mf"),
            _data(),
            SVIConfig(num_steps=1, progress=False, estimator="score-function"),
        )
    assert "do not depend on the routing logits" not in caplog.text
