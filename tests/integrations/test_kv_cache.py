import inspect
import warnings

import pytest
import torch
from torch import nn
from transformers import DynamicCache

from tests.integrations.tiny_hf import CONFIGS, tiny_model
from vmoer_ppl.integrations.hf.kv_cache import NAMES, cache_kwargs


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_the_cache_goes_under_the_name_the_model_takes_and_is_filled_without_warnings(arch):
    model = tiny_model(arch)
    kw = cache_kwargs(model, DynamicCache(config=model.config))
    (name,) = kw
    assert name in inspect.signature(type(model).forward).parameters
    ids = torch.randint(3, 64, (2, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated argument on this transformers
        model(input_ids=ids, use_cache=True, **kw)
        assert kw[name].get_seq_length() == 5  # the caller's own object was filled
        nxt = model(input_ids=ids[:, :1], **kw).logits
    full = model(input_ids=torch.cat([ids, ids[:, :1]], 1)).logits[:, -1:]
    torch.testing.assert_close(nxt, full, atol=1e-5, rtol=1e-4)


class _Old(nn.Module):
    def forward(self, input_ids=None, past_key_values=None, **kwargs): ...


class _None(nn.Module):
    def forward(self, x): ...


class _Wrapper(nn.Module):  # peft's PeftModel forwards **kwargs to get_base_model()
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def get_base_model(self):
        return self.inner

    def forward(self, *args, **kwargs): ...


def test_older_signatures_wrappers_and_non_models():
    assert NAMES == ("cache", "past_key_values")
    assert list(cache_kwargs(_Old(), "c")) == ["past_key_values"]
    assert list(cache_kwargs(_Wrapper(_Old()), "c")) == ["past_key_values"]
    with pytest.raises(TypeError, match="takes none of"):
        cache_kwargs(_None(), "c")
