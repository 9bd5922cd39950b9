"""The deterministic router's confidence regime: measured, and said in the report."""

import pytest
import torch

from vmoer_ppl.pipeline.regime import regime_of, regime_text


def answers(confidence: float, correct: float, n: int = 400, C: int = 4):
    """`(n, C)` answers with ``confidence`` on option 0, right for a ``correct`` share."""
    rest = (1 - confidence) / (C - 1)
    probs = torch.full((n, C), rest)
    probs[:, 0] = confidence
    labels = torch.zeros(n, dtype=torch.long)
    labels[int(n * correct) :] = 1
    return probs, labels


def test_over_and_under_confidence_are_told_apart_by_the_post_hoc_temperature():
    over = regime_of(*answers(confidence=0.9, correct=0.5))
    under = regime_of(*answers(confidence=0.4, correct=0.9))
    assert over["temperature"] > 1 and over["overconfident"]
    assert under["temperature"] < 1 and not under["overconfident"]
    assert over["acc"] == pytest.approx(0.5) and over["mean_confidence"] == pytest.approx(0.9)
    assert over["ece"] == pytest.approx(0.4, abs=1e-6)  # one bin: |0.9 − 0.5|
    given = regime_of(*answers(confidence=0.9, correct=0.5), temperature=2.5)
    assert given["temperature"] == 2.5 and given["acc"] == over["acc"]  # T not refitted


@pytest.mark.parametrize(
    ("temperature", "words"),
    [
        (2.0, "> 1: over-confident"),
        (0.6, "< 1: under-confident"),
        (1.02, "≈ 1: one temperature"),
        (100.0, "its upper bound: near-uniform answers score best"),  # a model at chance
    ],
)
def test_the_report_names_the_regime(temperature, words):
    regime = {"acc": 0.7, "mean_confidence": 0.6, "ece": 0.1, "temperature": temperature}
    text = regime_text({**regime, "questions": 200})
    assert words in text and "200 validation questions" in text and "accuracy 0.700" in text
    assert "0.600 (below accuracy)" in text
    assert "not recorded" in regime_text(None)  # a run evaluated before the regime was kept


def test_compare_lists_the_regime_of_each_seed():
    from vmoer_ppl.pipeline.regime import regime_seeds_text

    r = {"acc": 0.7, "mean_confidence": 0.8, "ece": 0.1}
    metas = [{"regime": {**r, "temperature": 1.3}}, {}, {"regime": {**r, "temperature": 0.9}}]
    text = regime_seeds_text(metas)
    assert "T = 1.30, –, 0.90" in text and "-0.100, –, -0.100" in text
    assert regime_seeds_text([{}, {}]) == ""  # runs evaluated before the regime was kept


@pytest.mark.parametrize(("temperature", "warned"), [(0.6, True), (1.3, False), (0.98, False)])
def test_the_fit_reads_stage_1s_regime_and_warns_when_under_confident(
    tmp_path, caplog, temperature, warned
):
    import json

    from vmoer_ppl.pipeline.regime import fit_regime

    after = {"acc": 0.7, "mean_confidence": 0.5, "nll": 0.8, "ece": 0.2}
    after.update(temperature=temperature, overconfident=temperature > 1)
    (tmp_path / "stage1").mkdir()
    (tmp_path / "stage1" / "regime.json").write_text(json.dumps({"val_after": after}))
    val = {"labels": torch.zeros(5, dtype=torch.long)}
    regime = fit_regime(tmp_path, None, val)  # no forward: stage 1 measured it
    assert regime == {**after, "source": "stage 1", "questions": 5}
    assert ("under-confident on validation" in caplog.text) is warned
