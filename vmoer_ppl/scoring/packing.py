"""A question's options side by side in one row of the option pass ("shared-prefix packing").

The padded option pass runs ``B·C`` rows of ``Tc`` columns, ``Tc`` the longest option in the
batch: with sentence-length options (MMLU, law, HellaSwag endings) one long option pads every
row, and most of the pass is padding (the demo's MMLU-law set: 15,536 positions for 2,642 real
option tokens). Packed, question ``b``'s options follow each other in row ``b``, after the
prompt's key/value cache; a 4D attention mask lets each option token see the prompt's real
tokens and the earlier tokens of its own option only, and its position id is the one it has in
the padded pass. Every option token thus sees the same keys at the same positions as before, so
the scores are the padded pass's (to float rounding), for ``Σ_c len_c`` columns per row
instead of ``C·Tc``, and without repeating the prompt's cache ``C`` times.

The mask is handed to the model as a prepared 4D mask (transformers passes those through), in
the format its attention implementation reads: boolean for ``sdpa``, additive for ``eager``.
Models whose attention needs more than one causal mask (a sliding window the row can exceed,
chunked attention) or another implementation (flash, flex) keep the padded pass:
:func:`can_pack`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Attention implementations whose prepared 4D mask we can build.
MASK_FORMATS = {"sdpa", "eager"}

#: Layer types a single causal mask serves (a sliding window only while the row fits in it).
LAYER_TYPES = {"full_attention", "sliding_attention"}


def sliding_window(config) -> int | None:
    """The attention window of a text config, or None when every layer attends to all tokens."""
    if getattr(config, "use_sliding_window", True) is False:
        return None
    return getattr(config, "sliding_window", None)


def can_pack(config, span: int) -> bool:
    """Whether a model with this config can run the packed option pass.

    Parameters
    ----------
    config : transformers.PretrainedConfig
        The causal LM's config (its text config is read).
    span : int
        ``Tp + Tc``: the longest distance, in positions, from a prompt key to an option query.

    Returns
    -------
    bool
        True for ``sdpa``/``eager`` attention with full-attention layers only, or sliding
        windows no shorter than ``span`` (then they mask nothing).
    """
    text = config.get_text_config()
    if getattr(text, "_attn_implementation", None) not in MASK_FORMATS:
        return False
    if getattr(text, "attention_chunk_size", None):
        return False
    if not set(getattr(text, "layer_types", None) or ["full_attention"]) <= LAYER_TYPES:
        return False
    window = sliding_window(text)
    return window is None or window >= span


@dataclass(frozen=True)
class OptionPacking:
    """Where each option token sits in the packed rows.

    Attributes
    ----------
    option : torch.Tensor
        `(B, L)` long: the option of each packed column, −1 at padding.
    index : torch.Tensor
        `(B, L)` long: the token's index within its option (0 at padding).
    real : torch.Tensor
        `(B, L)` bool: a real option token.
    num_options : int
        C, options per question in the padded layout.
    option_len : int
        Tc, columns per option in the padded layout.
    """

    option: torch.Tensor
    index: torch.Tensor
    real: torch.Tensor
    num_options: int
    option_len: int

    @classmethod
    def of(cls, option_mask: torch.Tensor) -> OptionPacking:
        """The packing of right-padded options.

        Parameters
        ----------
        option_mask : torch.Tensor
            `(B, C, Tc)`, 1 at real tokens, each option's tokens first.

        Returns
        -------
        OptionPacking
            Rows of ``L = max_b Σ_c len_bc`` columns (at least 1).
        """
        B, C, Tc = option_mask.shape
        lengths = option_mask.bool().sum(-1)  # (B, C)
        ends = lengths.cumsum(-1)  # (B, C)
        L = max(int(ends[:, -1].max()) if B else 0, 1)
        col = torch.arange(L, device=option_mask.device).expand(B, L)
        option = torch.searchsorted(ends, col.contiguous(), right=True)  # (B, L), C past the end
        real = option < C
        option = option.clamp_max(C - 1)
        index = col - (ends - lengths).gather(1, option)
        return cls(option.masked_fill(~real, -1), index.masked_fill(~real, 0), real, C, Tc)

    @property
    def flat(self) -> torch.Tensor:
        """`(B, L)` index of each packed column in the flattened `(B·C·Tc)` layout (0 at pad)."""
        B = self.real.shape[0]
        row = torch.arange(B, device=self.real.device)[:, None] * self.num_options
        flat = (row + self.option.clamp_min(0)) * self.option_len + self.index
        return flat.masked_fill(~self.real, 0)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, C, Tc, ...)` -> `(B, L, ...)`; padding columns hold option 0's first entry."""
        B = x.shape[0]
        flat = x.reshape(B * self.num_options * self.option_len, *x.shape[3:])
        return flat[self.flat]

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, L, ...)` -> `(B, C, Tc, ...)`: real tokens back in place, zeros elsewhere."""
        B = x.shape[0]
        out = x.new_zeros(B * self.num_options * self.option_len, *x.shape[2:])
        out[self.flat[self.real]] = x[self.real]
        return out.reshape(B, self.num_options, self.option_len, *x.shape[2:])

    def predicts(self) -> torch.Tensor:
        """`(B, L)` bool: columns whose next column is the next token of the same option."""
        nxt = torch.zeros_like(self.real)
        nxt[:, :-1] = self.real[:, 1:] & (self.option[:, 1:] == self.option[:, :-1])
        return nxt & self.real

    def positions(self, prompt_mask: torch.Tensor) -> torch.Tensor:
        """`(B, L)` position ids: the prompt's real length plus the index in the option."""
        return prompt_mask.long().sum(-1, keepdim=True) + self.index

    def attention(self, prompt_mask: torch.Tensor, dtype: torch.dtype | None = None):
        """The option pass's 4D attention mask over ``[prompt cache, packed options]``.

        Parameters
        ----------
        prompt_mask : torch.Tensor
            `(B, Tp)` 1 at the prompt's real tokens.
        dtype : torch.dtype, optional
            None: boolean (True = attend; ``sdpa``). A float dtype: additive, 0 or its minimum
            (``eager``).

        Returns
        -------
        torch.Tensor
            `(B, 1, L, Tp + L)`. Padding columns attend to the prompt only (no empty row).
        """
        same = self.option[:, :, None] == self.option[:, None, :]  # (B, L, L)
        col = torch.arange(self.real.shape[1], device=self.real.device)
        causal = col[None, :, None] >= col[None, None, :]
        own = same & causal & self.real[:, None, :] & self.real[:, :, None]
        prompt = prompt_mask.bool()[:, None, :].expand(-1, own.shape[1], -1)
        mask = torch.cat([prompt, own], -1)[:, None]  # (B, 1, L, Tp + L)
        if dtype is None:
            return mask
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            ~mask, torch.finfo(dtype).min
        )

    def scatter(self, values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """Put ``values`` at packed columns ``where`` back into the padded `(B, C, Tc)` layout.

        Parameters
        ----------
        values : torch.Tensor
            `(n,)`, one per True entry of ``where`` in row-major order.
        where : torch.Tensor
            `(B, L)` bool.

        Returns
        -------
        torch.Tensor
            `(B, C, Tc)`, 0 elsewhere.
        """
        B = self.real.shape[0]
        out = values.new_zeros(B * self.num_options * self.option_len)
        out[self.flat[where]] = values
        return out.reshape(B, self.num_options, self.option_len)


def packed_logprobs(
    packed: OptionPacking,
    first_lp: torch.Tensor,
    rest: torch.Tensor,
    ids: torch.Tensor,
    option_ids: torch.Tensor,
    option_mask: torch.Tensor,
    predicts: torch.Tensor,
) -> torch.Tensor:
    """Log-probability of each option token from the prompt pass and a packed option pass.

    Parameters
    ----------
    packed : OptionPacking
        The option pass's packing.
    first_lp : torch.Tensor
        `(B, V)` log-softmax at the last prompt position (predicts each option's first token).
    rest : torch.Tensor
        `(1, n, V)` logits of the packed pass at its ``n`` predicting columns.
    ids : torch.Tensor
        `(B, L)` packed option token ids.
    option_ids, option_mask : torch.Tensor
        `(B, C, Tc)` the options in the padded layout.
    predicts : torch.Tensor
        `(B, L)` bool, :meth:`OptionPacking.predicts`.

    Returns
    -------
    torch.Tensor
        `(B, C, Tc)` as the padded pass gives it, 0 at padding.
    """
    later = torch.zeros(option_ids.shape, dtype=first_lp.dtype, device=first_lp.device)
    if predicts.any():
        logits = rest.reshape(-1, rest.shape[-1]).float()  # (n, V)
        target = ids[:, 1:][predicts[:, :-1]]  # (n,) the next token of the same option
        lp = logits.gather(1, target[:, None]).squeeze(1) - logits.logsumexp(-1)
        predicted = torch.zeros_like(predicts)
        predicted[:, 1:] = predicts[:, :-1]  # the columns whose token was predicted
        later = packed.scatter(lp.to(first_lp.dtype), predicted)
    later[:, :, 0] = first_lp.gather(1, option_ids[:, :, 0])  # each option's first token
    return later * option_mask


def mask_dtype(model) -> torch.dtype | None:
    """The packed mask's format for ``model``: None (boolean) under ``sdpa``, else its dtype."""
    if model.config.get_text_config()._attn_implementation == "sdpa":
        return None
    return next(model.parameters()).dtype
