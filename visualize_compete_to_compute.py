"""Figures of the Compete to Compute experiment, drawn from viz/snapshots.npz (and results.json).

    python visualize_compete_to_compute.py      # writes viz/*.png in about a second

Nothing is trained here. The snapshot holds the headline seed (curves, first-layer weights, how often
each hidden unit fires on each task); results.json adds the other seeds when the run had several.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from compete_to_compute import SnapshotError, read_snapshots, write_atomic  # noqa: E402

# One colour per model everywhere (Okabe-Ito, colour-blind safe); the GIF uses the same.
COLORS = {"relu": "#D55E00", "lwta": "#0072B2", "topk": "#009E73"}
DPI = 100
W1_DPI = 80              # the weight grids: about one screen pixel per weight, and quick to encode
SELECTIVE = 0.5          # |selectivity index| above which a unit counts as task-selective


def color(name: str) -> str:
    return COLORS.get(name, "#666666")


def save(fig, path: Path, close: bool = True, dpi: int = DPI) -> None:
    """Render to memory, then write atomically: an interrupted run never leaves half a PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if close:
        plt.close(fig)
    write_atomic(path, lambda f: f.write(buf.getvalue()))


def read_results(path: Path, snap: dict) -> dict | None:
    """The multi-seed part of results.json, if it exists and comes from the same run as the snapshot."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SnapshotError(f"{path}: unreadable ({e}); make it with: python compete_to_compute.py "
                            "--seed 0 --n-seeds 10") from None
    if doc.get("config") != snap["config"] or len(doc.get("per_seed", [])) < 2:
        return None
    return doc


def plot_training_curves(snap: dict, out: Path) -> None:
    epochs = snap["config"]["epochs"]
    x = snap["epoch"]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    fig.subplots_adjust(left=0.09, right=0.8, bottom=0.13, top=0.92)
    for name in snap["models"]:
        ax.plot(x, snap[f"acc_t1_{name}"], "-o", ms=3.5, color=color(name), label=f"{name}: Task 1")
        ax.plot(x, snap[f"acc_t2_{name}"], "--s", ms=3, color=color(name), alpha=0.8, label=f"{name}: Task 2")
    ax.axvline(epochs, color="0.3", lw=1, ls=":")
    ax.text(epochs + 0.08, 0.02, "switch to Task 2", transform=ax.get_xaxis_transform(), fontsize=8, color="0.3")
    ax.set_xticks(x)
    ax.set_xlim(-0.3, x[-1] + 0.3)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"epochs trained (1-{epochs}: Task 1 = digits {snap['config']['task1_classes']}; "
                  f"{epochs + 1}-{2 * epochs}: Task 2)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Test accuracy during sequential training (seed {snap['config']['seed']})")
    ax.grid(alpha=0.3)
    fig.legend(loc="center right", fontsize=8, frameon=False)
    save(fig, out)


def forgetting_per_seed(doc: dict, name: str) -> list:
    return [r["summary"][name]["forgetting"] for r in doc["per_seed"] if not r["summary"][name]["diverged"]]


def plot_forgetting_bar(snap: dict, doc: dict | None, out: Path) -> None:
    models = snap["models"]
    panels = 2 if doc else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2), squeeze=False)
    fig.subplots_adjust(left=0.02 + 0.14 / panels, right=0.98, bottom=0.08, top=0.92, wspace=0.25)
    ax = axes[0, 0]
    for i, name in enumerate(models):
        s = snap["summary"][name]
        if s["diverged"]:
            ax.text(i, 0.5, "diverged", ha="center", rotation=90, color=color(name))
            continue
        ax.bar(i - 0.2, s["t1_after_t1"], 0.38, color=color(name), alpha=0.45)
        ax.bar(i + 0.2, s["t1_after_t2"], 0.38, color=color(name))
        ax.annotate(f"-{s['forgetting']:.3f}", (i + 0.2, s["t1_after_t2"]), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=9)
    lo = min([snap["summary"][n]["t1_after_t2"] for n in models if not snap["summary"][n]["diverged"]] + [1])
    ax.set_ylim(max(0, lo - 0.08), 1.0)
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("Task 1 test accuracy")
    ax.set_title(f"Seed {snap['config']['seed']}: Task 1 before (light) / after (dark) Task 2", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if doc:
        ax = axes[0, 1]
        rng = np.random.default_rng(0)
        for i, name in enumerate(models):
            vals = forgetting_per_seed(doc, name)
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(vals)), vals, s=16, color=color(name), alpha=0.7)
            agg = doc["aggregate"]["models"][name]["forgetting"]
            if agg["ci95"]:
                ax.errorbar(i + 0.3, agg["mean"], yerr=[[agg["mean"] - agg["ci95"][0]], [agg["ci95"][1] - agg["mean"]]],
                            fmt="D", color="black", ms=5, capsize=4)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xticks(range(len(models)), models)
        ax.set_ylabel("forgetting (Task 1 accuracy lost)")
        ax.set_title(f"{len(doc['per_seed'])} seeds: each seed (dots), mean and 95% CI (black)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    save(fig, out)


def plot_forgetting_paired(snap: dict, doc: dict, out: Path) -> None:
    others = [n for n in snap["models"] if n != "relu"]
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.1, top=0.9)
    lines = []
    top = 0.0
    for name in others:
        pairs = [(r["summary"]["relu"]["forgetting"], r["summary"][name]["forgetting"]) for r in doc["per_seed"]
                 if not r["summary"]["relu"]["diverged"] and not r["summary"][name]["diverged"]]
        if not pairs:
            continue
        xs, ys = zip(*pairs)
        top = max(top, *xs, *ys)
        ax.scatter(xs, ys, color=color(name), s=28, label=name, zorder=3)
        p = doc["aggregate"]["paired_vs_relu"][name]
        lines.append(f"{name} vs relu: less on {p['wins']}, more on {p['losses']} of {p['n_pairs']}; "
                     f"sign test p={p['sign_test_p']:.3g}")
    top = top * 1.08 + 1e-3
    ax.plot([0, top], [0, top], color="0.4", lw=1, ls="--")
    ax.text(top * 0.97, top * 0.03, "below the diagonal:\nforgets less than ReLU", ha="right", fontsize=8, color="0.3")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel("ReLU forgetting (same seed)")
    ax.set_ylabel("model forgetting")
    ax.set_title("\n".join(lines), fontsize=9)
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.3)
    save(fig, out)


def tile(W: np.ndarray, side: int = 10) -> np.ndarray:
    """side x side 28x28 patches of W's first side**2 columns, one pixel of blank between them."""
    grid = np.full((side * 29 + 1, side * 29 + 1), np.nan, dtype=np.float32)
    for u in range(min(side * side, W.shape[1])):
        r, col = divmod(u, side)
        grid[1 + r * 29: 29 + r * 29, 1 + col * 29: 29 + col * 29] = W[:, u].reshape(28, 28)
    return grid


