"""Stage 1: deterministic adaptation of the backbone with LoRA through ``peft`` (PAPER.md §4).

LoRA adapters on the attention Q/K/V projections and on the experts (VMoER App. D.2), trained on
the answer NLL of the deterministic model, then merged into the weights so that stage 2 sees a
plain transformers model. Routers are never adapted (stage 2 needs the pretrained ``W_r``).
Fused expert tensors (transformers v5 ``experts.gate_up_proj`` / ``down_proj``) are adapted through
peft's ``target_parameters``; per-expert ``nn.Linear`` layouts through ``target_modules``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from vmoer_ppl.data.tensors import batch_at
from vmoer_ppl.infer.micro_batches import mean_loss_backward, use_length_groups
from vmoer_ppl.infer.sharding import all_reduce_grads, all_reduce_sum, shard_rows, world
from vmoer_ppl.settings import opt

log = logging.getLogger(__name__)

ATTENTION = ("q_proj", "k_proj", "v_proj")


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """Silence the one deprecation warning peft 0.21 triggers in transformers v5 (not ours)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        yield


@dataclass
class LoRASettings:
    """Stage-1 settings (a run's ``stage1`` section; thesis: r = 64, alpha = 16, lr 5e-5).

    ``scope`` and ``split`` are the run's: which layers and which train rows stage 1 gets
    (:mod:`vmoer_ppl.pipeline.backbone`); :func:`adapt_backbone` reads the rest.
    """

    steps: int = opt(
        100, "stage 1: LoRA steps on the backbone before SVI (0: skip)", flag="lora_steps"
    )
    rank: int = opt(16, "stage 1: LoRA rank", flag="lora_rank")
    alpha: int = opt(16, "stage 1: LoRA alpha (scale alpha / rank)", flag="lora_alpha")
    dropout: float = opt(0.0, "stage 1: LoRA dropout", flag="lora_dropout")
    lr: float = opt(1e-4, "stage 1: learning rate", flag="lora_lr")
    batch_size: int = opt(8, "stage 1: questions per step", flag="lora_batch_size")
    seed: int = opt(0, "minibatch order", runtime=True)
    progress: bool = opt(True, "progress bar", runtime=True)
    group_by_length: str = opt("auto", "each step in passes of similar length", runtime=True)
    scope: str = opt(
        "all",
        'stage 1: "all" layers (paper) or the Bayesian "suffix" (prefix cache)',
        flag="lora_scope",
    )
    split: str = opt(
        "shared",
        'train split: "shared" by both stages (paper) or "disjoint" halves',
        flag="stage_split",
    )


def lora_targets(model: nn.Module, first_layer: int = 0) -> tuple[list[str], list[str]]:
    """Module names (attention, per-expert Linear) and fused expert parameter names to adapt.

    With ``first_layer`` = 0 every decoder layer is adapted and the names are suffixes
    (``q_proj``, ``experts.gate_up_proj``); otherwise only decoder layers ``first_layer..`` are,
    under their full names, so the layers below stay exactly as they were (the frozen-prefix
    cache stays valid).
    """
    from vmoer_ppl.bayesianize import decoder_layer_index

    def keep(name: str, short: str) -> str | None:
        if not first_layer:
            return short
        try:
            return name if decoder_layer_index(name) >= first_layer else None
        except ValueError:  # outside the decoder layers
            return None

    modules, params = set(), set()
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(module, nn.Linear) and (
            leaf in ATTENTION or (".experts." in name and "gate" != leaf)
        ):
            modules.add(keep(name, leaf))
    for name, p in model.named_parameters():
        if ".experts." in name and p.ndim == 3:
            params.add(keep(name, ".".join(name.split(".")[-2:])))  # e.g. experts.gate_up_proj
    modules.discard(None)
    params.discard(None)
    if not any(m.rsplit(".", 1)[-1] in ATTENTION for m in modules):
        raise ValueError(
            f"{type(model).__name__}: found none of the attention projections {ATTENTION} for LoRA"
            f" in decoder layers {first_layer}.."
        )
    return sorted(modules), sorted(params)


