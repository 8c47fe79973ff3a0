"""The scaling plot: median time against asset count, ours and the baselines, one row
of two panels (time, time per asset) per server."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.many import Scaling

__all__ = ["plot_scaling"]

#: (label, samples by count) of one line.
_Series = tuple[str, dict[int, list[float]]]


def _series(scaling: Scaling) -> list[tuple[_Series, str]]:
    """Every line of one server's panels, with its matplotlib style: cold fetches
    (ours, then each peer) as circles, no-op fetch and `doit list` as squares."""
    cold, noop = scaling.cold, scaling.noop
    peers = sorted({name for figure in cold.values() for name in figure.peers})
    lines = [(("cold `doit fetch`", {n: f.ours for n, f in cold.items()}), "o-")]
    lines += [((name, {n: f.peers[name] for n, f in cold.items() if name in f.peers}), "o--") for name in peers]
    lines += [(("no-op `doit fetch`", {n: f.ours for n, f in noop.items()}), "s-"),
              (("`doit list`", {n: f.base for n, f in noop.items()}), "s--")]
    return [line for line in lines if line[0][1]]


def plot_scaling(scaling: dict[str, Scaling], path: Path) -> str:
    """Write a PNG of time against asset count, per server, to ``path``; return a line saying so."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "No plot: matplotlib is not installed (pip install -e '.[bench]')."
    figure, panels = plt.subplots(len(scaling), 2, figsize=(11, 4.2 * len(scaling)), squeeze=False)
    for (server, found), (total, each) in zip(scaling.items(), panels):
        for (label, samples), style in _series(found):
            counts = sorted(samples)
            medians = [statistics.median(samples[n]) for n in counts]
            total.plot(counts, medians, style, label=label.replace("`", ""))
            each.plot(counts, [m / n * 1000 for m, n in zip(medians, counts)], style, label=label.replace("`", ""))
        for axes, title, unit in ((total, "time", "seconds (median)"), (each, "time per asset", "ms per asset (median)")):
            axes.set_xscale("log")
            axes.set_yscale("log")
            axes.set_xlabel("assets")
            axes.set_ylabel(unit)
            axes.set_title(f"{title} ({server})")
            ticks = sorted({*found.cold, *found.noop})
            axes.set_xticks(ticks, [str(n) for n in ticks])
            axes.grid(True, which="both", alpha=0.3)
        each.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"Plot: {path}"
