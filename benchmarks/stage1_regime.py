"""The deterministic model's confidence regime along stage 1 (is it ever over-confident?).

Bayesian routing corrects an *over-confident* backbone (the paper's, LoRA fine-tuned on its ID
set). This trains stage 1 with a run's settings (the demo's by default) for ``--steps`` steps
and measures, every ``--every`` steps, the regime on the validation split (accuracy, mean
confidence, NLL, ECE, post-hoc temperature T; T > 1: over-confident) and on stage 1's own train
rows (memorisation). Validation and train only: the test split is not read.

Run: ``python benchmarks/stage1_regime.py --steps 320 --every 40 [--seed 0] [--lr 3e-3]
[--scorer cloze:sum] [--out results.json]`` (demo settings; ``--run runs/x`` for another
run's settings).
"""

from __future__ import annotations

import argparse
import time

import torch
from common import write_result

from vmoer_ppl.data.tensors import first_rows
from vmoer_ppl.pipeline.backbone import stage1_head, stage1_inputs, stage1_rows, stage1_settings
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.demo import demo_config
from vmoer_ppl.pipeline.loading import load_model
from vmoer_ppl.pipeline.regime import measure_regime
from vmoer_ppl.pipeline.run_data import encode_sets
from vmoer_ppl.pipeline.run_dir import scorer_kwargs, strip
from vmoer_ppl.pipeline.stage1 import lora_model, train_lora

COLUMNS = ("acc", "mean_confidence", "nll", "ece", "temperature")


def row(step: int, split: str, regime: dict) -> str:
    """One printed line of the table."""
    cells = " | ".join(f"{regime[k]:.3f}" for k in COLUMNS)
    return f"| {step} | {split} | {cells} |"


def main() -> None:
    """Train stage 1 once, measuring the regime along the way; print the table, write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default=None, help="a run directory (default: the demo's settings)")
    ap.add_argument("--steps", type=int, default=320)
    ap.add_argument("--every", type=int, default=40)
    ap.add_argument("--seed", type=int, default=None, help="splits and batches (default: run's)")
    ap.add_argument("--lr", type=float, default=None, help="stage-1 lr (default: the run's)")
    ap.add_argument("--scorer", default=None, help="answer scorer (default: the run's)")
    ap.add_argument("--train-questions", type=int, default=100, help="train rows measured")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cfg = FitConfig.load(args.run) if args.run else demo_config()
    cfg = cfg.replace(lora_steps=args.steps)
    if args.seed is not None:
        cfg = cfg.replace(seed=args.seed)
    if args.lr is not None:
        cfg = cfg.replace(lora_lr=args.lr)
    if args.scorer is not None:
        cfg = cfg.replace(scorer=args.scorer)
    model, tok, _ = load_model(cfg)
    enc, _, _ = encode_sets(cfg, tok)
    kwargs = scorer_kwargs(cfg, tok, enc)
    first, data = stage1_inputs(cfg, model, kwargs, stage1_rows(cfg, enc))
    probe = {"val": data["val"], "train": first_rows(data["train"], args.train_questions)}
    settings = stage1_settings(cfg)
    peft_model = lora_model(model, settings, first)
    head = stage1_head(peft_model, kwargs, first)
    history: list[dict] = []
    t0 = time.perf_counter()

    def measure(step: int) -> None:
        if step % args.every and step != args.steps:
            return
        peft_model.eval()
        with torch.no_grad():
            for split, rows in probe.items():
                regime = measure_regime(head, rows, desc=f"{split} regime, step {step}")
                history.append({"step": step, "split": split, **regime})
                print(row(step, split, regime), flush=True)

    print(f"| step | split | {' | '.join(COLUMNS)} |\n|" + "---|" * (len(COLUMNS) + 2))
    measure(0)
    losses = train_lora(peft_model, head, strip(data["train"]), settings, on_step=measure)
    seconds = time.perf_counter() - t0
    print(f"stage 1: {args.steps} steps at lr {settings.lr}, {seconds:.0f} s with measurements")
    used = {"lr": settings.lr, "scorer": cfg.dataset.scorer}
    result = {"settings": vars(args) | used, "history": history, "losses": losses}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