def plot_receptive_fields(snap: dict, out_dir: Path) -> list:
    """W1_<model>.png: units 0-99 of the first layer, the same units in every model (all started from
    the same weights); left the trained weights, right what training changed. One figure is drawn
    and re-filled per model."""
    def finite(a):                               # a diverged model's weights may hold inf or nan
        return np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)

    start = finite(snap["W1_init"])
    W0 = start[:, :100]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 5.2))
    fig.subplots_adjust(left=0.01, right=0.97, bottom=0.02, top=0.85, wspace=0.05)
    images = []
    for ax, title in zip(axes, ("trained weights", "change since initialisation")):
        images.append(ax.imshow(tile(W0), cmap="RdBu_r", interpolation="nearest"))
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
        fig.colorbar(images[-1], ax=ax, shrink=0.75, label="symmetric scale of this grid")
    written, notes = [], []
    for name in snap["models"]:
        full = finite(snap[f"W1_{name}"])
        moved = float(np.median(np.linalg.norm(full - start, axis=0) / np.linalg.norm(start, axis=0)))
        notes.append(f"{name}: a first-layer unit's weights moved by a median {moved:.1%} of their initial norm")
        W = full[:, :100]
        for im, data in zip(images, (W, W - W0)):
            vmax = float(np.abs(data).max()) or 1.0
            im.set_data(tile(data))
            im.set_clim(-vmax, vmax)
        fig.suptitle(f"{name}: first-layer receptive fields of hidden units 0-99 (same units, same start, "
                     f"in every model)\nmedian change of a unit's weights over all {full.shape[1]} units: "
                     f"{moved:.1%} of its initial norm", fontsize=11)
        save(fig, out_dir / f"W1_{name}.png", close=False, dpi=W1_DPI)
        written.append(f"W1_{name}.png")
    plt.close(fig)
    return written, notes


def selectivity(f1: np.ndarray, f2: np.ndarray) -> tuple:
    """(f1 - f2) / (f1 + f2) for units that fire at all; +1 = Task 1 only, -1 = Task 2 only."""
    alive = (f1 + f2) > 0
    return (f1[alive] - f2[alive]) / (f1[alive] + f2[alive]), int((~alive).sum())


