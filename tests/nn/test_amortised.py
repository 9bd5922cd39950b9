import pytest
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


@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_fill_tril_matches_a_dense_reference_with_its_gradient(n):
    raw = torch.randn(3, 2, n * (n + 1) // 2, requires_grad=True)
    rows, cols = torch.tril_indices(n, n)
    dense = torch.zeros(3, 2, n, n)
    dense[..., rows, cols] = raw  # scatter the packed rows below and on the diagonal
    want = dense.tril(-1) + torch.diag_embed(dense.diagonal(dim1=-2, dim2=-1).exp())
    got = fill_tril(raw, n)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    weights = torch.randn(n, n)
    (g_got,) = torch.autograd.grad((got * weights).sum(), raw)
    (g_want,) = torch.autograd.grad((want * weights).sum(), raw)
    torch.testing.assert_close(g_got, g_want)


def test_fill_tril_refuses_a_wrong_packed_length():
    with pytest.raises(ValueError, match=r"need n\(n\+1\)/2"):
        fill_tril(torch.zeros(5), 3)
