"""Each dense MLP's input and intermediate activations on real text, one layer at a time.

The passages run once through the layers below the first layer asked for; from there decoder
layer i runs over every batch, its MLP's activations are yielded, its outputs replace the
residual stream, and layer i + 1 follows. Only the residual stream `(B, T, D)` per batch and one
layer's activations are alive at a time, so the build's memory does not grow with the number of
layers. Each layer runs through the model's
own forward (its masks and rotary embeddings, narrowed to that layer), so the values equal those
of one full forward over all layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from vmoer_ppl.embedded.prefix_cache import _Stop, capture_input, suffix_layers


def encode_passages(tokenizer, texts, *, max_tokens: int, max_length: int, batch_size: int):
    """Tokenised batches of passages, read until ``max_tokens`` real tokens were seen.

    Returns
    -------
    list of BatchEncoding
        Each with ``input_ids`` and ``attention_mask`` `(B, T)`.
    """
    out, seen = [], 0
    for s in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[s : s + batch_size]),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_length,
        )
        out.append(enc)
        seen += int(enc.attention_mask.sum())
        if seen >= max_tokens:
            break
    return out


@contextlib.contextmanager
def _record_layer(layer: nn.Module, mask: torch.Tensor, store: dict, out: list) -> Iterator[None]:
    """Record the MLP's ``x`` and ``h`` at real tokens and the layer's output, then stop."""

    def on_mlp(module, args, output):
        x = args[0][mask]  # (n, D) real tokens only
        store["x"].append(x)
        store["h"].append(module.act_fn(module.gate_proj(x)) * module.up_proj(x))  # (n, F)

    def on_layer(module, args, output):
        out.append(output[0] if isinstance(output, tuple) else output)  # (B, T, D)
        raise _Stop

    handles = [layer.mlp.register_forward_hook(on_mlp), layer.register_forward_hook(on_layer)]
    try:
        yield
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def _entering(model: nn.Module, layer: int, enc) -> torch.Tensor:
    """States `(B, T, D)` entering decoder ``layer``: one forward through the layers below."""
    if layer == 0:
        return model.model.embed_tokens(enc.input_ids)
    got: list = []
    with capture_input(model, layer, got):
        model.model(**enc, use_cache=False)
    return got[0]


@torch.no_grad()
def _run_layer(model: nn.Module, i: int, states: list, batches: list, capture: bool) -> dict:
    """Advance every batch's residual stream through layer ``i``; its activations if asked."""
    layer = model.model.layers[i]
    store: dict = {"x": [], "h": []}
    with suffix_layers(model, i):
        for b, enc in enumerate(batches):
            out: list = []
            mask = enc.attention_mask.bool() & capture  # (B, T); all False: nothing recorded
            with _record_layer(layer, mask, store, out):
                model.model(
                    inputs_embeds=states[b], attention_mask=enc.attention_mask, use_cache=False
                )
            states[b] = out[0]
    return store


def mlp_activations(
    model: nn.Module,
    tokenizer,
    texts,
    *,
    max_tokens: int,
    max_length: int = 128,
    batch_size: int = 16,
    layers=None,
) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """Yield, layer by layer, MLP inputs ``x`` `(N, D)` and SwiGLU activations ``h`` `(N, F)`.

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
    layers : iterable of int, optional
        The layers whose activations are yielded (default all); the stream runs through every
        layer up to the last of them.

    Yields
    ------
    tuple
        ``(i, {"x": (N, D), "h": (N, F)})`` for each layer ``i`` asked for, in order.
    """
    n_layers = len(model.model.layers)
    wanted = set(range(n_layers) if layers is None else layers)
    batches = encode_passages(
        tokenizer, texts, max_tokens=max_tokens, max_length=max_length, batch_size=batch_size
    )
    first = min(wanted)
    states = [_entering(model, first, enc) for enc in batches]  # (B, T, D) each
    for i in tqdm(range(first, max(wanted) + 1), desc="activations (layer by layer)"):
        store = _run_layer(model, i, states, batches, capture=i in wanted)
        if i in wanted:
            yield i, {k: torch.cat(v)[:max_tokens] for k, v in store.items()}
        del store
