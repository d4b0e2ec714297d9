"""Animate the training-time forgetting curve from viz/snapshots.npz into compete_to_compute.gif.

    python make_compete_to_compute_gif.py       # about a second; nothing is trained

One frame per evaluation point (before training, then after every epoch), revealing Task 1 (solid)
and Task 2 (dashed) test accuracy for every model, then one held frame with each model's forgetting.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from compete_to_compute import read_snapshots, write_atomic
from visualize_compete_to_compute import color, plt, run_reporting_errors, snapshot_parser

FRAME_MS, HOLD_MS = 450, 3500   # each evaluation point, then the final verdict
SIZE_IN, DPI = (6.4, 3.6), 80


def render_frames(snap: dict) -> list:
    """One RGB array per evaluation point plus the final verdict frame; the figure is drawn once and
    its lines are refilled, which keeps a frame at a few milliseconds."""
    epochs, x = snap["config"]["epochs"], snap["epoch"]
    fig, ax = plt.subplots(figsize=SIZE_IN, dpi=DPI)
    fig.subplots_adjust(left=0.1, right=0.78, bottom=0.14, top=0.88)
    lines = []
    for name in snap["models"]:
        t1, = ax.plot([], [], "-o", ms=3, color=color(name), label=f"{name}: Task 1")
        t2, = ax.plot([], [], "--", color=color(name), alpha=0.8, label=f"{name}: Task 2")
        lines.append((name, t1, t2))
    ax.axvline(epochs, color="0.3", lw=1, ls=":")
    ax.set_xlim(-0.3, x[-1] + 0.3)
    ax.set_ylim(0, 1.02)
    ax.set_xticks(x)
    ax.set_xlabel("epochs trained (Task 1, then Task 2)", fontsize=9)
    ax.set_ylabel("test accuracy", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    fig.legend(loc="center right", fontsize=7, frameon=False)
    title = ax.set_title("", fontsize=10)
    verdict = ax.text(0.98, 0.04, "", transform=ax.transAxes, ha="right", va="bottom", fontsize=8, ma="left",
                      bbox={"facecolor": "white", "edgecolor": "0.6", "alpha": 0.9})

    def grab() -> np.ndarray:
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()

    frames = []
    for i in range(len(x)):
        for name, t1, t2 in lines:
            t1.set_data(x[: i + 1], snap[f"acc_t1_{name}"][: i + 1])
            t2.set_data(x[: i + 1], snap[f"acc_t2_{name}"][: i + 1])
        phase = "before training" if i == 0 else (f"training Task 1, epoch {i}" if i <= epochs
                                                  else f"training Task 2, epoch {i}")
        title.set_text(f"Seed {snap['config']['seed']}: {phase} of {x[-1]}")
        frames.append(grab())
    summary = snap["summary"]
    verdict.set_text("forgetting (Task 1 acc lost)\n" + "\n".join(
        f"{n}: {'diverged' if summary[n]['diverged'] else format(summary[n]['forgetting'], '.3f')}"
        for n in snap["models"]))
    title.set_text(f"Seed {snap['config']['seed']}: after both tasks")
    frames.append(grab())
    plt.close(fig)
    return frames


def build_parser():
    p = snapshot_parser("Animate the forgetting curve")
    p.add_argument("--out", default="compete_to_compute.gif", help="GIF to write")
    return p


def main(argv: list | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    buf, frames = io.BytesIO(), []

    def draw():
        frames.extend(render_frames(read_snapshots(Path(args.snapshots))))
        durations = [FRAME_MS] * (len(frames) - 1) + [HOLD_MS]
        iio.imwrite(buf, np.stack(frames), extension=".gif", duration=durations, loop=0)
        write_atomic(out, lambda f: f.write(buf.getvalue()))

    code = run_reporting_errors(draw, out, "--out")
    if code == 0:
        print(f"wrote {out}: {len(frames)} frames ({len(frames) - 1} evaluation points + 1 held), "
              f"{len(buf.getvalue()) / 1024:.0f} KB")
    return code


if __name__ == "__main__":
    sys.exit(main())
