"""Frozen-prefix cache: hidden states entering the first Bayesian layer, computed once.

Only the last N MoE layers get Bayesian routers, so everything below the first Bayesian layer is
deterministic. For each question the cache stores the hidden states that enter that layer, for
the prompt tokens and for each option's tokens (the latter computed with the prompt's key/value
cache of the lower layers), in one safetensors file under the user's cache directory (read back
memory-mapped), keyed by model, layer and data. SVI epochs and every evaluation then run only
the Bayesian suffix: the layer list is narrowed to the suffix and the cached states are fed as
``inputs_embeds``; :class:`SuffixCache` answers the mask-size questions for the first suffix layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm
from transformers import DynamicCache

from vmoer_ppl.data.tensors import inputs_of, length_order, unsort
from vmoer_ppl.infer.sharding import barrier, everywhere, world
from vmoer_ppl.integrations.hf.wrappers import base_model

#: Decoder-only families whose model loop adds nothing to ``inputs_embeds`` (no multipliers).
SUFFIX_SAFE = {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "olmoe"}


class SuffixCache(DynamicCache):
    """A DynamicCache whose layers below ``first_layer`` stay empty; sizes read there."""

    def __init__(self, first_layer: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.first_layer = first_layer

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Cached length at the first suffix layer."""
        return super().get_seq_length(max(layer_idx, self.first_layer))

    def get_mask_sizes(self, query_length: int, layer_idx: int) -> tuple[int, int]:
        """Mask sizes at the first suffix layer."""
        return super().get_mask_sizes(query_length, max(layer_idx, self.first_layer))

    def get_query_offset(self, layer_idx: int = 0):
        """Query offset at the first suffix layer."""
        return super().get_query_offset(max(layer_idx, self.first_layer))


@contextlib.contextmanager
def suffix_layers(model: nn.Module, first_layer: int) -> Iterator[None]:
    """Run only decoder layers ``first_layer..`` of a transformers causal LM."""
    if model.config.model_type not in SUFFIX_SAFE:
        raise ValueError(
            f"the frozen-prefix cache supports {sorted(SUFFIX_SAFE)}, "
            f"not {model.config.model_type!r}"
        )
    inner = base_model(model).model  # through a peft wrapper too (stage-1 LoRA on the suffix)
    full = inner.layers
    inner.layers = nn.ModuleList(list(full)[first_layer:])
    try:
        yield
    finally:
        inner.layers = full


class _Stop(Exception):
    pass


@contextlib.contextmanager
def capture_input(model: nn.Module, layer: int, store: list) -> Iterator[None]:
    """Record the hidden states entering decoder layer ``layer`` and stop the forward there."""

    def hook(module, args, kwargs):
        store.append(args[0] if args else kwargs["hidden_states"])
        raise _Stop

    handle = base_model(model).model.layers[layer].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    except _Stop:
        pass
    finally:
        handle.remove()


def data_key(model_id: str, first_layer: int, batch_fingerprint: str) -> str:
    """Cache key of one (model, first Bayesian layer, data) triple."""
    # v2: option states from the packed option pass (zero past each option's last token)
    raw = json.dumps({"model": model_id, "layer": first_layer, "data": batch_fingerprint, "v": 2})
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the token tensors of a data set."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def compute_prefix_states(
    head,
    data: dict[str, torch.Tensor],
    first_layer: int,
    *,
    batch_size: int = 16,
    part: tuple[int, int] = (0, 1),
) -> dict[str, torch.Tensor]:
    """States entering ``first_layer`` for the rows of one part of the length-ordered batches.

    Parameters
    ----------
    head : ClozeHead
        The scorer over the (frozen) model.
    data : dict of str to torch.Tensor
        The whole set (global padding), N rows.
    first_layer : int
        Index of the first Bayesian decoder layer.
    batch_size : int
        Rows per forward; batches are runs of :func:`length_order`.
    part : tuple of int
        ``(k, parts)``: compute batches ``k, k + parts, ...`` only (one process's share; each
        batch is the same as in one process, so the states are too).

    Returns
    -------
    dict
        ``rows`` `(n,)` (data order), ``prompt_states`` `(n, Tp, D)`, ``option_states``
        `(n, C, Tc, D)` for this part's ``n`` rows.
    """
    k, parts = part
    order = length_order(data)
    runs = list(order.split(batch_size))[k::parts]
    prompts, options = [], []
    desc = f"frozen prefix (layers < {first_layer})"
    desc += f" part {k + 1}/{parts}" if parts > 1 else ""
    for rows in tqdm(runs, desc=desc):
        p, o = head.states_entering(first_layer, **{n: v[rows] for n, v in data.items()})
        prompts.append(p)
        options.append(o)
    rows = torch.cat(runs) if runs else order[:0]
    empty = (len(rows),)
    return {
        "rows": rows,
        "prompt_states": torch.cat(prompts) if prompts else torch.empty(empty),
        "option_states": torch.cat(options) if options else torch.empty(empty),
    }


def cached_prefix_states(
    head, data: dict[str, torch.Tensor], first_layer: int, model_id: str, cache_dir: Path
) -> dict[str, torch.Tensor]:
    """The prefix states of ``data``, from the cache or computed and stored there.

    Parameters
    ----------
    head : ClozeHead
        The scorer over the (frozen) model.
    data : dict of str to torch.Tensor
        Output of :func:`vmoer_ppl.scoring.encode_cloze` for the whole set (global padding).
    first_layer : int
        Index of the first Bayesian decoder layer.
    model_id : str
        Identifies the model weights (e.g. the embedded build's cache key).
    cache_dir : Path
        Where cache files live.

    Returns
    -------
    dict
        ``data`` plus ``prompt_states`` and ``option_states``.
    """
    tokens = inputs_of(data)
    path = (
        Path(cache_dir)
        / f"prefix-{data_key(model_id, first_layer, fingerprint(tokens))}.safetensors"
    )
    if not everywhere(path.exists()):
        rank, size = world()
        states = compute_prefix_states(head, data, first_layer, part=(rank, size))
        if size == 1:
            atomic_save(join_parts([states]), path)
        else:  # each process its share, then rank 0 joins them (every batch as in one process)
            atomic_save(states, path.with_suffix(f".part{rank}"))
            barrier()
            if rank == 0:
                parts = [path.with_suffix(f".part{r}") for r in range(size)]
                atomic_save(join_parts([load_file(p) for p in parts]), path)
                for p in parts:
                    p.unlink()
            barrier()
    return {**data, **load_file(path)}


def join_parts(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The whole set's ``prompt_states`` and ``option_states`` (data order) from the parts."""
    rows = torch.cat([p["rows"] for p in parts])
    full = {}
    for name in ("prompt_states", "option_states"):
        done = torch.cat([p[name] for p in parts if len(p["rows"])])
        full[name] = unsort(done, rows)
    return full


def atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Write a safetensors file under a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")  # one per process
    os.close(fd)
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
    os.replace(tmp, path)
