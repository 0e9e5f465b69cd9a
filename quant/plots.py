"""Profile plots in the style of hls4ml's `numerical` profiling: per layer, the distribution of log2|x|
(box: quartiles, whiskers: 1st-99th percentile, dots: min/max) with the representable range of the
chosen fixed-point format drawn behind it (grey: from one LSB to the largest value)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _panel(ax, rows: list[tuple[str, np.ndarray, object]], title: str) -> None:
    names = [r[0] for r in rows]
    for i, (_, values, fmt) in enumerate(rows):
        y = len(rows) - 1 - i
        ax.add_patch(_rect(np.log2(fmt.lsb), np.log2(fmt.max_value), y))
        v = np.abs(np.asarray(values, np.float64))
        v = v[v > 0]
        if v.size:
            lv = np.log2(v)
            q1, med, q3 = np.percentile(lv, [25, 50, 75])
            lo, hi = np.percentile(lv, [1, 99])
            ax.plot([lo, hi], [y, y], color="tab:blue", lw=1)
            ax.add_patch(_rect(q1, q3, y, 0.5, "tab:blue", 0.8))
            ax.plot([med, med], [y - 0.25, y + 0.25], color="white", lw=1.5)
            ax.plot([lv.min(), lv.max()], [y, y], "o", color="tab:blue", ms=2)
    lo = min(np.log2(r[2].lsb) for r in rows) - 4      # keep the formats in view; far outliers are clipped
    hi = max(np.log2(r[2].max_value) for r in rows) + 2
    ax.set_xlim(lo, hi)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(names[::-1], fontsize=7)
    ax.set_xlabel("log2 |value|   (grey: format range, LSB to max)")
    ax.set_title(title)
    ax.set_ylim(-1, len(rows))
    ax.grid(axis="x", alpha=0.3)


def _rect(x0, x1, y, h=0.8, color="0.8", alpha=1.0):
    from matplotlib.patches import Rectangle
    return Rectangle((x0, y - h / 2), x1 - x0, h, color=color, alpha=alpha, lw=0)


def profile_plots(cal, spec, out_dir: str | Path) -> list[Path]:
    """weights.png and activations.png in out_dir; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [c.name for c in cal.arch.convs()]
    paths = []
    for kind in ("weights", "activations"):
        if kind == "weights":
            rows = [(n, cal.params[n][0], spec.layers[n].weight) for n in names]
        else:
            rows = [(n, cal.outputs[n].values(), spec.layers[n].result) for n in names]
        fig, ax = plt.subplots(figsize=(8, 0.28 * len(rows) + 1.5))
        _panel(ax, rows, f"{spec.model}: {kind} vs chosen formats")
        fig.tight_layout()
        path = out_dir / f"{kind}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def pareto_plot(pareto: list[dict], all_points: list[dict], float_top1: float, margin: float,
                path: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    if all_points:
        ax.scatter([p["weight_bytes"] / 1e6 for p in all_points], [100 * p["top1"] for p in all_points],
                   s=10, color="0.7", label="evaluated")
    ax.plot([p["weight_bytes"] / 1e6 for p in pareto], [100 * p["top1"] for p in pareto], "o-",
            color="tab:blue", ms=4, label="Pareto front")
    return finish_top1_plot(fig, ax, float_top1, margin, "top-1 on the search set (%)", path)


def finish_top1_plot(fig, ax, float_top1: float, margin: float | None, ylabel: str, path: str | Path) -> Path:
    """Float and margin lines, axis labels, legend; save the top-1 vs weight storage figure and close it."""
    import matplotlib.pyplot as plt

    ax.axhline(100 * float_top1, color="tab:green", ls="--", lw=1, label="float")
    if margin:
        ax.axhline(100 * (float_top1 - margin), color="tab:red", ls=":", lw=1, label=f"margin {100 * margin:.1f} pt")
    ax.set_xlabel("dense weight storage (MB)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
