"""Plots return their Figure (restylable), show per-bin counts and ECE, and separate curves."""

import torch
from matplotlib.figure import Figure

from vmoer_ppl.evaluation.calibration import adaptive_ece
from vmoer_ppl.pipeline.plots import plot_reliability, plot_stability


def _outputs():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(50, 4, generator=g) * 2, -1)
    return {"a": {"probs": probs}, "b": {"probs": probs.roll(1, 0)}}, torch.randint(4, (50,))


def test_reliability_panels_carry_counts_ece_and_a_histogram(tmp_path):
    outputs, labels = _outputs()
    fig = plot_reliability(outputs, labels, tmp_path / "r.png")
    assert isinstance(fig, Figure) and (tmp_path / "r.png").stat().st_size > 0
    top, hist = fig.axes[0], fig.axes[2]  # row 1: a, b; row 2: a, b
    assert f"ECE {adaptive_ece(outputs['a']['probs'], labels):.3f}" in top.get_title()
    counts = [int(t.get_text()) for t in top.texts if t.get_text()]
    assert sum(counts) == 50  # every question counted once, on the bars
    assert sum(p.get_height() for p in hist.patches) == 50


def test_stability_curves_get_distinct_markers_and_offsets():
    same = {"gamma": [0.003, 0.01, 0.03], "overall": [0.9, 0.8, 0.6]}
    fig = plot_stability({"deterministic": {"stability": same}, "temp": {"stability": same}})
    a, b = fig.axes[0].get_lines()
    assert a.get_marker() != b.get_marker()
    assert all(x < y for x, y in zip(a.get_xdata(), b.get_xdata(), strict=True))
    assert plot_stability({"x": {}}) is None