def adapt_backbone(
    model: nn.Module,
    make_head,
    data: dict[str, torch.Tensor],
    settings: LoRASettings,
    out=None,
    first_layer: int = 0,
) -> tuple[nn.Module, list[float]]:
    """Train LoRA adapters on the answer NLL and merge them into ``model``.

    Parameters
    ----------
    model : nn.Module
        A transformers MoE causal LM.
    make_head : callable
        ``nn.Module -> nn.Module`` building the answer scorer over a model (returns `(B, C)`
        option logits from the encoded batch, without labels).
    data : dict of str to torch.Tensor
        Encoded training questions with ``labels`` `(N,)`.
    settings : LoRASettings
        Steps, rank, learning rate.
    out : str or Path, optional
        Where to save the LoRA adapter (``peft`` format) before merging.
    first_layer : int
        Adapt decoder layers ``first_layer..`` only (0: all); ``data`` may then carry the
        frozen-prefix states entering that layer, so each step runs only the suffix.

    Returns
    -------
    tuple
        The merged model (plain transformers, frozen) and the loss per step.
    """
    peft_model = lora_model(model, settings, first_layer)
    losses = train_lora(peft_model, make_head(peft_model), data, settings)
    if out is not None and world()[0] == 0:  # every process holds the same adapter
        peft_model.save_pretrained(str(out))
    return frozen_merge(peft_model), losses


def lora_model(model: nn.Module, settings: LoRASettings, first_layer: int = 0) -> nn.Module:
    """``model`` wrapped by peft with LoRA on decoder layers ``first_layer..`` (seeded init)."""
    from peft import LoraConfig, get_peft_model

    modules, params = lora_targets(model, first_layer)
    cfg = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=modules,
        target_parameters=params or None,
    )
    torch.manual_seed(settings.seed)  # LoRA's initialisation, whatever ran before in this process
    with quiet_peft():
        return get_peft_model(model, cfg)


def train_lora(
    peft_model: nn.Module,
    head: nn.Module,
    data: dict[str, torch.Tensor],
    settings: LoRASettings,
    on_step: Callable[[int], None] | None = None,
) -> list[float]:
    """AdamW on the answer NLL over ``peft_model``'s trainable parameters, data parallel.

    Parameters
    ----------
    peft_model : nn.Module
        From :func:`lora_model`.
    head : nn.Module
        The answer scorer over ``peft_model``: `(B, C)` option logits.
    data : dict of str to torch.Tensor
        Encoded training questions with ``labels`` `(N,)`.
    settings : LoRASettings
        Steps, batch size, learning rate, seed.
    on_step : callable, optional
        Called with the number of steps done after each optimiser step (e.g. to measure the
        validation regime along training, ``benchmarks/stage1_regime.py``). It may put the
        model in eval mode; training resumes in train mode.

    Returns
    -------
    list of float
        The loss per step (mean over the step's whole batch, all processes).
    """
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=0.01)
    n = len(data["labels"])
    losses: list[float] = []
    peft_model.train()
    grouped = use_length_groups(settings.group_by_length, next(peft_model.parameters()).device)

    def loss_sum(batch: dict) -> torch.Tensor:
        labels = batch.pop("labels")
        return nn.functional.cross_entropy(head(**batch), labels, reduction="sum")

    rank, size = world()
    for step in tqdm(range(settings.steps), desc="stage 1 (LoRA)", disable=not settings.progress):
        rows = batch_at(step, n, min(settings.batch_size, n), settings.seed)
        optim.zero_grad()
        mine = shard_rows(rows, rank, size)  # data parallel: this process's share of the batch
        loss = mean_loss_backward(loss_sum, data, mine, grouped, batch_rows=len(rows))
        all_reduce_grads(trainable)
        losses.append(all_reduce_sum(loss))
        optim.step()
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(
                f"stage 1 loss is {losses[-1]} at step {step}; lower --lora-lr"
            )
        if on_step is not None:
            on_step(step + 1)
            peft_model.train()
    peft_model.eval()
    return losses


def frozen_merge(peft_model: nn.Module) -> nn.Module:
    """The LoRA weights merged into the base model, every parameter frozen, in eval mode."""
    merged = peft_model.merge_and_unload()
    for p in merged.parameters():
        p.requires_grad_(False)
    return merged.eval()


def apply_saved_lora(model: nn.Module, directory: str | Path) -> nn.Module:
    """Re-apply a stage-1 adapter saved by :func:`adapt_backbone` and merge it."""
    from peft import PeftModel

    with quiet_peft():
        return frozen_merge(PeftModel.from_pretrained(model, str(directory)))
