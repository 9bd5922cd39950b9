"""Answer-level OOD scores compare shift, not option count."""

import logging
import math

import pytest
import torch

from tests.common import assert_close
from vmoer_ppl.evaluation.metrics import auroc
from vmoer_ppl.pipeline.evaluate import check_option_counts, option_counts, with_answer_scores


def _probs(n, c, conc, seed):
    """`(n, 4)` answer probabilities over c real options (the rest padded with exactly 0)."""
    g = torch.Generator().manual_seed(seed)
    logits = conc * torch.randn(n, c, generator=g)
    p = torch.softmax(logits, -1)
    return torch.nn.functional.pad(p, (0, 4 - c))


def test_uniform_answers_score_one_whatever_the_option_count():
    for c in (2, 3, 4):
        p = _probs(1, c, 0.0, 0)
        out = with_answer_scores({"probs": p})
        assert_close(out["answer_entropy"], torch.ones(1), rtol=1e-6)
        assert_close(out["max_prob"], torch.ones(1), rtol=1e-6)
        assert out["answer_entropy_nats"].item() == pytest.approx(math.log(c), rel=1e-6)


def test_an_unshifted_set_with_fewer_options_is_not_in_distribution_by_construction():
    # ID: 4 options; "OOD": the same answer sharpness with 2 options, i.e. no shift at all
    id_out = with_answer_scores({"probs": _probs(400, 4, 1.0, 1)})
    ood_out = with_answer_scores({"probs": _probs(400, 2, 1.0, 2)})
    y = torch.cat([torch.zeros(400), torch.ones(400)]).bool()
    raw = auroc(torch.cat([id_out["answer_entropy_nats"], ood_out["answer_entropy_nats"]]), y)
    norm = auroc(torch.cat([id_out["answer_entropy"], ood_out["answer_entropy"]]), y)
    assert raw < 0.1  # raw entropy: fewer options look far more in-distribution
    assert abs(norm - 0.5) < abs(raw - 0.5)
    assert 0.2 < norm < 0.8


def test_counts_come_from_the_data_and_differing_counts_warn(caplog):
    mask = torch.zeros(3, 4, 2)
    mask[0, :2] = 1
    mask[1, :3] = 1
    mask[2, :4] = 1
    assert option_counts({"option_mask": mask}, torch.ones(3, 4)).tolist() == [2, 3, 4]
    assert option_counts({"num_options": torch.tensor([5, 5])}, torch.ones(2, 5)).tolist() == [5, 5]
    data = {
        "id:x": {"labels": torch.zeros(2), "option_mask": torch.ones(2, 4, 1)},
        "near:y": {"labels": torch.zeros(3), "option_mask": mask},
    }
    with caplog.at_level(logging.WARNING, logger="vmoer_ppl.pipeline.evaluate"):
        hist = check_option_counts(data, "id:x")
    assert hist == {"id:x": {4: 2}, "near:y": {2: 1, 3: 1, 4: 1}}
    assert "near:y" in caplog.text and "option count" in caplog.text
