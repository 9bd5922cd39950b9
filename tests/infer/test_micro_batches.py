"""Length-grouped micro-batches: an optimal cut; the passes give the batch's loss and gradient."""

import itertools

import pyro
import pytest
import torch

from vmoer_ppl import bayesianize
from vmoer_ppl.infer import micro_batches
from vmoer_ppl.infer.micro_batches import (
    PASS_OVERHEAD_TOKENS,
    length_groups,
    mean_loss_backward,
    row_groups,
    use_length_groups,
)
from vmoer_ppl.infer.svi import SVI, SVIConfig
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig


def cost(groups, lengths, overhead):
    return sum(len(g) * int(lengths[g].max()) + overhead for g in groups)


def set_partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in set_partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first, *part[i]]] + part[i + 1 :]
        yield [[first], *part]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("overhead", [0, 3, 10, 40])
def test_the_cut_is_as_cheap_as_the_best_of_every_partition(seed, overhead):
    lengths = torch.randint(1, 30, (6,), generator=torch.Generator().manual_seed(seed))
    groups = length_groups(lengths, overhead)
    assert sorted(torch.cat(groups).tolist()) == list(range(6))  # every row once
    best = min(
        cost([torch.tensor(p) for p in part], lengths, overhead)
        for part in set_partitions(list(range(6)))
    )
    assert cost(groups, lengths, overhead) == best


def test_the_cut_ends_at_one_pass_or_one_pass_per_length():
    lengths = torch.tensor([5, 9, 5, 30, 9])
    assert len(length_groups(lengths, overhead=10_000)) == 1
    assert [sorted(lengths[g].tolist()) for g in length_groups(lengths, overhead=0)] == [
        [5, 5],
        [9, 9],
        [30],
    ]
    with pytest.raises(ValueError, match="non-empty 1-d"):
        length_groups(torch.tensor([]))


def test_a_random_batch_of_skewed_lengths_is_cut_into_a_few_passes():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.cat([torch.randint(40, 120, (14,), generator=gen), torch.tensor([256, 250])])
    groups = length_groups(lengths, PASS_OVERHEAD_TOKENS)
    assert 2 <= len(groups) <= 5
    padded = sum(len(g) * int(lengths[g].max()) for g in groups)
    assert padded < 0.7 * len(lengths) * int(lengths.max())  # far less than one padded pass


def test_auto_groups_on_the_cpu_only_and_unknown_settings_name_the_choices():
    assert use_length_groups("auto", "cpu") and use_length_groups("on", "meta")
    assert not use_length_groups("auto", "meta") and not use_length_groups("off", "cpu")
    with pytest.raises(ValueError, match="'auto', 'on', 'off'"):
        use_length_groups("yes", "cpu")


def test_row_groups_use_the_masks_and_keep_the_rows():
    mask = torch.zeros(6, 300, dtype=torch.long)
    for i, n in enumerate([300, 1, 300, 1, 1, 300]):
        mask[i, :n] = 1
    data = {"input_ids": torch.zeros(6, 300, dtype=torch.long), "attention_mask": mask}
    rows = torch.tensor([5, 0, 1, 3, 2, 4])
    parts = row_groups(data, rows, grouped=True)
    assert sorted(torch.cat(parts).tolist()) == list(range(6))
    assert {frozenset(p.tolist()) for p in parts} == {frozenset({1, 3, 4}), frozenset({0, 2, 5})}
    assert row_groups(data, rows, grouped=False)[0] is rows


def test_mean_loss_backward_gives_the_gradient_of_the_batch_mean():
    w = torch.randn(3, requires_grad=True)
    x = torch.randn(7, 5, 3)
    mask = torch.ones(7, 5, dtype=torch.long)
    mask[::2, 3:] = 0
    data = {"x": x, "attention_mask": mask}

    def loss_sum(batch):
        return ((batch["x"] @ w) * batch["attention_mask"]).sum()

    rows = torch.tensor([6, 1, 2, 4])
    value = mean_loss_backward(loss_sum, data, rows, grouped=True)
    grad, w.grad = w.grad.clone(), None
    expected = loss_sum({k: v[rows] for k, v in data.items()}) / 4
    expected.backward()
    assert abs(value - expected.item()) < 1e-5
    torch.testing.assert_close(grad, w.grad)


def test_svi_passes_sum_to_the_one_pass_loss_and_gradient(monkeypatch):
    # the weight family draws one global W per pass: reseeding before every pass gives every pass
    # the same W, so the normalisation of the passes (questions, tokens, the global KL) is exact
    monkeypatch.setattr(micro_batches, "PASS_OVERHEAD_TOKENS", 2)  # rows of 2..9 tokens
    torch.manual_seed(0)
    model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family="weight", num_data=12)
    ids = torch.randint(32, (12, 9))
    mask = torch.ones_like(ids)
    for i, n in enumerate([9, 2, 9, 3, 2, 9, 8, 2, 3, 9, 2, 2]):
        mask[i, n:] = 0
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(4, (12,))}
    rows = torch.arange(12)

    def gradient(grouping):
        svi = SVI(model, guide, data, SVIConfig(group_by_length=grouping, progress=False))
        calls = []
        loss = svi.loss

        def seeded(**batch):
            calls.append(len(batch["labels"]))
            pyro.set_rng_seed(3)
            return loss(**batch)

        svi.loss = seeded
        guide.zero_grad()
        value = svi.gradient(rows, None, svi.init())
        return value, [p.grad.clone() for p in guide.parameters()], calls

    one, g_one, calls_one = gradient("off")
    grouped, g_grouped, calls = gradient("on")
    assert calls_one == [12] and len(calls) > 1 and sum(calls) == 12
    assert abs(one - grouped) < 1e-6 * max(1.0, abs(one))
    for a, b in zip(g_one, g_grouped, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_every_partition_helper_enumerates_bell_numbers():
    assert [sum(1 for _ in set_partitions(list(range(n)))) for n in range(1, 6)] == [
        1,
        2,
        5,
        15,
        52,
    ]
    assert all(len(list(itertools.chain(*p))) == 4 for p in set_partitions(list(range(4))))
