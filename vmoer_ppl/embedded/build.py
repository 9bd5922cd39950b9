"""Build the embedded default MoE from SmolLM2-135M-Instruct, once, into the user's cache.

Steps (each with a progress bar): load the dense GGUF model; per layer, streamed (one layer's
activations in memory at a time), record the MLP activations on LAMBADA passages, group neurons
into experts, fit the router, choose its scale; write a Mixtral model with ``save_pretrained``.
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
from tqdm.auto import tqdm

from vmoer_ppl.embedded.activations import mlp_activations
from vmoer_ppl.embedded.clustering import cluster_neurons
from vmoer_ppl.embedded.convert import dense_to_mixtral
from vmoer_ppl.embedded.routers import (
    choose_alpha,
    expert_outputs,
    refit_down,
    relative_error,
    routed_output,
    train_router,
)
from vmoer_ppl.embedded.source import GGUF_FILE, gguf_dir, lambada_passages, load_dense

log = logging.getLogger(__name__)
CONVERSION_VERSION = 2  # bump when the conversion changes what it writes
HELDOUT_PASSAGES = 400  # the last LAMBADA passages, never used by the build (perplexity)


@dataclass(frozen=True)
class EmbeddedConfig:
    """Settings of the MoEfication build (all part of the cache key)."""

    num_experts: int = 16  # E; divides SmolLM2's FFN width 1536
    top_k: int = 8  # K; chosen by benchmarks/embedded_quality.py (K=4 is near chance)
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


def moefy_layers(dense, acts, cfg: EmbeddedConfig) -> tuple[list, list, list, list[dict]]:
    """Groups, routers, refitted down projections (or None) and a per-layer report.

    ``acts`` yields one ``{"x": (N, D), "h": (N, F)}`` per layer, in order; each is dropped
    before the next is read, so a lazy source keeps one layer's activations in memory.
    """
    groups, routers, downs, report = [], [], [], []
    layers = dense.model.layers
    pairs = zip(layers, acts, strict=True)  # too few activations: ValueError
    for i, (layer, a) in enumerate(tqdm(pairs, total=len(layers), desc="experts")):
        g, w, down, row = moefy_layer(i, layer, a, cfg)
        del a  # before the next layer's activations are computed
        groups.append(g)
        routers.append(w)
        downs.append(down)
        report.append(row)
    return groups, routers, (downs if cfg.refit_down else None), report


def moefy_layer(i: int, layer, a: dict, cfg: EmbeddedConfig):
    """Neuron groups `(E, F/E)`, scaled router `(E, D)`, refitted down `(D, F)` or None, report."""
    g = cluster_neurons(a["h"], cfg.num_experts, iters=cfg.kmeans_iters, seed=cfg.seed + i)
    outs = expert_outputs(a["h"], layer.mlp.down_proj.weight, g)  # (N, E, D)
    n_fit = int(0.8 * len(outs))
    w = train_router(
        a["x"][:n_fit], outs[:n_fit].norm(dim=-1), cfg.top_k, steps=cfg.router_steps, seed=cfg.seed
    )
    alpha, err = choose_alpha(w, a["x"][n_fit:], outs[n_fit:], cfg.top_k)
    row = {"layer": i, "alpha": alpha, "held_out_relative_error": err}
    down = None
    if cfg.refit_down:
        dense_out = outs.sum(1)  # (N, D)
        del outs
        down = refit_down(
            a["x"][:n_fit], a["h"][:n_fit], alpha * w, g, dense_out[:n_fit], cfg.top_k
        )
        row["held_out_relative_error_refit"] = refit_error(
            a, alpha * w, g, down, dense_out, n_fit, cfg.top_k
        )
    return g, alpha * w, down, row


def refit_error(a, w, g, down, dense_out, n_fit: int, top_k: int) -> float:
    """Held-out relative error of the routed block with a refitted down projection."""
    x, h, y = a["x"][n_fit:], a["h"][n_fit:], dense_out[n_fit:]
    return relative_error(routed_output(x, w, expert_outputs(h, down, g), top_k), y)


@torch.no_grad()
def build_embedded(cfg: EmbeddedConfig, out: Path) -> Path:
    """Run the whole conversion and write it to ``out``."""
    t0 = time.perf_counter()
    dense, tokenizer = load_dense()
    texts = lambada_passages()[:-HELDOUT_PASSAGES]
    with torch.enable_grad():
        acts = mlp_activations(
            dense, tokenizer, texts, max_tokens=cfg.build_tokens, max_length=cfg.max_length
        )
        groups, routers, downs, report = moefy_layers(dense, (a for _, a in acts), cfg)
    moe = dense_to_mixtral(dense, groups, routers, cfg.top_k, downs)
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
        Build settings; the default E = 16, K = 4.

    Returns
    -------
    Path
        A transformers model directory (config, safetensors weights, tokenizer, build_info.json).
    """
    cfg = cfg or EmbeddedConfig()
    path = cache_root() / f"smollm2-moe-e{cfg.num_experts}k{cfg.top_k}-{cache_key(cfg)}"
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
    """The embedded MoE (``MixtralForCausalLM``, eval mode) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = embedded_path(cfg)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