def plot_winner_freq(snap: dict, out: Path) -> list:
    """Per model: every hidden unit's firing rate on Task 1 vs Task 2 inputs (layers by marker) and
    the histogram of its selectivity (layers by line style)."""
    models, depth = snap["models"], snap["config"]["depth"]
    fig, axes = plt.subplots(len(models), 2, figsize=(9.0, 3.0 * len(models)), squeeze=False)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.06, top=0.9, wspace=0.28, hspace=0.5)
    markers, styles = "o^sv", ["-", "--", ":", "-."]
    notes = []
    for r, name in enumerate(models):
        ax_s, ax_h = axes[r]
        shares = []
        for layer in range(1, depth + 1):
            key = f"freq_t1_{name}_layer{layer}"
            if key not in snap:                  # diverged: nothing measured
                ax_s.text(0.5, 0.5, f"{name}: diverged", ha="center", transform=ax_s.transAxes)
                break
            f1, f2 = snap[key], snap[f"freq_t2_{name}_layer{layer}"]
            ax_s.scatter(f1, f2, s=7, marker=markers[(layer - 1) % 4], color=color(name), alpha=0.45,
                         linewidths=0, label=f"layer {layer}")
            si, dead = selectivity(f1, f2)
            share = float(np.mean(np.abs(si) > SELECTIVE)) if si.size else 0.0
            ax_h.hist(si, bins=np.linspace(-1, 1, 41), histtype="step", lw=1.5, color=color(name),
                      ls=styles[(layer - 1) % 4], label=f"layer {layer}")
            shares.append(f"L{layer} {share:.0%}")
            notes.append(f"{name} layer {layer}: {share:.1%} of units task-selective (|sel|>{SELECTIVE}), "
                         f"{dead} silent on both tasks")
        top = ax_s.get_xlim()[1] if ax_s.collections else 1.0
        ax_s.plot([0, 1], [0, 1], color="0.4", lw=0.8, ls="--")
        ax_s.set_xlim(0, min(1.0, top))
        ax_s.set_ylim(0, min(1.0, top))
        ax_s.set_xlabel("fraction of Task 1 inputs it fires on", fontsize=8)
        ax_s.set_ylabel("... of Task 2 inputs", fontsize=8)
        ax_s.set_title(f"{name}: per-unit firing rate", fontsize=9)
        ax_h.set_xlim(-1, 1)
        ax_h.set_xlabel("selectivity (f1-f2)/(f1+f2): +1 Task 1 only, -1 Task 2 only", fontsize=8)
        ax_h.set_ylabel("units", fontsize=8)
        ax_h.set_title(f"{name}: units with |selectivity|>{SELECTIVE}: " + ", ".join(shares), fontsize=9)
        for ax in (ax_s, ax_h):
            ax.legend(fontsize=7, loc="upper left", frameon=False)
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.tick_params(labelsize=7)
    fig.suptitle("Do hidden units specialise by task? (diagonal = fires equally on both)", fontsize=11)
    save(fig, out)
    return notes


def snapshot_parser(what: str) -> argparse.ArgumentParser:
    """The command line both figure scripts share: they read a snapshot file and train nothing."""
    p = argparse.ArgumentParser(description=f"{what} from the snapshots of compete_to_compute.py "
                                            "(nothing is trained).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--snapshots", default="viz/snapshots.npz", help="snapshot file written by compete_to_compute.py")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = snapshot_parser("Draw viz/*.png")
    p.add_argument("--results", default="results.json", help="results file; its other seeds are drawn if present")
    p.add_argument("--out-dir", default="viz", help="folder for the PNG files")
    return p


def run_reporting_errors(draw, out: Path, out_flag: str) -> int:
    """Run a script's drawing step; a bad snapshot or an unwritable output becomes one line, exit 1."""
    try:
        draw()
    except SnapshotError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename or out}: cannot write ({e.strerror}); choose another {out_flag}", file=sys.stderr)
        return 1
    return 0


def main(argv: list | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out_dir)
    report = {}

    def draw():
        snap = read_snapshots(Path(args.snapshots))
        doc = read_results(Path(args.results), snap)
        report["multi_seed"] = doc is not None
        plot_training_curves(snap, out / "training_curves.png")
        plot_forgetting_bar(snap, doc, out / "forgetting_bar.png")
        written = ["training_curves.png", "forgetting_bar.png"]
        if doc and "relu" in snap["models"] and len(snap["models"]) > 1:
            plot_forgetting_paired(snap, doc, out / "forgetting_paired.png")
            written.append("forgetting_paired.png")
        fields, moved = plot_receptive_fields(snap, out)
        written += fields
        report["notes"] = moved + plot_winner_freq(snap, out / "winner_freq.png")
        report["written"] = written + ["winner_freq.png"]

    code = run_reporting_errors(draw, out, "--out-dir")
    if code == 0:
        print(f"wrote {', '.join(report['written'])} to {out}/"
              + ("" if report["multi_seed"] else " (single seed: no multi-seed panels)"))
        for note in report["notes"]:
            print("  " + note)
    return code


if __name__ == "__main__":
    sys.exit(main())
