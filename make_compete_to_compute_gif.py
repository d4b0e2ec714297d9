"""Animate the training curves of viz/snapshots.npz into compete_to_compute.gif.

    python make_compete_to_compute_gif.py       # a few seconds; nothing is trained

One frame per evaluation point (before training, then after every epoch) revealing every task's test
accuracy for every variant, drawn exactly like viz/training_curves.png (same colours, line styles,
markers, legends and zoom panel, at the same pixels per point), then one held frame with each
variant's ACC and forgetting. Works for any number of tasks and variants.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from visualize_compete_to_compute import (DPI, CurvePlot, plt, prepare_output_file, read_snapshots,
                                          run_reporting_errors, seed_of, snapshot_parser, write_bytes)

FRAME_MS, HOLD_MS = 450, 3500   # each evaluation point, then the final verdict
GIF_DPI = DPI                   # the same pixels per point as the PNGs: legends exactly as large
PALETTE = 255                   # colours shared by all frames


def frame_title(snap: dict, p: int) -> str:
    """What evaluation point p shows: "before training - seed 0", "epoch 3 of 10 (task 1: digits 0-4) - seed 0"."""
    seed = f" \u2014 seed {seed_of(snap)}"
    if p == 0:
        return "before training" + seed
    last = snap["P"] - 1
    if snap["joint"]:
        return f"epoch {p} of {last} (all {snap['T']} tasks jointly)" + seed
    task = next(i for i, e in enumerate(snap["phase_ends"]) if p <= e)
    return f"epoch {p} of {last} (task {task + 1}: {snap['task_labels'][task]})" + seed


def final_title(snap: dict) -> str:
    """The held last frame's title: "after training both tasks - seed 0"."""
    T = snap["T"]
    how = ("joint training" if snap["joint"] else "training" if T == 1 else "training both tasks" if T == 2
           else f"training all {T} tasks")
    return f"after {how} \u2014 seed {seed_of(snap)}"


def render_frames(snap: dict, dpi: int = GIF_DPI) -> list:
    """One RGB array per evaluation point plus the held verdict frame (the legend then gives each
    variant's ACC and forgetting). The figure is laid out once, its static part rendered once, and each
    frame only redraws the curves, the title and the legend on top of it."""
    plot = CurvePlot(snap, dpi=dpi, verdict=True)
    fig, canvas = plot.fig, plot.fig.canvas
    plot.show(snap["P"] - 1)
    plot.title.set_text(final_title(snap))
    canvas.draw()                                # lay out once, with the longest legend and title
    fig.set_layout_engine("none")
    moving = sorted((ln for ln, *_ in plot.lines), key=lambda a: a.get_zorder()) + [plot.title, plot.legend]
    for artist in moving:
        artist.set_animated(True)
    canvas.draw()                                # the static part only
    background = canvas.copy_from_bbox(fig.bbox)

    def frame(title: str, verdict: bool) -> np.ndarray:
        canvas.restore_region(background)
        plot.title.set_text(title)
        plot.set_verdict(verdict)
        for artist in moving:
            fig.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    frames = []
    for p in range(snap["P"]):
        plot.show(p)
        frames.append(frame(frame_title(snap, p), False))
    frames.append(frame(final_title(snap), True))
    plt.close(fig)
    return frames


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.reshape(-1, 3).astype(np.int32)
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def _unpack(keys: np.ndarray) -> np.ndarray:
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)


def shared_colours(frames: list, n: int = PALETTE) -> list:
    """Map every frame onto one set of at most n colours (the most frequent of the first and last frames,
    which between them hold every colour drawn; any other goes to its nearest). A pixel that does not
    change between frames then keeps exactly its colour, so the GIF encoder stores only what changed:
    a third of the size of quantising every frame on its own."""
    keys, counts = np.unique(np.concatenate([_pack(frames[0]), _pack(frames[-1])]), return_counts=True)
    palette = _unpack(keys[np.argsort(counts)[::-1][:n]]).astype(np.int32)
    lookup = np.full(1 << 24, -1, dtype=np.int16)         # colour key -> palette index, filled as met
    out = []
    for frame in frames:
        packed = _pack(frame)
        new = np.unique(packed[lookup[packed] < 0])
        if new.size:
            d = ((_unpack(new).astype(np.int32)[:, None, :] - palette[None]) ** 2).sum(axis=2)
            lookup[new] = d.argmin(axis=1)
        out.append(palette[lookup[packed]].astype(np.uint8).reshape(frame.shape))
    return out


def encode(frames: list) -> bytes:
    buf = io.BytesIO()
    durations = [FRAME_MS] * (len(frames) - 1) + [HOLD_MS]
    iio.imwrite(buf, np.stack(shared_colours(frames)), extension=".gif", duration=durations, loop=0)
    return buf.getvalue()


def build_parser():
    p = snapshot_parser("Animate the training curves")
    p.add_argument("--out", default="compete_to_compute.gif", help="GIF to write")
    return p


def main(argv: list | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.suffix.lower() != ".gif":
        parser.error(f"argument --out: writes a GIF, so the file name must end in .gif, got {args.out!r}")
    done = {}

    def draw():
        snap = read_snapshots(Path(args.snapshots))
        prepare_output_file(out)                 # before the rendering: fail fast
        frames = render_frames(snap)
        data = encode(frames)
        write_bytes(out, data)
        done.update(frames=len(frames), size=len(data))

    code = run_reporting_errors(draw, out, "--out")
    if code == 0:
        print(f"wrote {out}: {done['frames']} frames ({done['frames'] - 1} evaluation points + 1 held), "
              f"{done['size'] / 1024:.0f} KB")
    return code


if __name__ == "__main__":
    sys.exit(main())
