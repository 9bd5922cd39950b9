"""An early memory estimate for a cloze batch, checked before the batch is allocated.

A batch of B questions with C options of Tc tokens after a Tp-token prompt runs B·C
continuations. Its peak is dominated by (per the transformers forward, one layer at a time):
the key/value cache of every layer over ``B·C·(Tp + Tc)`` positions (the prompt's cache is
repeated C times), one layer's attention scores ``B·C × heads × Tc × (Tp + Tc)``, one layer's
hidden and MLP activations over ``B·C·Tc`` positions (all layers' when gradients are kept), and
the float32 log-probabilities of the ``n`` predicting positions over the vocabulary. The
estimate is an upper-bound style sum of these; a batch whose estimate exceeds the free memory
is refused with the estimate and the setting to change, instead of an out-of-memory kill.
"""

from __future__ import annotations

import psutil
import torch

#: Fraction of the free memory a batch may use.
HEADROOM = 0.9


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA's ``mem_get_info``, else the host's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


def cloze_batch_bytes(
    config,
    B: int,
    C: int,
    Tp: int,
    Tc: int,
    n_predict: int,
    *,
    layers: int,
    grad: bool,
    nbytes: int = 4,
) -> int:
    """Estimated peak bytes of one cloze forward.

    Parameters
    ----------
    config : transformers.PretrainedConfig
        The causal LM's (text) config.
    B, C, Tp, Tc : int
        Questions, options per question, prompt and option lengths (after trimming).
    n_predict : int
        Positions whose next-token distribution is computed.
    layers : int
        Decoder layers that run (the suffix only, with a frozen-prefix cache).
    grad : bool
        Whether activations of every layer are kept for a backward pass.
    nbytes : int
        Bytes per element of the model's activations (4 for float32, 2 for bf16).

    Returns
    -------
    int
    """
    cfg = config.get_text_config()
    D, V = cfg.hidden_size, cfg.vocab_size
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or D // heads
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    inter = (
        max(getattr(cfg, k, 0) or 0 for k in ("intermediate_size", "moe_intermediate_size"))
        or 4 * D
    )
    rows, seq = B * C, Tp + Tc
    cache = 2 * layers * rows * seq * kv * head_dim * nbytes
    scores = rows * heads * Tc * seq * 4
    activations = rows * Tc * (4 * D + 3 * inter) * nbytes * (layers if grad else 1)
    logprobs = 3 * (n_predict + B) * V * 4
    return cache + scores + activations + logprobs


def check_batch_memory(estimate: int, device: torch.device, what: str) -> None:
    """Refuse a batch whose estimated peak exceeds the free memory, before allocating it.

    Parameters
    ----------
    estimate : int
        Bytes, e.g. from :func:`cloze_batch_bytes`.
    device : torch.device
        Where the batch would run.
    what : str
        The batch's shape in words, for the message.

    Raises
    ------
    MemoryError
        Naming the estimate, the free memory and the settings to lower.
    """
    free = available_bytes(device)
    if estimate > HEADROOM * free:
        raise MemoryError(
            f"{what} needs about {estimate / 2**30:.2f} GiB (estimate) and {free / 2**30:.2f} "
            f"GiB are free on {device}: lower --batch-size, or cap answer options shorter "
            "(encode_cloze(max_option=...))"
        )
