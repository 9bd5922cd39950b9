"""Capture each dense MLP's input and intermediate activations on real text."""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm


@torch.no_grad()
def collect_mlp_activations(
    model: nn.Module,
    tokenizer,
    texts,
    *,
    max_tokens: int,
    max_length: int = 128,
    batch_size: int = 16,
) -> list[dict[str, torch.Tensor]]:
    """Per layer, MLP inputs ``x`` `(N, D)` and SwiGLU activations ``h`` `(N, F)` at real tokens.

    Parameters
    ----------
    model : nn.Module
        A Llama-style dense causal LM.
    tokenizer : PreTrainedTokenizerBase
        Its tokenizer.
    texts : sequence of str
        Passages; read until ``max_tokens`` real tokens were seen.
    max_tokens : int
        N, tokens kept per layer.
    max_length : int
        Truncation length of a passage.
    batch_size : int
        Passages per forward.

    Returns
    -------
    list of dict
        One ``{"x": (N, D), "h": (N, F)}`` per layer.
    """
    layers = model.model.layers
    store = [{"x": [], "h": []} for _ in layers]
    current_mask: list[torch.Tensor] = []

    def hook(i):
        def fn(module, args, output):
            x = args[0][current_mask[0]]  # (n, D) real tokens only
            h = module.act_fn(module.gate_proj(x)) * module.up_proj(x)  # (n, F)
            store[i]["x"].append(x)
            store[i]["h"].append(h)

        return fn

    handles = [layer.mlp.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    seen = 0
    try:
        bar = tqdm(total=max_tokens, desc="activations", unit="tok")
        for s in range(0, len(texts), batch_size):
            enc = tokenizer(
                list(texts[s : s + batch_size]),
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_length,
            )
            current_mask[:] = [enc.attention_mask.bool()]
            model(**enc)
            n = int(enc.attention_mask.sum())
            seen += n
            bar.update(n)
            if seen >= max_tokens:
                break
        bar.close()
    finally:
        for h in handles:
            h.remove()
    return [{k: torch.cat(v)[:max_tokens] for k, v in s.items()} for s in store]
