"""A run directory may come from a stranger: checkpoints are data, never code."""

import logging
import math
import pickle
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vmoer_ppl.infer.checkpoint import LEGACY_FILE, load_state, save_state, state_path
from vmoer_ppl.infer.state_codec import decode, encode


def test_every_kind_of_training_state_round_trips_with_its_types():
    state = {
        "step": 7,
        "losses": [1.5, float("inf")],
        "val": [(0, 2.0), (10, float("nan"))],
        "optim": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2, 3)}}},
        "ids": torch.arange(5),
        "bytes": torch.ByteTensor([1, 2, 255]),
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the state Pyro saves)
        "none": None,
        "flag": True,
        "__tensor__": "a key that looks like a marker",
    }
    tree, tensors = encode(state)
    back = decode(tree, tensors)
    assert back["step"] == 7 and back["losses"][0] == 1.5 and math.isinf(back["losses"][1])
    assert back["val"][0] == (0, 2.0) and isinstance(back["val"][0], tuple)
    assert math.isnan(back["val"][1][1])
    assert torch.equal(back["optim"]["state"][0]["exp_avg"], torch.ones(2, 3))
    assert list(back["optim"]["state"]) == [0]  # integer keys stay integers
    assert torch.equal(back["bytes"], state["bytes"]) and back["bytes"].dtype == torch.uint8
    random.setstate(back["python"])  # the RNG modules accept what comes back
    np.random.set_state(back["numpy"])  # noqa: NPY002
    assert back["python"] == state["python"]
    assert back["__tensor__"] == state["__tensor__"] and back["none"] is None
    with pytest.raises(TypeError, match="cannot store a set"):
        encode({"bad": {1, 2}})


class Boom:
    """Unpickling this runs code (as a hostile checkpoint would)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_planted_pickle_is_never_loaded(tmp_path, caplog):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    marker = tmp_path / "pwned"
    (ckpt / LEGACY_FILE).write_bytes(pickle.dumps({"step": Boom(marker)}))
    with caplog.at_level(logging.WARNING):
        assert load_state(ckpt) is None
    assert not marker.exists()
    assert "never loaded" in caplog.text


def test_the_state_file_is_safetensors_with_a_json_header(tmp_path):
    save_state(tmp_path, {"step": 3, "guide": {"w": torch.zeros(2)}})
    raw = state_path(tmp_path).read_bytes()
    assert state_path(tmp_path).suffix == ".safetensors" and b"pickle" not in raw
    assert load_state(tmp_path)["step"] == 3


@pytest.mark.parametrize("kind", ["garbage", "foreign", "symlink", "missing-tensor"])
def test_a_damaged_or_foreign_state_file_is_named_with_the_fix(tmp_path, kind):
    path = state_path(tmp_path)
    if kind == "garbage":
        path.write_bytes(b"\x80\x04not a safetensors file")
    elif kind == "foreign":
        save_file({"w": torch.zeros(1)}, path, metadata={"format": "someone-else"})
    elif kind == "symlink":
        target = tmp_path / "elsewhere.safetensors"
        save_state(tmp_path, {"step": 1})
        path.rename(target)
        path.symlink_to(target)
    else:
        save_file(
            {}, path, metadata={"format": "vmoer-svi-state/1", "state": '{"__tensor__": "t9"}'}
        )
    with pytest.raises(ValueError, match=r"svi_state.safetensors.*delete it"):
        load_state(tmp_path)
