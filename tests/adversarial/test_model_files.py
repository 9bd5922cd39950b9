"""A damaged model directory is named with the fix, never a deep traceback."""

import json
from pathlib import Path

import pytest

from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.loading import load_model


@pytest.mark.parametrize("damage", ["truncated", "experts"])
def test_a_damaged_model_directory_is_named(setup, damage):
    model, _ = setup
    if damage == "truncated":
        w = Path(model) / "model.safetensors"
        w.write_bytes(w.read_bytes()[:1000])
        message = "weights file is damaged or truncated"
    else:
        cfg = json.loads((Path(model) / "config.json").read_text())
        key = next(k for k in ("num_local_experts", "num_experts", "n_routed_experts") if k in cfg)
        cfg[key] += 1
        (Path(model) / "config.json").write_text(json.dumps(cfg))
        message = "config.json does not match its weights"
    with pytest.raises(ValueError, match=message):
        load_model(FitConfig(model=model))
