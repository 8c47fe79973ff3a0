"""The scaling plot: median time against asset count, ours and the baselines."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.cases import Scaling

__all__ = ["plot_scaling"]


def plot_scaling(scaling: Scaling, path: Path) -> str:
    """Write a PNG of time against asset count to ``path``; return a line saying so."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "No plot: matplotlib is not installed (pip install -e '.[bench]')."
    counts = sorted(scaling.noop)
    series = [
        ("cold `doit -n 8 -P thread fetch`", [scaling.cold[n].ours for n in counts], "o-"),
        (scaling.cold[counts[0]].baseline.strip("`"), [scaling.cold[n].base for n in counts], "o--"),
        ("no-op `doit fetch`", [scaling.noop[n].ours for n in counts], "s-"),
        ("`doit list`", [scaling.noop[n].base for n in counts], "s--"),
    ]
    figure, (total, each) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, samples, style in series:
        medians = [statistics.median(s) for s in samples]
        total.plot(counts, medians, style, label=label.replace("`", ""))
        each.plot(counts, [m / n * 1000 for m, n in zip(medians, counts)], style, label=label.replace("`", ""))
    for axes, title, unit in ((total, "time", "seconds (median)"), (each, "time per asset", "ms per asset (median)")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("assets")
        axes.set_ylabel(unit)
        axes.set_title(title)
        axes.set_xticks(counts, [str(n) for n in counts])
        axes.grid(True, which="both", alpha=0.3)
    each.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"Plot: {path}"
