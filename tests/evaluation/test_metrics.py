import math

import pytest
import torch

from vmoer_ppl.evaluation import accuracy, auroc, calibration_errors, nll


def test_hand_computed_case():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
    labels = torch.tensor([0, 1, 1, 0])
    assert accuracy(probs, labels) == 0.75
    assert math.isclose(
        nll(probs, labels), -(math.log(0.9) + math.log(0.4) + math.log(0.7) + math.log(0.55)) / 4
    )
    ece, mce = calibration_errors(probs, labels)
    # bins: (0.8,0.9]: conf .9 acc 1; (0.6,0.7]: conf .7 acc 1; (0.5,0.6]: conf .6,.55 acc .5
    want = 0.25 * 0.1 + 0.25 * 0.3 + 0.5 * abs(0.5 - 0.575)
    assert math.isclose(ece, want) and math.isclose(mce, 0.3)


def test_auroc_hand_cases():
    assert auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0, 0, 1, 1])) == 1.0
    assert auroc(torch.tensor([0.5, 0.5]), torch.tensor([0, 1])) == 0.5
    # one inversion among 2x2 pairs
    assert auroc(torch.tensor([0.1, 0.7, 0.6, 0.9]), torch.tensor([0, 0, 1, 1])) == 0.75
    with pytest.raises(ValueError, match="both positive and negative"):
        auroc(torch.tensor([1.0]), torch.tensor([1]))


def test_auroc_with_ties_equals_the_pairwise_definition():
    from vmoer_ppl.evaluation.metrics import auroc

    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 7, (300,), generator=g).float()  # many ties
    labels = torch.rand(300, generator=g) < 0.4
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    want = ((diff > 0).double() + 0.5 * (diff == 0).double()).mean().item()
    assert abs(auroc(scores, labels) - want) < 1e-12


def test_ood_scored_puts_id_first_and_labels_ood_positive():
    from vmoer_ppl.evaluation import auroc, ood_scored

    s, y = ood_scored(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.9, 0.8]))
    assert s.tolist() == pytest.approx([0.1, 0.2, 0.3, 0.9, 0.8])
    assert y.dtype == torch.bool and y.tolist() == [False, False, False, True, True]
    assert auroc(s, y) == 1.0  # every OOD score above every ID score
