"""One table of every ratio ``make bench`` measured, each beside its goal, and the same as JSON.

Reads the JSON files the benchmarks wrote in one ``make bench`` run (``benchmarks/results/``)
and prints ``| measure | value | goal | met |``; a missing file is listed as not measured.

    python benchmarks/summary.py --results benchmarks/results --out benchmarks/results/summary.json
"""

from __future__ import annotations

import argparse
import json
import operator
from pathlib import Path

from common import INFERENCE_FAMILIES, write_result

#: (file, path of keys, label, comparison, goal): the measures with a goal in an issue (8, 23).
MEASURES = [
    ("training", ("fused_over_reference",), "SVI step fused / reference (toy)", "<=", 0.5),
    ("training", ("vectorised_over_looped",), "MC routing vectorised / looped", "<=", 0.1),
    ("training", ("compiled_speedup",), "torch.compile speed-up, one router", ">=", 1.3),
]
for family in INFERENCE_FAMILIES:
    for mode in ("mc", "analytic"):
        for key, how in (("overhead_pct", "whole pass"), ("in_pass_overhead_pct", "in pass")):
            MEASURES.append(
                (
                    "inference",
                    (family, mode, key),
                    f"prediction overhead %, {how} ({family}, {mode})",
                    "<=",
                    2.0,
                )
            )
OPS = {"<=": operator.le, ">=": operator.ge}


def lookup(data: dict, keys: tuple):
    for k in keys:
        if not isinstance(data, dict) or k not in data:
            return None
        data = data[k]
    return data


def summarise(results: Path) -> list[dict]:
    """Every measure with its value (``None`` if not measured), goal and whether it is met."""
    loaded = {}
    for name in {m[0] for m in MEASURES} | {"flops"}:
        path = results / f"{name}.json"
        loaded[name] = json.loads(path.read_text()) if path.exists() else {}
    rows = []
    for name, keys, label, op, goal in MEASURES:
        value = lookup(loaded[name], keys)
        met = None if value is None else OPS[op](value, goal)
        rows.append({"measure": label, "value": value, "goal": f"{op} {goal:g}", "met": met})
    for r in loaded["flops"].get("rows", []):
        if "granite" in r["model"].lower():
            for k, v in r.items():
                if k.startswith(("logit-fc", "logit-lowrank")) and "last 5" in k:
                    rows.append(
                        {
                            "measure": f"{r['model']} {k}",
                            "value": v,
                            "goal": "<= 0.25",
                            "met": v <= 0.25,
                        }
                    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--out", help="write the table as JSON here")
    args = ap.parse_args()
    rows = summarise(args.results)
    print("| measure | value | goal | met |")
    print("|---|---|---|---|")
    for r in rows:
        value = "not measured" if r["value"] is None else f"{r['value']:.3f}"
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        print(f"| {r['measure']} | {value} | {r['goal']} | {met} |")
    write_result(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
