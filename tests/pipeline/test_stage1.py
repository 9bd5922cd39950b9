import torch

from tests.integrations.tiny_hf import tiny_model
from vmoer_ppl.pipeline.stage1 import LoRASettings, adapt_backbone


def head_of(model):
    return lambda input_ids: model(input_ids=input_ids).logits[:, -1, :4]  # (B, 4)


def adapt(noise_seed):
    base = tiny_model("mixtral")
    torch.manual_seed(noise_seed)  # whatever ran before (the build reseeds the global RNG)
    data = {"input_ids": torch.arange(3, 27).reshape(4, 6), "labels": torch.tensor([0, 1, 2, 3])}
    settings = LoRASettings(steps=2, rank=2, lr=1e-2, batch_size=2, progress=False)
    model, losses = adapt_backbone(base, head_of, data, settings)
    return model.state_dict(), losses


def test_stage1_is_reproducible_whatever_the_global_rng_state():
    (a, la), (b, lb) = adapt(1), adapt(2)
    assert la == lb
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0)


def test_a_step_callback_sees_every_step_and_does_not_change_training():
    from vmoer_ppl.pipeline.stage1 import lora_model, train_lora

    data = {"input_ids": torch.arange(3, 27).reshape(4, 6), "labels": torch.tensor([0, 1, 2, 3])}
    settings = LoRASettings(steps=3, rank=2, lr=1e-2, batch_size=2, progress=False)

    model = lora_model(tiny_model("mixtral"), settings)
    plain = train_lora(model, head_of(model), dict(data), settings)
    seen, modes = [], []

    def measure(step):  # what a regime probe does: eval mode, a forward without gradients
        modes.append(model.training)
        model.eval()
        with torch.no_grad():
            head_of(model)(data["input_ids"])
        seen.append(step)

    model = lora_model(tiny_model("mixtral"), settings)
    watched = train_lora(model, head_of(model), dict(data), settings, on_step=measure)
    assert seen == [1, 2, 3]
    assert modes == [True, True, True]  # back in train mode after each call
    assert watched == plain
