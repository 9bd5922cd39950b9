"""Calibration, detection, selective prediction, bootstrap and stability against hand-computed
cases and scikit-learn."""

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_curve

from vmoer_ppl import bayesianize
from vmoer_ppl.data import make_counting_task
from vmoer_ppl.evaluation import (
    adaptive_ece,
    auprc,
    aurc,
    bootstrap_ci,
    brier,
    fpr_at_tpr,
    jaccard,
    paired_bootstrap,
    reliability_data,
    risk_coverage,
    routing_stability,
)
from vmoer_ppl.evaluation.metrics import accuracy
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig

P = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
Y = torch.tensor([0, 1, 1, 0])


def test_brier_by_hand():
    # (0.1^2*2) + (0.6^2*2) + (0.3^2*2) + (0.45^2*2) over 4
    assert brier(P, Y) == pytest.approx((0.02 + 0.72 + 0.18 + 0.405) / 4)


def test_adaptive_ece_by_hand():
    # confidences sorted: .55 (right), .6 (wrong), .7 (right), .9 (right); 2 bins of 2
    bin1 = abs(0.5 - (0.55 + 0.6) / 2)
    bin2 = abs(1.0 - (0.7 + 0.9) / 2)
    assert adaptive_ece(P, Y, n_bins=2) == pytest.approx((bin1 + bin2) / 2)


def test_reliability_bins_are_lo_hi_closed():
    d = reliability_data(torch.tensor([[0.6, 0.4], [0.5, 0.5]]), torch.tensor([0, 0]), n_bins=2)
    assert d["count"] == [1, 1]  # 0.5 falls in (0, 0.5], 0.6 in (0.5, 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detection_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    s = np.round(rng.normal(size=200), 1)  # ties on purpose
    y = rng.random(200) < 0.4
    st, yt = torch.tensor(s), torch.tensor(y)
    assert auprc(st, yt) == pytest.approx(average_precision_score(y, s))
    fpr, tpr, _ = roc_curve(y, s)
    assert fpr_at_tpr(st, yt) == pytest.approx(fpr[np.argmax(tpr >= 0.95)])


def test_risk_coverage_and_aurc_by_hand():
    cov, risk = risk_coverage(P, Y)
    # by confidence: .9 right, .7 right, .6 wrong, .55 right
    assert cov.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert risk.tolist() == pytest.approx([0, 0, 1 / 3, 1 / 4])
    assert aurc(P, Y) == pytest.approx((1 / 3 + 1 / 4) / 4)


def test_bootstrap_ci_contains_the_value_and_paired_diff_is_signed():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(300, 4, generator=g), -1)
    labels = torch.randint(4, (300,), generator=g)
    ci = bootstrap_ci(accuracy, probs, labels, n_boot=200)
    assert ci["lo"] <= ci["value"] <= ci["hi"] and ci["hi"] - ci["lo"] < 0.15
    better = torch.nn.functional.one_hot(labels, 4).double() * 0.9 + 0.025
    d = paired_bootstrap(accuracy, (better, labels), (probs, labels), n_boot=200)
    assert d["diff"] > 0.5 and d["lo"] > 0 and d["p_le_0"] == 0


def test_jaccard_by_hand():
    a = torch.tensor([[0, 1], [2, 3]])
    b = torch.tensor([[1, 0], [3, 0]])
    assert jaccard(a, b, 4).tolist() == [1.0, pytest.approx(1 / 3)]


@pytest.mark.parametrize("variant", ["embedding", "router"])
def test_stability_falls_with_noise_and_is_one_without(variant):
    net = ToyMoEClassifier(ToyMoEConfig(hidden_size=16, num_local_experts=8))
    model, guide = bayesianize(net, family="logit-fc")
    data = make_counting_task(16, max_len=8, seed=0)
    res = routing_stability(model, None, data, gammas=(0.0, 0.01, 1.0), variant=variant)
    assert res["overall"][0] == 1.0
    assert res["overall"][2] < res["overall"][1] <= 1.0
    bayes = routing_stability(model, guide, data, gammas=(0.0,), num_samples=4, variant=variant)
    assert bayes["overall"] == [1.0]  # the same draws on both sides: only the noise differs
    assert set(res["per_layer"]) == {s.name for s in model.sites}


def test_stability_compares_real_tokens_only():
    # padding positions are routed too, but their experts are not part of the comparison
    from vmoer_ppl.evaluation.stability import probe_experts

    net = ToyMoEClassifier(ToyMoEConfig(hidden_size=16, num_local_experts=8))
    model, guide = bayesianize(net, family="logit-fc")
    data = make_counting_task(6, max_len=8, seed=0)
    data["attention_mask"][::2, :5] = 0  # heavy left padding in half the rows
    inputs = {k: v for k, v in data.items() if k != "labels"}
    for g in (None, guide):
        experts = probe_experts(model, g, inputs, num_samples=3, seed=0)
        real = int(data["attention_mask"].sum())
        assert {tuple(e.shape) for e in experts.values()} == {(real, model.sites[0].top_k)}


def test_temperature_scaling_recovers_a_known_temperature():
    from vmoer_ppl.evaluation.temperature_scaling import apply_temperature, fit_temperature

    g = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 4, generator=g, dtype=torch.float64) * 2
    labels = torch.distributions.Categorical(logits=true_logits).sample()
    overconfident = torch.softmax(true_logits * 3, -1)  # T = 3 undoes it
    t = fit_temperature(overconfident, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    torch.testing.assert_close(
        apply_temperature(overconfident, 3.0), torch.softmax(true_logits, -1)
    )


@pytest.mark.parametrize("right", [False, True])
def test_temperature_scaling_keeps_the_answers_when_its_optimum_is_out_of_range(right, caplog):
    """Wrong on every question, the NLL optimum is T -> inf: uniform float32 answers would tie,
    and the argmax (here: option 0, the label) would change the accuracy from 0 to 1."""
    from vmoer_ppl.evaluation.metrics import accuracy
    from vmoer_ppl.evaluation.temperature_scaling import T_RANGE, apply_temperature, fit_temperature

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 4, generator=g)
    labels = torch.zeros(64, dtype=torch.long)
    logits[:, 0] += 10.0 if right else -10.0  # the label is always (never) the top answer
    probs = torch.softmax(logits, -1)
    with caplog.at_level("WARNING"):
        t = fit_temperature(probs, labels)
    assert T_RANGE[0] <= t <= T_RANGE[1]
    if not right:  # the optimum is beyond the upper bound (right everywhere, L-BFGS stops
        assert t == T_RANGE[1]  # at a tiny NLL gradient inside the range)
        assert "keeps every answer's ranking" in caplog.text
    scaled = apply_temperature(probs, t)
    assert torch.equal(scaled.argmax(-1), probs.argmax(-1))
    assert accuracy(scaled, labels) == accuracy(probs, labels) == (1.0 if right else 0.0)
