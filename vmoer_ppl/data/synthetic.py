"""A synthetic multiple-choice task for the toy MoE: which option's tokens occur most often.

Tokens ``0..V-1`` belong to option ``token % C``; the answer is the option with the most tokens
in the (right-padded, variable-length) sequence, with a fraction of labels flipped at random so
that a calibrated model cannot be certain. The OOD variant draws tokens from a narrow, shifted
slice of the vocabulary and longer sequences.
"""

from __future__ import annotations

import torch


def make_counting_task(
    n: int,
    *,
    vocab_size: int = 32,
    num_labels: int = 4,
    min_len: int = 4,
    max_len: int = 10,
    label_noise: float = 0.1,
    ood: bool = False,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Generate ``n`` questions.

    Parameters
    ----------
    n : int
        Number of questions N.
    vocab_size, num_labels : int
        V and C of the toy network.
    min_len, max_len : int
        Sequence length range; T = ``max_len`` (``2 * max_len`` when ``ood``).
    label_noise : float
        Fraction of answers replaced by a uniformly random option.
    ood : bool
        Draw from the shifted distribution.
    seed : int
        Generator seed.

    Returns
    -------
    dict
        ``input_ids`` `(N, T)`, ``attention_mask`` `(N, T)`, ``labels`` `(N,)`.
    """
    g = torch.Generator().manual_seed(seed)
    T = 2 * max_len if ood else max_len
    lo = vocab_size // 2 if ood else 0
    ids = torch.randint(lo, vocab_size, (n, T), generator=g)
    lengths = torch.randint(min_len, T + 1, (n,), generator=g)
    mask = (torch.arange(T) < lengths.unsqueeze(1)).long()  # (N, T)
    ids = ids * mask
    groups = torch.nn.functional.one_hot(ids % num_labels, num_labels) * mask.unsqueeze(-1)
    labels = groups.sum(1).argmax(-1)  # (N,)
    flip = torch.rand(n, generator=g) < label_noise
    labels[flip] = torch.randint(num_labels, (int(flip.sum()),), generator=g)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
