"""Adapter base: find a transformers model's routers and give each a ``routing_fn`` slot.

The adapter patches ``forward`` on each original router instance (it does not replace the
module): transformers records router logits with hooks that match the router class by
``isinstance`` (``OutputRecorder``), so the patched instance keeps ``output_router_logits`` and
the auxiliary loss working. With no routing function installed the original ``forward`` runs,
bit for bit. With one installed, the patched forward computes ``l_det = u W_rᵀ (+ b)`` in the site's
dtype (float32, or float64 for float64 models) and returns ``(logits, weights, experts)`` in the
upstream contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn


class HFAdapter:
    """How vmoer_ppl reaches the routers of one transformers architecture family.

    Subclasses set ``model_types`` and ``router_suffix`` and implement :meth:`gate_rule`.
    """

    model_types: ClassVar[tuple[str, ...]] = ()
    router_suffix: ClassVar[str] = ".mlp.gate"  # module path of a router below a decoder layer
    weights_in_float32: ClassVar[bool] = True  # dtype of the gate values upstream returns
    #: The attribute holding the router's ``nn.Linear`` when its map is nested (DBRX: ``layer``);
    #: None: the router has its own 2-D ``weight``.
    linear_attr: ClassVar[str | None] = None
    #: Whether that nested ``Linear``'s bias is part of the logits (LongCat: not used upstream).
    linear_bias: ClassVar[bool] = True
    #: Attributes every router of the family has, telling it from other modules at that path.
    marker_attrs: ClassVar[tuple[str, ...]] = ()

    def routers(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """``(module path, router)`` of every MoE router, in layer order."""
        return [
            (name, m)
            for name, m in model.named_modules()
            if name.endswith(self.router_suffix) and self.is_router(m)
        ]

    def is_router(self, module: nn.Module) -> bool:
        """Whether a module at a router path is this family's router (its map, its markers)."""
        if self.linear_attr is not None:
            mapped = isinstance(getattr(module, self.linear_attr, None), nn.Linear)
        else:
            weight = getattr(module, "weight", None)
            mapped = isinstance(weight, torch.Tensor) and weight.dim() == 2
        return mapped and all(hasattr(module, a) for a in self.marker_attrs)

    def gate_rule(self, router: nn.Module, config):
        """The exact upstream gate rule of ``router`` (a GateRule or a rule object), or None."""
        raise NotImplementedError

    def weights_dtype(self, hidden: torch.Tensor) -> torch.dtype:
        """Dtype of the gate values handed to the experts (as upstream)."""
        return torch.float32 if self.weights_in_float32 else hidden.dtype

    @staticmethod
    def pack(logits: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor):
        """The router's return value in upstream's contract: ``(logits, weights, experts)``."""
        return logits, weights, experts

    def install(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """Patch every router once (idempotent); return ``(path, router)`` pairs.

        A router whose gate rule :meth:`gate_rule` cannot identify (``None``) is left alone.
        """
        found = []
        for name, router in self.routers(model):
            if not getattr(router, "_vmoer_router", False):
                rule = self.gate_rule(router, model.config)
                if rule is None:
                    continue
                self.patch(model, name, router, rule)
            found.append((name, router))
        return found

    def expose_linear(self, router: nn.Module) -> None:
        """Read a nested map (:attr:`linear_attr`) as ``router.weight`` (and bias); else nothing."""
        if self.linear_attr is not None:
            alias_linear(router, getattr(router, self.linear_attr), bias=self.linear_bias)

    def patch(self, model: nn.Module, name: str, router: nn.Module, rule) -> None:
        """Give ``router`` (at path ``name`` in ``model``) its ``routing_fn`` slot and ``rule``."""
        self.expose_linear(router)
        patch_router(router, rule, self.weights_dtype, self.pack)


def alias_linear(router: nn.Module, linear: nn.Linear, *, bias: bool = True) -> None:
    """Make ``router.weight`` (and ``router.bias``) the parameters of a ``Linear`` inside it.

    Set with ``object.__setattr__``: the same tensors reachable under a second name, not second
    parameters, so the router's parameters and the model's state dict are unchanged. A bias the
    router already has is kept; ``bias=False`` leaves the Linear's bias out of the logits.
    """
    object.__setattr__(router, "weight", linear.weight)
    if bias and linear.bias is not None and getattr(router, "bias", None) is None:
        object.__setattr__(router, "bias", linear.bias)


def router_logits(router: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """``h Wᵀ (+ b)`` of a router, in ``h``'s dtype; `(N, D)` -> `(N, E)`."""
    bias = getattr(router, "bias", None)
    bias = bias.to(h.dtype) if isinstance(bias, torch.Tensor) else None
    return nn.functional.linear(h, router.weight.to(h.dtype), bias)


def patch_router(
    router: nn.Module,
    rule,
    weights_dtype: Callable[[torch.Tensor], torch.dtype],
    pack: Callable | None = None,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """Give an upstream router the ``routing_fn`` slot of :class:`vmoer_ppl.nn.Router`.

    Parameters
    ----------
    router : nn.Module
        An upstream router with ``weight`` `(E, D)` and ``top_k``.
    rule : GateRule or rule object
        Its exact gate rule.
    weights_dtype : callable
        ``hidden -> dtype`` of the returned gate values.
    pack : callable, optional
        ``(logits (N, E), weights (N, K), experts (N, K)) -> return value``, upstream's output
        contract; default the ``(logits, weights, experts)`` triple.
    prepare : callable, optional
        ``h (N, D) -> u (N, D)``: what the router does to its input before its linear map
        (Gemma-4 normalises and scales it), computed in the site's dtype; ``u`` is the router
        input the guides and the stability probe see. Default: none.
    """
    pack = pack or HFAdapter.pack
    original = router.forward

    def forward(hidden_states, *args, **kwargs):
        fn = router.routing_fn
        if fn is None:  # deterministic: the untouched upstream code
            return original(hidden_states, *args, **kwargs)
        hook = getattr(router, "_hf_hook", None)  # accelerate offload: weights live elsewhere
        if hook is not None:
            (hidden_states, *args), kwargs = hook.pre_forward(
                router, hidden_states, *args, **kwargs
            )
        h = hidden_states.reshape(-1, hidden_states.shape[-1])  # (B*T, D)
        dt = torch.promote_types(router.weight.dtype, torch.float32)  # = site.dtype
        u = h if prepare is None else prepare(h.to(dt))  # Gemma-4: normalised and scaled
        l_det = router_logits(router, u.to(dt))  # (B*T, E); gpt-oss: h·Wᵀ + b
        out = fn(u, l_det)  # (B, T, ·)
        n = h.shape[0]
        weights = out.weights.reshape(n, -1).to(weights_dtype(h))  # (B*T, K)
        result = pack(out.logits.reshape(n, -1), weights, out.experts.reshape(n, -1))
        return result if hook is None else hook.post_forward(router, result)

    router.forward = forward
    router.routing_fn = None
    router.gate_rule = rule
    router._vmoer_router = True
