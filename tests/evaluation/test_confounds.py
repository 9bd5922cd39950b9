"""OOD AUROC at equal prompt length: a score that only tracks length comes out at 0.5."""

import pytest
import torch

from vmoer_ppl.evaluation.confounds import adjusted_auroc, strata_edges
from vmoer_ppl.evaluation.detection import ood_scored
from vmoer_ppl.evaluation.metrics import auroc
from vmoer_ppl.pipeline.confound_report import length_seeds_table, length_table
from vmoer_ppl.pipeline.evaluate import evaluate_outputs, ood_metrics, prompt_tokens


def _sets(shift: float, seed: int = 0, n: int = 2000):
    """Lengths: ID 10..40, OOD 25..55 tokens; score = length / 10 + noise (+ shift on OOD)."""
    g = torch.Generator().manual_seed(seed)
    len_id = torch.randint(10, 41, (n,), generator=g)
    len_ood = torch.randint(25, 56, (n,), generator=g)
    s_id = len_id / 10 + 0.3 * torch.randn(n, generator=g)
    s_ood = len_ood / 10 + 0.3 * torch.randn(n, generator=g) + shift
    return s_id, s_ood, len_id, len_ood


def test_a_score_that_only_tracks_length_is_at_chance_once_adjusted():
    s_id, s_ood, len_id, len_ood = _sets(shift=0.0)
    raw = auroc(*ood_scored(s_id, s_ood))
    adj = adjusted_auroc(s_id, s_ood, len_id, len_ood, n_strata=20)
    assert raw > 0.85  # length separates the sets, and the score follows length
    # within-stratum length differences leave a small residual; the confound itself is gone
    assert abs(adj["auroc"] - 0.5) < 0.06
    assert 0.45 < adj["coverage"] < 0.55  # OOD lengths 25..40 of 25..55 lie in the ID range


def test_a_real_shift_survives_the_adjustment():
    s_id, s_ood, len_id, len_ood = _sets(shift=0.6)
    adj = adjusted_auroc(s_id, s_ood, len_id, len_ood, n_strata=20)
    assert adj["auroc"] > 0.85


def test_sets_that_do_not_overlap_in_length_have_no_adjusted_auroc():
    adj = adjusted_auroc(torch.zeros(5), torch.ones(4), torch.arange(5), torch.arange(10, 14))
    assert adj["coverage"] == 0.0 and adj["auroc"] != adj["auroc"]  # nan


def test_one_stratum_is_the_plain_auroc_and_equal_lengths_change_nothing():
    g = torch.Generator().manual_seed(3)
    s_id, s_ood = torch.randn(50, generator=g), torch.randn(40, generator=g) + 0.5
    s_ood[:5] = s_id[:5]  # ties count one half in both
    plain = auroc(*ood_scored(s_id, s_ood))
    len_id, len_ood = torch.randint(5, 30, (50,), generator=g), torch.randint(10, 20, (40,))
    len_id[:2] = torch.tensor([5, 29])  # every OOD length within the ID range
    assert adjusted_auroc(s_id, s_ood, len_id, len_ood, n_strata=1)["auroc"] == pytest.approx(
        plain, abs=1e-12
    )
    same = adjusted_auroc(s_id, s_ood, torch.full((50,), 7), torch.full((40,), 7))
    assert same["auroc"] == pytest.approx(plain, abs=1e-12)
    assert same["coverage"] == 1.0


def test_strata_hold_id_questions_even_with_heavy_ties():
    x = torch.tensor([3] * 30 + [5] * 30 + [9] * 40)
    edges = strata_edges(x, 5)
    assert edges.tolist() == [3.0, 5.0]  # 9, the maximum, is no inner edge
    k = torch.bucketize(x.double(), edges)
    assert set(k.tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match="n_strata"):
        strata_edges(x, 0)
    with pytest.raises(ValueError, match="one covariate value"):
        adjusted_auroc(torch.ones(3), torch.ones(2), torch.ones(2), torch.ones(2))


def test_ood_metrics_and_the_reports_carry_the_length_figures():
    s_id, s_ood, len_id, len_ood = _sets(shift=0.0, n=600)
    res = ood_metrics({"ilv": s_id}, {"ilv": s_ood}, len_id, len_ood)
    assert res["auroc_prompt_tokens"] == pytest.approx(
        auroc(*ood_scored(len_id.double(), len_ood.double()))
    )
    assert abs(res["adjusted_auroc_ilv"] - 0.5) < 0.1 < res["auroc_ilv"] - 0.5
    assert "adjusted_auroc_ilv" not in ood_metrics({"ilv": s_id}, {"ilv": s_ood})

    # prompt lengths come from the cloze prompt mask or the letter format's attention mask
    mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert prompt_tokens({"prompt_mask": mask}).tolist() == [2, 3]
    assert prompt_tokens({"attention_mask": mask}).tolist() == [2, 3]
    assert prompt_tokens({"input_ids": mask}) is None

    probs = torch.full((600, 4), 0.25)
    outs = {"id:a": {"probs": probs, "ilv": s_id}, "near:b": {"probs": probs, "ilv": s_ood}}
    masks = [torch.arange(60).unsqueeze(0) < n.unsqueeze(1) for n in (len_id, len_ood)]
    data = {
        "id:a": {"labels": torch.zeros(600, dtype=torch.long), "attention_mask": masks[0]},
        "near:b": {"labels": torch.zeros(600, dtype=torch.long), "attention_mask": masks[1]},
    }
    results = {"vmoer-x": evaluate_outputs(outs, data, "id:a")}
    assert results["vmoer-x"]["near:b"]["adjusted_auroc_ilv"] == res["adjusted_auroc_ilv"]
    table = length_table(results)
    assert f"mean AUROC {res['auroc_prompt_tokens']:.3f}" in table
    assert "| vmoer-x | – | – | " in table
    runs = [{"results": results}, {"results": results}]
    assert "± 0.000" in length_seeds_table(runs)
    assert length_table({"vmoer-x": {"id": {}, "near:b": {"auroc_ilv": 0.7}}}) == ""


def test_an_ood_set_outside_the_id_length_range_is_left_out_and_named():
    def ood(adj, cov):
        return {"auroc_ilv": 0.9, "adjusted_auroc_ilv": adj, "length_coverage": cov}

    base = {"id": {}, "near:b": ood(0.6, 0.8), "far:c": ood(float("nan"), 0.0)}
    base["near:b"]["auroc_prompt_tokens"] = 0.7
    table = length_table({"vmoer-x": base})
    assert "| vmoer-x | – | – | 0.900 / 0.600 |" in table  # far:c is not averaged in
    assert "Left out: far:c: every prompt of it lies outside the ID prompts' length" in table
    only = length_table({"vmoer-x": {"id": {}, "far:c": ood(float("nan"), 0.0)}})
    assert only.startswith("Left out: far:c")
