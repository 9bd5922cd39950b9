import torch

from vmoer_ppl.nn.amortised import AmortisedHeads, fill_tril


def test_fill_tril_is_row_major_with_exp_diagonal():
    raw = torch.tensor([0.0, 2.0, 1.0, 3.0, 4.0, -1.0])  # rows: [a], [b c], [d e f]
    L = fill_tril(raw, 3)
    want = torch.tensor(
        [[1.0, 0.0, 0.0], [2.0, torch.e, 0.0], [3.0, 4.0, torch.exp(torch.tensor(-1.0))]]
    )
    torch.testing.assert_close(L, want)


def test_heads_start_at_zero_offset_and_unit_scale():
    heads = AmortisedHeads(16, 4, 10)
    mean, raw = heads(torch.randn(2, 3, 16))
    assert mean.abs().max() == 0
    assert raw.abs().max() < 0.05  # N(0, 1e-3) head: exp(raw) ~ 1
    assert heads.trunk[0].out_features == 4  # D / 4
