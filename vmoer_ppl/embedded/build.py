"""Build the embedded default MoE from SmolLM2-135M-Instruct, once, into the user's cache.

Steps (each with a progress bar): load the dense GGUF model; stream LAMBADA passages through it
layer by layer (one layer's activations in memory at a time); for each of the top N layers split
the FFN into a shared expert and routed experts, fit the router and its scale
(:mod:`vmoer_ppl.embedded.moefy`); write a Qwen2-MoE model with ``save_pretrained``, dense below.
The result is an ordinary transformers model directory, loadable with
``AutoModelForCausalLM.from_pretrained(path)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vmoer_ppl.embedded.activations import mlp_activations
from vmoer_ppl.embedded.convert import dense_to_moe
from vmoer_ppl.embedded.moefy import moefy_layers
from vmoer_ppl.embedded.source import GGUF_FILE, gguf_dir, lambada_passages, load_dense

log = logging.getLogger(__name__)
CONVERSION_VERSION = 3  # bump when the conversion changes its output (3: Qwen2-MoE, dense below)
HELDOUT_PASSAGES = 400  # the last LAMBADA passages, never used by the build (perplexity)


@dataclass(frozen=True)
class EmbeddedConfig:
    """Settings of the MoEfication build (all part of the cache key)."""

    moe_layers: int = 8  # N: the top N of the 30 layers are MoE, the rest stay dense
    num_experts: int = 16  # E; divides the routed width 1536 - shared_neurons
    top_k: int = 4  # K
    shared_neurons: int = 256  # S: the most used neurons, always active (shared expert)
    build_tokens: int = 24576  # LAMBADA tokens: clustering, routers, refit (~13 per feature)
    max_length: int = 128  # passage truncation
    kmeans_iters: int = 10  # balanced k-means iterations per layer
    router_steps: int = 300  # full-batch Adam steps per router
    refit_down: bool = True  # stage-1 fine-tune: least-squares down projections for the routing
    seed: int = 0


def cache_root() -> Path:
    """``$VMOER_PPL_CACHE``, else ``$XDG_CACHE_HOME/vmoer_ppl``, else ``~/.cache/vmoer_ppl``."""
    if os.environ.get("VMOER_PPL_CACHE"):
        return Path(os.environ["VMOER_PPL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vmoer_ppl"


def cache_key(cfg: EmbeddedConfig) -> str:
    """Hash of the build inputs: config, conversion version, and the GGUF file's bytes."""
    h = hashlib.sha256(
        json.dumps({**asdict(cfg), "v": CONVERSION_VERSION}, sort_keys=True).encode()
    )
    with open(gguf_dir() / GGUF_FILE, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


@torch.no_grad()
def build_embedded(cfg: EmbeddedConfig, out: Path) -> Path:
    """Run the whole conversion and write it to ``out``."""
    t0 = time.perf_counter()
    dense, tokenizer = load_dense()
    texts = lambada_passages()[:-HELDOUT_PASSAGES]
    n_layers = dense.config.num_hidden_layers
    if not 0 < cfg.moe_layers <= n_layers:
        raise ValueError(f"moe_layers={cfg.moe_layers} must be in 1..{n_layers}")
    with torch.enable_grad():
        acts = mlp_activations(
            dense,
            tokenizer,
            texts,
            max_tokens=cfg.build_tokens,
            max_length=cfg.max_length,
            layers=range(n_layers - cfg.moe_layers, n_layers),
        )
        layers, report = moefy_layers(dense, acts, cfg)
    moe = dense_to_moe(dense, layers, cfg.top_k)
    moe.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {
        "config": asdict(cfg),
        "conversion_version": CONVERSION_VERSION,
        "layers": report,
        "build_seconds": time.perf_counter() - t0,
        "source": f"{gguf_dir().name}/{GGUF_FILE}",
    }
    (out / "build_info.json").write_text(json.dumps(info, indent=2))
    return out


def embedded_path(cfg: EmbeddedConfig | None = None) -> Path:
    """Directory of the embedded MoE, building it on first use (atomic: a temp dir renamed).

    Parameters
    ----------
    cfg : EmbeddedConfig, optional
        Build settings; the default :class:`EmbeddedConfig`.

    Returns
    -------
    Path
        A transformers model directory (config, safetensors weights, tokenizer, build_info.json).
    """
    cfg = cfg or EmbeddedConfig()
    name = f"smollm2-moe-n{cfg.moe_layers}e{cfg.num_experts}k{cfg.top_k}s{cfg.shared_neurons}"
    path = cache_root() / f"{name}-{cache_key(cfg)}"
    if (path / "build_info.json").exists():
        return path
    log.info("building the embedded MoE into %s (first use; a few minutes)", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".building-"))
    try:
        build_embedded(cfg, tmp)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load_embedded(cfg: EmbeddedConfig | None = None):
    """The embedded MoE (``Qwen2MoeForCausalLM``, eval mode) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = embedded_path(cfg)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
