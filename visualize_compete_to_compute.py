"""Figures of the Compete to Compute experiment, drawn from viz/snapshots.npz (and results.json).

    python visualize_compete_to_compute.py      # writes viz/*.png in a few seconds

Nothing is trained here. The snapshot (schema 2) holds the headline seed of a run of any number of tasks
T and variants V: test accuracy of every task at every evaluation point, the accuracy matrix R, the
first-layer weights and how often each hidden unit fires on each task. results.json adds the other seeds
when the run had several and comes from the same configuration.

Figures (one colour per variant spec, the same in every figure, in the GIF and in the study figures;
see variant_color):
  training_curves.png    every task's test accuracy at every evaluation point, plus a zoom on the tasks
                         learned earlier, after the first switch
  accuracy_matrix.png    R per variant: accuracy on task j (columns) after training task i (rows)
  acc_forgetting.png     ACC and forgetting per variant: every seed, the mean and its 95 % interval
  forgetting_paired.png  (2 or more seeds) each variant's forgetting against the baseline's, seed by seed
  W1_<variant>.png       first-layer receptive fields of units 0-99, trained and change since init
  winner_freq.png        how often each hidden unit fires on each task, and how task-selective it is
Figures this script owns that the snapshot no longer calls for (W1 of other variants, retired names)
are removed, so the output folder never mixes two runs.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import matplotlib.transforms as mtransforms  # noqa: E402
import numpy as np  # noqa: E402

from compete_to_compute import (ACTIVATIONS, METHOD_KEYS, SELECTIVE, VARIANT_KEYS,  # noqa: E402
                                parse_variant, selectivity_index, write_atomic)

SNAPSHOT_SCHEMA = 2
MAKE = "python compete_to_compute.py --seed 0"
# One colour per variant spec, the same in every figure, the GIF and the study figures: its activation's
# colour (Okabe-Ito, colour-blind safe), black for sleep replay. A spec with keys away from their defaults
# (lwta:k=4, sdm:k=1, relu:ewc=100) gets one of four shades of that colour, chosen by its keys alone, so it is
# the same wherever it is drawn; the shades differ from the base colour and from each other by a CIELAB
# distance of at least 13 (tests/test_figures.py measures it). Should two specs of one activation drawn
# together choose the same shade, colors() moves the later one (in spec order) to the next free shade.
ACTIVATION_COLOURS = {"relu": "#D55E00", "lwta": "#0072B2", "topk": "#009E73", "maxout": "#E69F00",
                      "kwinners": "#56B4E9", "sdm": "#CC79A7"}
SLEEP_COLOUR, OTHER_COLOUR = "#000000", "#595959"
SHADES = ((-0.3, 0.0), (0.35, 0.0), (-0.05, 0.6), (-0.55, 0.4))   # (towards black < 0 < white, towards grey)
SLEEP_SHADES = (0.2, 0.38, 0.55, 0.7)                              # black's shades: greys
SHADE_SALT = "200:"     # part of the hash that picks a shade: of the salts 0-399, one that gives the variants of
#                         every set this project draws together colours at least 17 apart (tests/test_figures.py)
DPI = 100
LEGEND_FONT = 9
LEGEND_CHARS = 28        # a legend's variant names are broken after a colon beyond this many characters
W1_UNITS = 100           # receptive fields of units 0..99 of the first layer
TASK_STYLES = (("-", "o"), ("--", "s"), (":", "^"))      # line style and marker per task (T <= 3)
FIGURES = ("training_curves.png", "accuracy_matrix.png", "acc_forgetting.png", "forgetting_paired.png",
           "winner_freq.png", "submasks.png")
RETIRED = ("forgetting_bar.png",)                        # names earlier versions wrote
ZIP_MAGIC = b"PK\x03\x04"


class SnapshotError(Exception):
    """An input (snapshot or results file) the figure scripts cannot use; the message names the user's
    path, says what is wrong and how to make a good one."""


class OutputProblem(Exception):
    """An output that cannot be written: the user's path and the reason."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


# ============================================================================ names and colours
def slug(variant: str) -> str:
    """A file-name-safe form of a variant spec: "lwta:k=4" -> "lwta_k=4", "topk:k=10%" -> "topk_k=10pct"."""
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", variant.replace("%", "pct"))


def shade(colour: str, amount: float, grey: float = 0.0) -> str:
    """`colour` moved towards its own grey by `grey`, then towards white (amount > 0) or black (< 0)."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    mean = sum(rgb) / 3
    rgb = [c + (mean - c) * grey for c in rgb]
    target = 255 if amount > 0 else 0
    return "#" + "".join(f"{round(c + (target - c) * abs(amount)):02X}" for c in rgb)


def changed_keys(spec: str) -> list:
    """The keys a spec sets away from their defaults (lwta:k=2 is lwta), as key=value strings."""
    try:
        variant = parse_variant(spec)
    except ValueError:                          # a spec of another version of the program: as written
        return spec.split(":")[1:]
    keys = {**ACTIVATIONS[variant.activation].keys, **VARIANT_KEYS, **METHOD_KEYS}
    defaults = {k: d for k, (_, d, _) in keys.items()} | ACTIVATIONS[variant.activation].variant_defaults
    return [f"{k}={v}" for k, v in variant.settings().items() if k in defaults and v != defaults[k]]


def colour_family(spec: str) -> tuple:
    """(base colour, the keys that choose its shade): sleep variants are black whatever their activation."""
    keys = changed_keys(spec)
    if "sleep=1" in keys:
        return SLEEP_COLOUR, [k for k in keys if not k.startswith(("sleep", "bias"))]
    return ACTIVATION_COLOURS.get(spec.split(":")[0], OTHER_COLOUR), keys


def shade_choice(keys: list) -> int:
    """The shade a spec's keys choose (0-3), whatever order they were written in."""
    return zlib.crc32((SHADE_SALT + ":".join(sorted(keys))).encode()) % len(SHADES)


def nth_shade(base: str, i: int) -> str:
    if base == SLEEP_COLOUR:
        return shade(base, SLEEP_SHADES[i])
    return shade(base, *SHADES[i])


def variant_color(spec: str) -> str:
    """The colour of a variant spec, the same wherever it is drawn."""
    base, keys = colour_family(spec)
    return nth_shade(base, shade_choice(keys)) if keys else base


def text_color(spec: str, colour: str | None = None) -> str:
    """The variant's colour for text: a light shade is unreadable as text on white, so it is darkened."""
    c = colour or variant_color(spec)
    light = sum(int(c[i:i + 2], 16) for i in (1, 3, 5)) > 3 * 170
    return shade(c, -0.5) if light else c


def colors(variants) -> dict:
    """Each variant's colour (variant_color), except that two specs of one activation drawn together never
    share one: the later in spec order takes the next shade left free (up to four shades per activation)."""
    out, taken = {}, {}
    for v in sorted(dict.fromkeys(variants)):
        base, keys = colour_family(v)
        if not keys:
            out[v] = base
            continue
        used = taken.setdefault(base, set())
        first = shade_choice(keys)
        i = next((j % len(SHADES) for j in range(first, first + len(SHADES)) if j % len(SHADES) not in used), first)
        used.add(i)
        out[v] = nth_shade(base, i)
    return {v: out[v] for v in variants}


def w1_file(variant: str) -> str:
    return f"W1_{slug(variant)}.png"


# ============================================================================ reading
def read_snapshots(path) -> dict:
    """Load a schema-2 snapshot written by compete_to_compute.py, checked to be whole and consistent.

    Returns a dict: path, config, variants, task_labels, epoch (P,), phase_ends, joint, T, P, E, and per
    variant (dicts keyed by the spec string) curves (P, T), R (rows, T), W1_init and W1 (784, hidden,
    float32, may hold inf/nan), freq (T, L, hidden; float64) and summary. Raises SnapshotError with a one-line
    message naming `path`."""
    path = Path(path)
    fix = f"make it with: {MAKE}"
    if path.is_dir():
        raise SnapshotError(f"{path}: is a folder, not a snapshot file; give --snapshots the .npz file, or {fix}")
    if not path.exists():
        raise SnapshotError(f"{path}: not found; {fix}")
    try:
        with open(path, "rb") as f:
            head = f.read(len(ZIP_MAGIC))
    except OSError as e:
        raise SnapshotError(f"{path}: cannot read ({e.strerror or e}); check its permissions, or {fix}") from None
    if len(head) < len(ZIP_MAGIC) and ZIP_MAGIC.startswith(head):
        raise SnapshotError(f"{path}: unreadable or truncated (only {len(head)} bytes); {fix}")
    if head != ZIP_MAGIC:
        raise SnapshotError(f"{path}: not a snapshot file written by compete_to_compute.py (not an .npz "
                            f"archive); give --snapshots the viz/snapshots.npz of a run, or {fix}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "schema_version" not in z.files:
                raise SnapshotError(f"{path}: not a snapshot file written by compete_to_compute.py (no "
                                    f"schema_version in it); {fix}")
            version = int(z["schema_version"])
            if version == 1:
                raise SnapshotError(f"{path}: written with snapshot schema 1 by an older version of "
                                    f"compete_to_compute.py (two tasks, three fixed models); these scripts read "
                                    f"schema {SNAPSHOT_SCHEMA}; re-run: {MAKE}")
            if version != SNAPSHOT_SCHEMA:
                raise SnapshotError(f"{path}: written with snapshot schema {version}, these scripts read schema "
                                    f"{SNAPSHOT_SCHEMA}; update the figure scripts, or re-run: {MAKE}")
            data = {k: z[k] for k in z.files}
    except SnapshotError:
        raise
    except ValueError as e:
        if "pickle" in str(e):
            raise SnapshotError(f"{path}: not a snapshot file written by compete_to_compute.py (it holds "
                                f"Python objects); {fix}") from None
        raise SnapshotError(f"{path}: unreadable or truncated ({e}); {fix}") from None
    except (OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zlib.error) as e:
        raise SnapshotError(f"{path}: unreadable or truncated ({type(e).__name__}: {e}); {fix}") from None
    try:
        return _unpack(data)
    except (KeyError, ValueError, TypeError, IndexError) as e:
        what = f"no array {e}" if isinstance(e, KeyError) else str(e)
        raise SnapshotError(f"{path}: incomplete or inconsistent snapshot ({what}); re-run: {MAKE}") from None


def _unpack(data: dict) -> dict:
    config = json.loads(str(data["config_json"]))
    summary = json.loads(str(data["summary_json"]))
    variants = [str(v) for v in np.atleast_1d(data["variants"])]
    labels = [str(t) for t in np.atleast_1d(data["task_labels"])]
    epoch = np.asarray(data["epoch"]).astype(int)
    phase_ends = [int(p) for p in np.atleast_1d(data["phase_ends"])]
    T, P = len(labels), len(epoch)
    if not variants or T < 1 or P < 2 or not phase_ends:
        raise ValueError(f"{len(variants)} variants, {T} tasks, {P} evaluation points, {len(phase_ends)} phases")
    if phase_ends[-1] != P - 1 or any(b <= a for a, b in zip(phase_ends, phase_ends[1:])):
        raise ValueError(f"phase_ends {phase_ends} do not fit {P} evaluation points")
    snap = {"config": config, "variants": variants, "task_labels": labels, "epoch": epoch,
            "phase_ends": phase_ends, "T": T, "P": P, "joint": bool(config.get("joint")) or len(phase_ends) < T,
            "E": phase_ends[0], "summary": {}, "curves": {}, "R": {}, "W1_init": {}, "W1": {}, "freq": {},
            "submasks": json.loads(str(data["submasks_json"])) if "submasks_json" in data else None}
    for v in variants:
        curve = np.asarray(data[f"curve_{v}"], dtype=np.float64)
        R = np.asarray(data[f"R_{v}"], dtype=np.float64)
        W0 = np.asarray(data[f"W1_init_{v}"], dtype=np.float32)
        W = np.asarray(data[f"W1_{v}"], dtype=np.float32)
        freq = np.asarray(data[f"freq_{v}"], dtype=np.float64)
        if curve.shape != (P, T):
            raise ValueError(f"curve_{v} has shape {curve.shape}, expected {(P, T)}")
        if R.shape != (len(phase_ends), T):
            raise ValueError(f"R_{v} has shape {R.shape}, expected {(len(phase_ends), T)}")
        if W.ndim != 2 or W.shape != W0.shape or W.shape[0] != 784:
            raise ValueError(f"W1_{v} / W1_init_{v} have shapes {W.shape} / {W0.shape}, expected (784, hidden)")
        if freq.ndim != 3 or freq.shape[0] != T or freq.shape[2] < 1:
            raise ValueError(f"freq_{v} has shape {freq.shape}, expected ({T}, layers, hidden)")
        if v not in summary:
            raise ValueError(f"summary_json has no entry for {v}")
        snap["curves"][v], snap["R"][v], snap["W1_init"][v], snap["W1"][v] = curve, R, W0, W
        snap["freq"][v], snap["summary"][v] = freq, summary[v]
    return snap


def _config_diff(a: dict, b: dict) -> list:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def read_results(path, snap: dict, note=print) -> dict | None:
    """results.json, if it exists and comes from the same run (configuration) as the snapshot; else None
    with a note. A file that is not valid JSON or not a results file raises SnapshotError naming it."""
    path = Path(path)
    fix = "remake it with: python compete_to_compute.py --seed 0 --n-seeds 10, or give --results another file"
    if not path.exists():
        note(f"note: {path} not found: only the snapshot's seed {snap['config'].get('seed')} is drawn")
        return None
    if path.is_dir():
        raise SnapshotError(f"{path}: is a folder, not a results file; {fix}")
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise SnapshotError(f"{path}: cannot read ({e.strerror or e}); {fix}") from None
    except ValueError as e:            # JSONDecodeError and UnicodeDecodeError
        raise SnapshotError(f"{path}: unreadable, not valid JSON ({e}); {fix}") from None
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise SnapshotError(f"{path}: not a results file written by compete_to_compute.py; {fix}")
    if doc["schema_version"] != SNAPSHOT_SCHEMA:
        note(f"note: {path} was written with schema {doc['schema_version']}, the snapshot with schema "
             f"{SNAPSHOT_SCHEMA}: not mixed in (re-run compete_to_compute.py to remake both)")
        return None
    if doc.get("config") != snap["config"]:
        differ = _config_diff(doc.get("config") or {}, snap["config"])
        note(f"note: {path} comes from another run than the snapshot (config differs in: "
             f"{', '.join(differ)}): not mixed in")
        return None
    try:
        for r in doc["per_seed"]:
            for v in snap["variants"]:
                r["summary"][v]["failed"]
        if doc["aggregate"] is not None:
            for v in snap["variants"]:
                doc["aggregate"]["variants"][v]["acc"]
    except (KeyError, TypeError) as e:
        raise SnapshotError(f"{path}: incomplete results file (no {e}); {fix}") from None
    return doc


def n_seeds(doc: dict | None) -> int:
    return len(doc["per_seed"]) if doc else 1


# ============================================================================ writing
def write_bytes(path: Path, data: bytes) -> None:
    """Write atomically; any failure becomes OutputProblem naming the user's path (never a temp file)."""
    try:
        write_atomic(path, lambda f: f.write(data))
    except OSError as e:
        raise OutputProblem(path, f"cannot write ({e.strerror or e})") from None
    except Exception as e:             # compete_to_compute's own error for an unwritable output
        if type(e).__name__ != "OutputError":
            raise
        m = re.search(r"\(([^()]*)\)", str(e))
        raise OutputProblem(path, f"cannot write ({m.group(1) if m else e})") from None


def save(fig, path: Path, dpi: int = DPI) -> None:
    """Render to memory, close, then write atomically: an interrupted run never leaves half a PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def prepare_output_dir(out: Path) -> None:
    """Before drawing: the output folder exists (or can be made) and a file can be written in it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputProblem(out, f"cannot write ({e.strerror or e})") from None
    if not out.is_dir():
        raise OutputProblem(out, "cannot write (not a folder)")
    probe = out / ".visualize_write_test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputProblem(out, f"cannot write ({e.strerror or e})") from None


def prepare_output_file(path: Path) -> None:
    """Before drawing: `path` can become a file (it is not a folder, and its folder exists or can be made)."""
    if path.is_dir():
        raise OutputProblem(path, "cannot write (it is a folder; give the path of a file)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputProblem(path, f"cannot write ({e.strerror or e})") from None


def remove_stale(out: Path, written: list) -> list:
    """Delete figures this script owns that this snapshot did not produce (W1 of other variants,
    a paired figure of an earlier multi-seed run, retired names); return their names."""
    owned = set(out.glob("W1_*.png")) | {out / n for n in FIGURES + RETIRED}
    removed = []
    for p in sorted(owned):
        if p.name not in written and p.is_file():
            try:
                p.unlink()
            except OSError as e:
                raise OutputProblem(p, f"cannot remove a stale figure ({e.strerror or e})") from None
            removed.append(p.name)
    return removed


# ============================================================================ shared pieces
def seed_of(snap: dict):
    return snap["config"].get("seed", 0)


def failure_text(failed: dict, snap: dict) -> str:
    """Where a variant failed, its epoch counted within the task (the record counts from the start)."""
    where = f"task {failed['task']}, " if failed.get("task") else ""
    e, epochs = failed.get("epoch"), snap["config"].get("epochs")
    at = f"epoch {(e - 1) % epochs + 1} of {epochs}" if e and epochs else f"epoch {e}"
    return f"{failed.get('reason', 'failed')}: {where}{at}"


def phase_spans(snap: dict) -> list:
    """(first point, last point) of each training phase on the evaluation-point axis."""
    ends = snap["phase_ends"]
    return [(0 if i == 0 else ends[i - 1], e) for i, e in enumerate(ends)]


def epoch_range(a: int, b: int) -> str:
    return f"{a}" if a == b else f"{a}-{b}"


def epochs_text(a: int, b: int) -> str:
    """"epoch 3" or "epochs 1-5": the epochs a to b (counted from 1)."""
    return f"epoch {a}" if a == b else f"epochs {a}-{b}"


def schedule_text(snap: dict) -> str:
    """Plain words for what each epoch trained: "1-5: digits 0-4, 6-10: digits 5-9"."""
    labels = snap["task_labels"]
    if snap["joint"]:
        what = ", ".join(labels) if len(labels) <= 3 else f"all {len(labels)} tasks"
        return f"{epoch_range(1, snap['P'] - 1)}: {what} jointly"
    return ", ".join(f"{epoch_range(a + 1, b)}: {lab}" for (a, b), lab in zip(phase_spans(snap), labels))


def x_ticks(ax, snap: dict, every_point_up_to: int = 25, most: int = 12) -> None:
    P = snap["P"]
    if P <= every_point_up_to:
        ax.set_xticks(range(P))
    else:
        ticks = [0] + list(snap["phase_ends"])
        ax.set_xticks(ticks if len(ticks) <= most else ticks[::math.ceil(len(ticks) / most)])
    ax.set_xlim(-0.4, P - 1 + 0.4)


def earlier_mean(curve: np.ndarray, snap: dict) -> tuple:
    """From the first switch on: mean accuracy over the tasks trained before the current one (at the switch
    point itself, task 1)."""
    ends = snap["phase_ends"]
    xs = np.arange(ends[0], snap["P"])
    ys = []
    for p in xs:
        phase = next(i for i, e in enumerate(ends) if p <= e)
        ys.append(float(np.mean(curve[p, :max(1, phase)])))
    return xs, np.array(ys)


def wrapped(text: str, width_in: float, fontsize: float) -> str:
    """Wrap each line of a title to the figure's width (about 0.55 em per character)."""
    chars = max(20, int(width_in * 72 / (fontsize * 0.56)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def spec_lines(spec: str, chars: int) -> str:
    """A variant spec broken after its colons into lines of at most `chars` characters (a key longer than
    that keeps a line of its own), so a long spec fits a panel title, a tick label or a legend."""
    parts = spec.split(":")
    lines = [parts[0]]
    for i, part in enumerate(parts[1:], start=2):
        more = 1 if i < len(parts) else 0              # a line followed by another ends in its colon
        if len(lines[-1]) + 1 + len(part) + more > chars:
            lines[-1] += ":"
            lines.append(part)
        else:
            lines[-1] += ":" + part
    return "\n".join(lines)


def chars_in(width_in: float, fontsize: float) -> int:
    """About how many characters of a spec fit `width_in` inches at `fontsize` points."""
    return max(10, int(width_in * 72 / (fontsize * 0.6)))


def fitted_ylim(values, floor=0.0, ceil=1.0) -> tuple:
    v = np.asarray([x for x in values if np.isfinite(x)])
    if not v.size:
        return floor, ceil
    lo, hi = float(v.min()), float(v.max())
    pad = max(0.01, 0.1 * (hi - lo))
    return max(floor, lo - pad), min(ceil + 0.005, hi + pad)


# ============================================================================ 1. training curves
class CurvePlot:
    """The training-curve figure, shared by training_curves.png and every GIF frame: built once with
    every line empty; show(p) reveals the points up to evaluation point p.

    T <= 3: one panel with every task (line style and marker per task) plus a zoom on the earlier tasks
    from the end of their training on. T > 3: one panel per task plus a zoom on the mean accuracy of the
    tasks trained before the current one. T = 1 or joint training: no switch, no zoom."""

    def __init__(self, snap: dict, dpi: int = DPI, verdict: bool = False):
        self.snap = snap
        T, P = snap["T"], snap["P"]
        col = colors(snap["variants"])
        x = snap["epoch"].astype(float)
        zoom = not snap["joint"] and len(snap["phase_ends"]) > 1
        self.lines = []          # (artist, x, y, shown from point)
        self.grid = T > 3
        if not self.grid:
            if zoom:
                fig, (ax, az) = plt.subplots(1, 2, figsize=(11.5, 4.6), dpi=dpi, layout="constrained",
                                             gridspec_kw={"width_ratios": [2.1, 1]})
            else:
                fig, ax = plt.subplots(figsize=(8.6, 4.6), dpi=dpi, layout="constrained")
                az = None
            task_axes = [ax] * T
        else:
            ncols = 3 if T + zoom <= 9 else 4
            nrows = math.ceil((T + zoom) / ncols)
            panel = 3.3 if ncols == 3 else 2.75
            self.panel_in = panel
            fig, axes = plt.subplots(nrows, ncols, figsize=(panel * ncols + 2.0, 2.55 * nrows + 0.6), dpi=dpi,
                                     layout="constrained", squeeze=False)
            flat = list(axes.ravel())
            task_axes = flat[:T]
            az = flat[T] if zoom else None
            for extra in flat[T + zoom:]:
                extra.set_axis_off()
        self.fig, self.zoom_ax = fig, az

        spans = phase_spans(snap)
        for j, ax in enumerate(dict.fromkeys(task_axes)):
            for i, (a, b) in enumerate(spans):
                if self.grid and not snap["joint"]:
                    if i == j:
                        ax.axvspan(a, b, color="0.9", lw=0, zorder=0)
                elif i % 2 == 1:
                    ax.axvspan(a, b, color="0.93", lw=0, zorder=0)
            for a, _ in spans[1:]:
                ax.axvline(a, color="0.35", lw=1, ls=":", zorder=1)
            ax.set_ylim(0, 1.02)
            x_ticks(ax, snap, every_point_up_to=11 if self.grid else 25, most=7 if self.grid else 12)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=9)
        if not self.grid:
            ax = task_axes[0]
            ax.set_ylabel("test accuracy", fontsize=10)
            ax.set_xlabel(f"epochs trained (0 = before training; {schedule_text(snap)})", fontsize=10)
            self._label_phases(ax, spans)
        else:
            for j, ax in enumerate(task_axes):
                a, b = spans[min(j, len(spans) - 1)]
                when = "" if snap["joint"] else f" ({epochs_text(a + 1, b)})".replace(" ", "\u00a0")   # one line
                ax.set_title(wrapped(f"task {j + 1}: {snap['task_labels'][j]}{when}", panel - 0.35, 9.5),
                             fontsize=9.5)
            for ax in task_axes[::ncols]:
                ax.set_ylabel("test accuracy", fontsize=9.5)
            fig.supxlabel("epochs trained (0 = before training; " + (
                f"{schedule_text(snap)})" if snap["joint"] else "shaded: the panel's task is trained)"), fontsize=10)

        for i, v in enumerate(snap["variants"]):
            curve = snap["curves"][v]
            for j in range(T):
                ls, mk = TASK_STYLES[j] if not self.grid else ("-", "o")
                ln, = task_axes[j].plot([], [], ls=ls, marker=mk, ms=3.5 if P <= 30 else 2, lw=1.6,
                                        color=col[v], zorder=3)
                self.lines.append((ln, x, curve[:, j], 0))
            failed = snap["summary"][v].get("failed")
            if failed and failed.get("reason") == "diverged":       # its curves end there: mark the end
                finite = np.flatnonzero(np.isfinite(curve).any(axis=1))
                q = int(finite[-1]) if finite.size else 0
                start = int(failed.get("epoch") or q)
                for j in range(T):
                    if np.isfinite(curve[q, j]):
                        mk, = task_axes[j].plot([], [], "X", ms=9, color=col[v], mec="black", mew=0.6, zorder=4)
                        self.lines.append((mk, np.array([q]), np.array([curve[q, j]]), start))

        if az is not None:
            self._zoom(az, snap, col, x)

        # One legend, outside the axes: the variants (colour), then the tasks (line style and marker).
        # In the GIF's held frame the variant labels become their verdicts (set_verdict).
        handles = []
        self.names = []
        for v in snap["variants"]:
            failed = snap["summary"][v].get("failed")
            self.names.append(spec_lines(v, LEGEND_CHARS) + (f"\n({failure_text(failed, snap)})" if failed else ""))
            handles.append(Line2D([], [], color=col[v], lw=2.5, label=self.names[-1]))
        if not self.grid and T > 1:
            handles.append(Line2D([], [], lw=0, label=" "))
            handles.append(Line2D([], [], lw=0, label="task (line style, marker)"))
            handles += [Line2D([], [], color="0.25", ls=TASK_STYLES[j][0], marker=TASK_STYLES[j][1], ms=4,
                               lw=1.4, label=f"task {j + 1}: {snap['task_labels'][j]}") for j in range(T)]
        self.legend = fig.legend(handles=handles, loc="outside right upper", fontsize=LEGEND_FONT, frameon=False,
                                 title="variant", title_fontsize=LEGEND_FONT + 0.5, alignment="left")
        self.verdicts = self.verdict_lines() if verdict else None
        if verdict:
            self.set_verdict(True)                  # lay out with the longest labels
        how = "joint training" if snap["joint"] else "sequential training"
        self.title = fig.suptitle(f"Test accuracy during {how} (seed {seed_of(snap)})", fontsize=12)
        self.centre_title()

    def centre_title(self) -> None:
        """The title centred over the panels, not the whole figure: the legend to their right then never
        reaches under it, however long the variant names."""
        self.fig.canvas.draw()
        boxes = [ax.get_position() for ax in self.fig.axes if ax.axison]
        x0, x1 = min(b.x0 for b in boxes), max(b.x1 for b in boxes)
        self.title.set_x((x0 + x1) / 2)

    def verdict_lines(self) -> list:
        """Per variant, what the held last frame of the GIF says: its ACC and forgetting (or failure)."""
        out = []
        for v in self.snap["variants"]:
            s = self.snap["summary"][v]
            name = spec_lines(v, LEGEND_CHARS)
            sep = ":\n" if "\n" in name or len(name) > 16 else ": "
            f = s.get("forgetting")
            out.append(f"{name}{sep}ACC {s['acc']:.3f}" + ("" if f is None else f", forgetting {f:.3f}")
                       + (f"\n({failure_text(s['failed'], self.snap)})" if s.get("failed") else ""))
        return out

    def set_verdict(self, on: bool) -> None:
        """Variant labels: the verdicts (ACC, forgetting after training) or the plain names."""
        texts = self.legend.get_texts()
        for t, name, verdict in zip(texts, self.names, self.verdicts):
            t.set_text(verdict if on else name)
        self.legend.get_title().set_text("after training" if on else "variant")

    def _label_phases(self, ax, spans) -> None:
        """Each training phase named above the axes, starting at its switch line."""
        snap = self.snap
        if snap["joint"]:
            names = [f"joint: {', '.join(snap['task_labels'])}" if snap["T"] <= 3 else f"all {snap['T']} tasks"]
        else:
            names = [f"task {j + 1}: {lab}" for j, lab in enumerate(snap["task_labels"])]
        width_in = 6.3 if self.zoom_ax is not None else 6.8
        trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
        for (a, b), name in zip(spans, names):
            room = width_in * (b - a) / max(1, snap["P"] - 1)
            text = name if len(name) * 0.075 < room else name.split(":")[0]
            ax.text(a + 0.1, 1.01, ("\u25b6 " if a else "") + text, transform=trans, ha="left", va="bottom",
                    fontsize=9, color="0.25")

    def _zoom(self, az, snap, col, x) -> None:
        T, ends = snap["T"], snap["phase_ends"]
        shown = []
        for v in snap["variants"]:
            curve = snap["curves"][v]
            if T <= 3:
                for j in range(T - 1):
                    ls, mk = TASK_STYLES[j]
                    ln, = az.plot([], [], ls=ls, marker=mk, ms=3.5, lw=1.6, color=col[v], zorder=3)
                    self.lines.append((ln, x[ends[j]:], curve[ends[j]:, j], 0))
                    shown.extend(curve[ends[j]:, j])
            else:
                xs, ys = earlier_mean(curve, snap)
                ln, = az.plot([], [], "-o", ms=2.5, lw=1.6, color=col[v], zorder=3)
                self.lines.append((ln, xs.astype(float), ys, 0))
                shown.extend(ys)
        for a in ends[:-1]:
            az.axvline(a, color="0.35", lw=1, ls=":")
        for i in range(1, len(ends)):
            if i % 2 == 1 and T <= 3:
                az.axvspan(ends[i - 1], ends[i], color="0.93", lw=0, zorder=0)
        az.set_ylim(*fitted_ylim(shown))
        az.set_xlim(ends[0] - 0.4, snap["P"] - 1 + 0.4)
        span = snap["P"] - 1 - ends[0]
        az.set_xticks(range(ends[0], snap["P"]) if span <= 10 else ends[::math.ceil(len(ends) / 7)])
        az.grid(alpha=0.3)
        az.tick_params(labelsize=9)
        az.yaxis.set_major_locator(MaxNLocator(6))
        y0 = f"(y axis from {az.get_ylim()[0]:.2f})"
        if T <= 3:
            what = "task 1 after its training" if T == 2 else "tasks 1-2 after their training"
            az.set_title(f"zoom: {what}", fontsize=10)
            az.set_xlabel("epochs trained", fontsize=10)
            az.set_ylabel(f"test accuracy {y0}", fontsize=10)
        else:
            az.set_title(wrapped(f"zoom: mean accuracy on the tasks trained before the current one {y0}",
                                 self.panel_in - 0.35, 9.5), fontsize=9.5)
            az.set_ylabel("")                     # the title says it; a label would widen this grid column

    def show(self, p: int) -> None:
        for ln, xs, ys, start in self.lines:
            keep = (xs <= p) & np.isfinite(ys) if p >= start else np.zeros(len(xs), bool)   # spaced curves: joined
            ln.set_data(xs[keep], ys[keep])


def plot_training_curves(snap: dict, out: Path) -> None:
    plot = CurvePlot(snap)
    plot.show(snap["P"] - 1)
    save(plot.fig, out)


# ============================================================================ 2. accuracy matrix
def plot_accuracy_matrix(snap: dict, out: Path) -> None:
    variants, T = snap["variants"], snap["T"]
    rows = len(snap["phase_ends"])
    cell = 0.55 if T <= 4 else 0.45 if T <= 7 else 0.36
    panel_w = max(2.6, 0.9 + cell * T)
    ncols = max(1, min(len(variants), int(12.5 // panel_w)))
    nrows = math.ceil(len(variants) / ncols)
    panel_h = max(1.4, 0.9 + cell * rows) + 0.5
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_w * ncols + 1.4, panel_h * nrows + 1.0),
                             layout="constrained", squeeze=False)
    finite = np.concatenate([snap["R"][v][np.isfinite(snap["R"][v])] for v in variants] + [np.zeros(0)])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmax - vmin < 1e-6:
        vmin, vmax = vmin - 0.01, vmax + 0.01
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    col = colors(variants)
    font = 10 if T <= 4 else 8.5 if T <= 7 else 6.5 if T <= 12 else None
    im = None
    for ax in axes.ravel()[len(variants):]:
        ax.set_axis_off()
    for ax, v in zip(axes.ravel(), variants):
        R = snap["R"][v]
        im = ax.imshow(np.ma.masked_invalid(R), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto",
                       interpolation="nearest")
        if font:
            for i in range(rows):
                for j in range(T):
                    val = R[i, j]
                    light = np.isfinite(val) and (val - vmin) / (vmax - vmin) < 0.55
                    ax.text(j, i, f"{val:.2f}" if np.isfinite(val) else "n/a", ha="center", va="center",
                            fontsize=font, color="white" if light else "black")
        if rows == T:                  # box the diagonal: each task just after its own training
            for i in range(T):
                ax.add_patch(plt.Rectangle((i - 0.47, i - 0.47), 0.94, 0.94, fill=False, ec="black", lw=2.2,
                                           ls=(0, (4, 2))))
        ax.grid(False)
        ax.set_xticks(range(T), [str(j + 1) for j in range(T)], fontsize=9)
        if snap["joint"]:
            ax.set_yticks([0], ["joint"], fontsize=9)
        else:
            ax.set_yticks(range(rows), [str(i + 1) for i in range(rows)], fontsize=9)
        ax.set_xlabel("accuracy on task j", fontsize=9)
        ax.set_ylabel("after training task i" if not snap["joint"] else "", fontsize=9)
        s = snap["summary"][v]
        f = s.get("forgetting")
        sub = (f"ACC {s['acc']:.3f}" + ("" if f is None else f", forgetting {f:.3f}")
               + (f"\n{failure_text(s['failed'], snap)}" if s.get("failed") else ""))
        ax.set_title(f"{spec_lines(v, chars_in(panel_w, 10))}\n{sub}", fontsize=10, color=text_color(v, col[v]))
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=min(0.85, 3.5 / fig.get_figheight()),
                 label="test accuracy (one scale for all)")
    tasks = "; ".join(f"{j + 1} = {lab}" for j, lab in enumerate(snap["task_labels"]))
    fig.suptitle(wrapped(f"Accuracy matrix R (seed {seed_of(snap)}): row i = after training task i, column j = "
                         "accuracy on task j" + ("; dashed boxes: each task right after its own training"
                                                 if rows == T and T > 1 else ""), fig.get_figwidth(), 11),
                 fontsize=11)
    fig.supxlabel(wrapped("tasks: " + tasks, fig.get_figwidth(), 9), fontsize=9)
    save(fig, out)


# ============================================================================ 3. ACC and forgetting
def metric_label(metric: str, T: int, height_in: float = 3.2) -> str:
    """The y label of ACC or forgetting, wrapped to `height_in` inches of axis."""
    if metric == "acc":
        text = "ACC: mean test accuracy over " + ("the task" if T == 1 else "all tasks") + \
            " after the last training phase"
    else:
        over = "task 1: its" if T == 2 else f"mean over tasks 1-{T - 1} of"
        text = f"forgetting ({over} best earlier accuracy minus final; > 0 = accuracy lost)"
    return wrapped(text, height_in, 9.5)


def seed_values(snap: dict, doc: dict | None, metric: str) -> dict:
    """{variant: [value per seed]} (a failed run's too: what it scored is its outcome): every seed of
    results.json, else the snapshot's headline seed."""
    runs = doc["per_seed"] if doc else [{"summary": snap["summary"]}]
    return {v: [r["summary"][v][metric] for r in runs if r["summary"][v].get(metric) is not None]
            for v in snap["variants"]}


def plot_acc_forgetting(snap: dict, doc: dict | None, out: Path) -> None:
    variants, V = snap["variants"], len(snap["variants"])
    multi = doc is not None and n_seeds(doc) > 1 and doc.get("aggregate")
    runs = doc["per_seed"] if multi else [{"summary": snap["summary"]}]
    failures = {v: sum(1 for r in runs if r["summary"][v].get("failed")) for v in variants}
    counts = {v: f"{len(runs)} seeds" + (f", {failures[v]} failed" if failures[v] else "") for v in variants}
    piece = max(len(part) + 1 for v in variants for part in v.split(":"))    # spec_lines breaks after colons
    if multi:
        piece = max(piece, *(len(t) for t in counts.values()))
    slot_in = max(0.85, 0.075 * piece + 0.2)                                  # inches under each variant
    panel_w = max(3.8, 1.6 + slot_in * V)
    stacked = 2 * panel_w > 12
    fig, axes = plt.subplots(2 if stacked else 1, 1 if stacked else 2,
                             figsize=(panel_w + 0.6, 8.4) if stacked else (2 * panel_w + 0.6, 4.6),
                             layout="constrained")
    rng = np.random.default_rng(0)
    col = colors(variants)
    slot = chars_in((panel_w - 1.3) / V, 9)      # characters of a tick label under each variant
    height_in = 3.0 if stacked else 3.2
    for ax, metric in zip(axes, ("acc", "forgetting")):
        values = seed_values(snap, doc if multi else None, metric)
        if not any(values.values()):
            ax.text(0.5, 0.5, f"no {metric} to show:\n" + ("forgetting needs 2 or more tasks trained in sequence"
                                                          if metric == "forgetting" else "no run measured it"),
                    ha="center", va="center", transform=ax.transAxes, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        shown = []
        ticks = []
        for i, v in enumerate(variants):
            vals = values[v]
            c = col[v]
            name = spec_lines(v, slot)
            if multi:
                ticks.append(f"{name}\n{len(vals)} seeds" + (f", {failures[v]} failed" if failures[v] else ""))
            else:
                ticks.append(name)
            if not vals:
                ax.text(i, 0.5, "n/a", rotation=90, ha="center", va="center", color=c,
                        transform=mtransforms.blended_transform_factory(ax.transData, ax.transAxes), fontsize=10)
                continue
            if multi:
                jitter = rng.uniform(-0.09, 0.09, len(vals))
                ax.scatter(i - 0.12 + jitter, vals, s=22, color=c, alpha=0.75, lw=0, zorder=3)
                d = doc["aggregate"]["variants"][v][metric]
                shown.extend(vals)
                if d.get("mean") is not None:
                    mean = d["mean"]
                    if d.get("ci95"):
                        lo, hi = d["ci95"]
                        ax.errorbar(i + 0.2, mean, yerr=[[mean - lo], [hi - mean]], fmt="D", color="black",
                                    ms=5, capsize=4, lw=1.4, zorder=4)
                        shown.extend([lo, hi])
                    else:
                        ax.plot(i + 0.2, mean, "D", color="black", ms=5, zorder=4)
                    ax.annotate(f"{mean:.3f}", (i + 0.2, mean), xytext=(7, 0), textcoords="offset points",
                                va="center", fontsize=8.5)
            else:
                ax.scatter([i], vals, s=45, color=c, zorder=3)
                ax.annotate(f"{vals[0]:.3f}", (i, vals[0]), xytext=(8, 0), textcoords="offset points",
                            va="center", fontsize=9)
                shown.extend(vals)
        lo, hi = min(shown), max(shown)
        if metric == "forgetting":
            lo, hi = min(lo, 0.0), max(hi, 0.0)
            ax.axhline(0, color="0.3", lw=1)
            ax.annotate("0 = nothing lost", (1, 0), xycoords=("axes fraction", "data"), xytext=(-3, 3),
                        textcoords="offset points", ha="right", va="bottom", fontsize=8, color="0.3")
        pad = max(0.005, 0.08 * (hi - lo))
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlim(-0.6, V - 1 + 0.8)
        longest = max(len(line) for t in ticks for line in t.split("\n"))
        tilt = longest * 0.075 > (panel_w - 1.3) / V
        ax.set_xticks(range(V), ticks, fontsize=9, rotation=25 if tilt else 0, ha="right" if tilt else "center",
                      rotation_mode="anchor")
        for t, c in zip(ax.get_xticklabels(), (text_color(v, col[v]) for v in variants)):
            t.set_color(c)
        ax.set_ylabel(metric_label(metric, snap["T"], height_in), fontsize=9.5)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="y", labelsize=9)
        if not multi:
            ax.text(0.02, 0.97, "1 seed: no interval", transform=ax.transAxes, va="top", fontsize=9,
                    color="0.3")
    if multi:
        title = (f"{n_seeds(doc)} seeds: each dot one seed (a failed run at what it scored); "
                 "black: mean and its 95% interval")
    else:
        title = f"Seed {seed_of(snap)} only (1 seed: no interval; run --n-seeds 10 for the spread)"
    fig.suptitle(wrapped(title, fig.get_figwidth(), 11), fontsize=11)
    save(fig, out)


# ============================================================================ 4. paired forgetting
def paired_points(snap: dict, doc: dict, variant: str, metric: str = "forgetting") -> tuple:
    """(baseline values, variant values) on the seeds where both ran and the metric exists."""
    base = snap["variants"][0]
    pairs = [(r["summary"][base][metric], r["summary"][variant][metric]) for r in doc["per_seed"]
             if not r["summary"][base].get("failed") and not r["summary"][variant].get("failed")
             and r["summary"][base].get(metric) is not None and r["summary"][variant].get(metric) is not None]
    return [a for a, _ in pairs], [b for _, b in pairs]


def plot_forgetting_paired(snap: dict, doc: dict, out: Path) -> bool:
    """Each other variant's forgetting against the baseline's on the same seed; False if nothing to draw."""
    variants = snap["variants"]
    base = variants[0]
    fig = plt.figure(figsize=(9.0, 5.8))
    side = 4.5                                   # a square plot, inches; the legend to its right
    ax = fig.add_axes([0.95 / 9.0, 0.75 / 5.8, side / 9.0, side / 5.8])
    everything = [0.0]
    drawn = False
    comps = ((doc.get("aggregate") or {}).get("paired") or {}).get("metrics", {}).get("forgetting", {})
    col = colors(variants)
    for i, v in enumerate(variants[1:], start=1):
        xs, ys = paired_points(snap, doc, v)
        if not xs:
            continue
        drawn = True
        below = sum(y < x for x, y in zip(xs, ys))
        above = sum(y > x for x, y in zip(xs, ys))
        on = len(xs) - below - above
        label = f"{spec_lines(v, 36)}\nless on {below}, more on {above}" + (f", same on {on}" if on else "") + \
            f" of {len(xs)}"
        p = (comps.get(v) or {}).get("wilcoxon_p_holm")
        if p is not None:
            label += f"\np = {p:.2g}"
        ax.scatter(xs, ys, s=34, color=col[v], label=label, zorder=3, edgecolor="white", lw=0.5)
        everything += xs + ys
    if not drawn:
        plt.close(fig)
        return False
    lo, hi = min(everything), max(everything)
    pad = 0.06 * (hi - lo) + 1e-3
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], color="0.4", lw=1, ls="--", zorder=1)
    ax.text(hi, lo, f"below the diagonal:\nforgets less than {base}  ", ha="right", va="bottom", fontsize=9,
            color="0.3")
    ax.text(lo, hi, f"  above: forgets more than {base}", ha="left", va="top", fontsize=9, color="0.3")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel(f"{base} (baseline) forgetting on the same seed (> 0 = accuracy lost)", fontsize=10)
    ax.set_ylabel("variant's forgetting", fontsize=10)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.04, 1.0), fontsize=LEGEND_FONT, frameon=False,
              title=f"one dot per seed; on how many seeds\nit forgets less / more than {base}"
                    + ("\n(p: Wilcoxon, Holm-adjusted)" if comps else ""),
              title_fontsize=LEGEND_FONT, alignment="left", labelspacing=0.9)
    fig.suptitle(f"Forgetting, seed by seed, against the baseline {base} ({n_seeds(doc)} seeds)", fontsize=12,
                 y=0.97)
    save(fig, out)
    return True


# ============================================================================ 5. receptive fields
def finite_abs_max(a: np.ndarray) -> float:
    a = np.abs(a[np.isfinite(a)])
    return float(a.max()) if a.size else 0.0


def w1_variant_limits(snap: dict, v: str, units: int = W1_UNITS) -> tuple:
    """(largest |weight|, largest |change since init|) over the finite values of the units shown."""
    W, W0 = snap["W1"][v][:, :units], snap["W1_init"][v][:, :units]
    with np.errstate(invalid="ignore", over="ignore"):
        return finite_abs_max(W), finite_abs_max(W - W0)


def w1_scaled_variants(snap: dict) -> list:
    """The variants that set the shared colour scale: all but the diverged ones (their weights carry no
    picture and would wash out the others), unless every variant diverged."""
    ok = [v for v in snap["variants"] if (snap["summary"][v].get("failed") or {}).get("reason") != "diverged"]
    return ok or list(snap["variants"])


def w1_limits(snap: dict, units: int = W1_UNITS) -> tuple:
    """ONE symmetric colour limit for the weights and one for the changes, shared by every W1 figure:
    the maximum over the variants of their own limits (w1_variant_limits)."""
    lims = [w1_variant_limits(snap, v, units) for v in w1_scaled_variants(snap)]
    lim_w = max(l[0] for l in lims) or 1.0
    lim_d = max(l[1] for l in lims) or 1.0
    return lim_w, lim_d


def relative_change(W: np.ndarray, W0: np.ndarray) -> np.ndarray:
    """Per first-layer unit: |w - w0| / |w0|; inf for units whose weights are no longer finite."""
    W, W0 = W.astype(np.float64), W0.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        rel = np.linalg.norm(W - W0, axis=0) / np.linalg.norm(W0, axis=0)
    rel[~np.isfinite(rel)] = np.inf
    return rel


def tile(W: np.ndarray, side: int) -> np.ndarray:
    """side x side 28x28 patches of W's first side**2 columns, one blank (NaN) pixel between them."""
    grid = np.full((side * 29 + 1, side * 29 + 1), np.nan, dtype=np.float32)
    for u in range(min(side * side, W.shape[1])):
        r, col = divmod(u, side)
        grid[1 + r * 29: 29 + r * 29, 1 + col * 29: 29 + col * 29] = W[:, u].reshape(28, 28)
    return grid


def plot_receptive_fields(snap: dict, out_dir: Path) -> tuple:
    """W1_<slug>.png per variant: units 0-99 of the first layer (the same units in every variant; variants
    of the same first-layer shape started from the same weights), trained weights and change since
    initialisation, each on ONE colour scale shared by all variants (w1_limits). The figure is laid out
    once and refilled per variant. Returns (file names, notes)."""
    lim_w, lim_d = w1_limits(snap)
    W_IN, H_IN, SIDE_IN = 10.2, 5.4, 4.1                       # inches: figure, and each square grid
    fig = plt.figure(figsize=(W_IN, H_IN))
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    panels = []
    for left, lim, what in ((0.05, lim_w, "trained weights"), (5.2, lim_d, "change since initialisation")):
        ax = fig.add_axes([left / W_IN, 0.15 / H_IN, SIDE_IN / W_IN, SIDE_IN / H_IN])
        cax = fig.add_axes([(left + SIDE_IN + 0.08) / W_IN, 0.45 / H_IN, 0.14 / W_IN, (SIDE_IN - 0.6) / H_IN])
        im = ax.imshow(np.zeros((2, 2)), cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(what, fontsize=11)
        cb = fig.colorbar(im, cax=cax)
        cb.set_label(f"shared by all variants: \u00b1{lim:.3g}", fontsize=9)
        cb.ax.tick_params(labelsize=8)
        panels.append((ax, im))
    title = fig.suptitle("", fontsize=11.5, y=0.985, va="top")
    col = colors(snap["variants"])
    written, notes = [], []
    for i, v in enumerate(snap["variants"]):
        W, W0 = snap["W1"][v], snap["W1_init"][v]
        n = min(W1_UNITS, W.shape[1])
        side = math.ceil(math.sqrt(n))
        rel = relative_change(W, W0)
        bad_units = int(np.isinf(rel).sum())
        med = float(np.median(rel))
        moved = f"{med:.1%}" if np.isfinite(med) else "not finite"
        broken = f"; {bad_units} units hold inf/nan" if bad_units else ""
        notes.append(f"{v}: median relative change of a first-layer unit's weights {moved} "
                     f"(over all {W.shape[1]} units){broken}")
        with np.errstate(invalid="ignore", over="ignore"):
            shown = (W[:, :n], W[:, :n] - W0[:, :n])
        overlays = []
        layout = tile(np.zeros((784, n), np.float32), side)       # NaN exactly on the blank separators
        for (ax, im), data in zip(panels, shown):
            grid = tile(data, side)
            im.set_data(np.where(np.isfinite(grid), grid, np.nan))
            im.set_extent((-0.5, grid.shape[1] - 0.5, grid.shape[0] - 0.5, -0.5))
            ax.set_xlim(-0.5, grid.shape[1] - 0.5)
            ax.set_ylim(grid.shape[0] - 0.5, -0.5)
            bad = ~np.isfinite(grid) & ~np.isnan(layout)
            if bad.any():                        # inf/nan weights of a diverged variant: black
                overlays.append(ax.imshow(np.ma.masked_where(~bad, np.ones_like(grid)),
                                          cmap=ListedColormap(["black"]), interpolation="nearest"))
        failed = snap["summary"][v].get("failed")
        lines = [f"{v}: first-layer receptive fields of units 0-{n - 1} (the same units in every variant)",
                 f"median relative change of a first-layer unit since initialisation: {moved}{broken}"]
        if failed:
            lines.insert(1, failure_text(failed, snap) + ("; black = inf/nan weights" if overlays else ""))
        title.set_text(wrapped("\n".join(lines), W_IN, 11.5))
        title.set_color(text_color(v, col[v]))
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        for o in overlays:
            o.remove()
        write_bytes(out_dir / w1_file(v), buf.getvalue())
        written.append(w1_file(v))
    plt.close(fig)
    return written, notes


# ============================================================================ 6. winner frequency
def selectivity(f: np.ndarray) -> np.ndarray:
    """Per unit that fires on some task (columns of f, tasks in rows): the module's selectivity index
    (f_best - f_rest) / (f_best + f_rest), f_rest the mean over the other tasks; for T = 2 it equals
    |f1 - f2| / (f1 + f2). Silent units are left out (they are counted separately)."""
    index, silent = selectivity_index(f)
    return index[~silent]


def winner_freq_stats(snap: dict) -> dict:
    """{variant: [per hidden layer: {layer, units, silent, alive, selective, share, measured}]}: the
    numbers winner_freq.png shows and the script prints. share = fraction of all the layer's units
    whose selectivity exceeds SELECTIVE (None with one task); silent = units that fire on no task."""
    out = {}
    for v in snap["variants"]:
        freq = snap["freq"][v]
        layers = []
        for layer in range(freq.shape[1]):
            f = freq[:, layer, :]
            measured = bool(np.isfinite(f).all())
            st = {"layer": layer + 1, "units": f.shape[1], "measured": measured}
            if measured:
                alive = f.sum(axis=0) > 0
                st["silent"] = int((~alive).sum())
                st["alive"] = int(alive.sum())
                if snap["T"] > 1:
                    sel = selectivity(f)
                    st["selective"] = int((sel > SELECTIVE).sum())
                    st["share"] = st["selective"] / st["units"]
                else:
                    st["selective"], st["share"] = None, None
            layers.append(st)
        out[v] = layers
    return out


def winner_freq_text(st: dict) -> tuple:
    """(share text, silent text) of one layer, formatted once for the figure and the printout."""
    if not st["measured"]:
        return "not measured", "run failed"
    share = "selectivity undefined (1 task)" if st["share"] is None else f"{st['share']:.1%} selective"
    return share, f"{st['silent']} of {st['units']} silent"


def winner_freq_line(v: str, st: dict) -> str:
    share, silent = winner_freq_text(st)
    if not st["measured"]:
        return f"{v} layer {st['layer']}: not measured (the run failed)"
    return (f"{v} layer {st['layer']}: {share} (selectivity > {SELECTIVE}, of all units), "
            f"{silent} on every task")


def plot_winner_freq(snap: dict, out: Path) -> list:
    """Per variant and hidden layer, every unit's firing: T = 2 a scatter of the fraction of task-1 vs
    task-2 test images it fires on; T > 2 its selectivity against its mean firing rate; T = 1 a histogram
    of firing rates. The same axis limits in every panel. Returns the printed lines."""
    variants, T = snap["variants"], snap["T"]
    stats = winner_freq_stats(snap)
    L = max(snap["freq"][v].shape[1] for v in variants)
    per_row = max(1, 4 // L)
    ncols = L * min(per_row, len(variants))
    nrows = math.ceil(len(variants) / per_row)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(6.0, 2.75 * ncols + 0.6), 2.75 * nrows + 1.0),
                             layout="constrained", squeeze=False)
    flat = axes.ravel()
    for ax in flat:
        ax.set_axis_off()
    top = max([finite_abs_max(snap["freq"][v]) for v in variants] + [1e-3])
    top = min(1.0, math.ceil(top * 1.05 * 20) / 20)
    markers = "o^sDv"
    lines = []
    col = colors(variants)
    for i, v in enumerate(variants):
        c = col[v]
        for st in stats[v]:
            layer = st["layer"]
            ax = flat[(i // per_row) * ncols + (i % per_row) * L + layer - 1]
            ax.set_axis_on()
            lines.append(winner_freq_line(v, st))
            share, silent = winner_freq_text(st)
            name = spec_lines(f"{v} \u00b7 layer {layer}", chars_in(2.6, 9))
            ax.set_title(f"{name}\n{share}, {silent}", fontsize=9, color=text_color(v, c))
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.25)
            if not st["measured"]:
                ax.text(0.5, 0.5, "not measured\n(the run failed)", ha="center", va="center", transform=ax.transAxes,
                        fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            f = snap["freq"][v][:, layer - 1, :]
            mk = markers[(layer - 1) % len(markers)]
            if T == 2:
                ax.scatter(f[0], f[1], s=7, marker=mk, color=c, alpha=0.5, lw=0)
                ax.plot([0, top], [0, top], color="0.35", lw=0.8, ls="--")
                for slope in (3.0, 1 / 3):           # |f1 - f2| / (f1 + f2) = 0.5
                    ax.plot([0, top], [0, top * slope], color="0.6", lw=0.7, ls=":")
                ax.set_xlim(0, top)
                ax.set_ylim(0, top)
                ax.set_aspect("equal")
                ax.set_xlabel(f"fires on: task 1 ({snap['task_labels'][0]})", fontsize=8)
                ax.set_ylabel(f"task 2 ({snap['task_labels'][1]})", fontsize=8)
            elif T > 2:
                alive = f.sum(axis=0) > 0
                ax.scatter(f[:, alive].mean(axis=0), selectivity(f), s=7, marker=mk, color=c, alpha=0.5, lw=0)
                ax.axhline(SELECTIVE, color="0.4", lw=0.8, ls=":")
                ax.set_xlim(0, top)
                ax.set_ylim(-0.02, 1.02)
                ax.set_xlabel("fires on (mean over tasks)", fontsize=8)
                ax.set_ylabel("selectivity", fontsize=8)
            else:
                ax.hist(f[0], bins=np.linspace(0, top, 26), color=c, alpha=0.8)
                ax.set_xlim(0, top)
                ax.set_xlabel("fires on (fraction of test images)", fontsize=8)
                ax.set_ylabel("units", fontsize=8)
    if T == 2:
        what = ("each dot one hidden unit; dashed: fires equally on both tasks; dotted: selectivity "
                f"|f1-f2|/(f1+f2) = {SELECTIVE}")
    elif T > 2:
        what = (f"each dot one hidden unit; selectivity = (T\u00b7max task share - 1)/(T - 1): 0 = fires equally "
                f"on all {T} tasks, 1 = on one only; dotted: {SELECTIVE}")
    else:
        what = "one task: how often each hidden unit fires on its test images"
    fig.suptitle(wrapped("Do hidden units specialise by task? (measured at the end of training, seed "
                         f"{seed_of(snap)})\n" + what, fig.get_figwidth(), 10.5), fontsize=10.5)
    save(fig, out)
    return lines


# ============================================================================ command line
def plot_submasks(snap: dict, out: Path) -> list:
    """The analysis of Srivastava et al. (ICLR 2015, Table 1 and Fig. 4) on the headline seed. Left: per task,
    kNN on the last hidden layer's submasks against the softmax on the same test images (kNN - softmax,
    points). Right: the share of submask bits that flip from one epoch to the next, per hidden layer, task
    switches marked. Returns printed lines."""
    sub, variants, T = snap["submasks"], snap["variants"], snap["T"]
    col = colors(variants)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.4]})
    fig.subplots_adjust(left=0.07, right=0.8, top=0.82, bottom=0.14, wspace=0.28)
    lines, width = ["submasks.png (kNN on last-layer submasks minus softmax, same test images):"], 0.8 / len(variants)
    for i, v in enumerate(variants):
        s = sub.get(v) or {}
        if s.get("knn_acc") is None:
            lines.append(f"  {v}: failed, not measured")
            continue
        gap = 100 * (np.array(s["knn_acc"]) - np.array(s["softmax_acc"]))
        left.bar(np.arange(T) + (i - (len(variants) - 1) / 2) * width, gap, width * 0.9, color=col[v], label=v)
        lines.append(f"  {v}: " + ", ".join(f"task {t + 1} {g:+.1f} points" for t, g in enumerate(gap)))
        flips = np.array(s["flip_fraction"])
        for layer in range(flips.shape[1]):
            right.plot(np.arange(1, len(flips) + 1), flips[:, layer], TASK_STYLES[layer % 3][0],
                       marker=TASK_STYLES[layer % 3][1], ms=3.5, color=col[v],
                       label=f"{spec_lines(v, LEGEND_CHARS)}, layer {layer + 1}")
    left.axhline(0, color="0.3", lw=1)
    left.set_xticks(range(T), [f"task {t + 1}" for t in range(T)] if T <= 5 else range(1, T + 1))
    left.set_ylabel("kNN − softmax accuracy (points)")
    measured = next((s for s in sub.values() if s and s.get("knn_k")), next(iter(sub.values())))
    k, n = measured["knn_k"], measured.get("knn_sample")
    votes = ", distance-weighted" if measured.get("knn_weighted") else ""
    left.set_title(f"kNN (k = {k}, Hamming{votes}) on last-layer submasks\nvs the softmax, {n} test images "
                   "per task", fontsize=10)
    left.grid(axis="y", alpha=0.3)
    for end in snap["phase_ends"][:-1]:
        right.axvline(end + 0.5, color="0.4", lw=1, ls=":")
    right.set_xlabel("epoch (dotted: task switch)")
    right.set_ylabel("share of submask bits that flip")
    on = (f"{measured['flip_sample']} images of the task being trained" if measured.get("flip_on")
          else f"{measured['flip_sample']} training images")
    right.set_title(f"change of submasks per epoch\n({on})", fontsize=10)
    right.set_ylim(bottom=0)
    right.grid(alpha=0.3)
    right.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=LEGEND_FONT, frameon=False)
    fig.suptitle(f"Submasks of the headline seed {seed_of(snap)} (as in Srivastava et al., ICLR 2015)", fontsize=11)
    save(fig, out)
    return lines


def snapshot_parser(what: str) -> argparse.ArgumentParser:
    """The command line both figure scripts share: they read a snapshot file and train nothing."""
    p = argparse.ArgumentParser(description=f"{what} from the snapshots of compete_to_compute.py "
                                            "(nothing is trained).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--snapshots", default="viz/snapshots.npz", help="snapshot file written by compete_to_compute.py")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = snapshot_parser("Draw viz/*.png")
    p.add_argument("--results", default="results.json",
                   help="results file; its other seeds are drawn if it comes from the same run")
    p.add_argument("--out-dir", default="viz", help="folder for the PNG files")
    return p


def run_reporting_errors(draw, out: Path, out_flag: str) -> int:
    """Run a script's drawing step; a bad input or an unwritable output becomes one line, exit 1."""
    try:
        draw()
    except SnapshotError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OutputProblem as e:
        print(f"error: {e.path}: {e.reason}; choose another {out_flag}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {out}: cannot write ({e.strerror or e}); choose another {out_flag}", file=sys.stderr)
        return 1
    return 0


def draw_all(snap: dict, doc: dict | None, out: Path) -> dict:
    """Every figure of one snapshot into `out`; stale ones removed. Returns what was written and said."""
    prepare_output_dir(out)
    written = []

    def figure(name, fn, *args):
        fn(*args, out / name)
        written.append(name)

    figure("training_curves.png", plot_training_curves, snap)
    figure("accuracy_matrix.png", plot_accuracy_matrix, snap)
    figure("acc_forgetting.png", plot_acc_forgetting, snap, doc)
    notes = []
    if doc and n_seeds(doc) > 1 and len(snap["variants"]) > 1:
        if snap["joint"] or snap["T"] < 2:
            notes.append("no forgetting_paired.png: forgetting needs 2 or more tasks trained in sequence")
        elif plot_forgetting_paired(snap, doc, out / "forgetting_paired.png"):
            written.append("forgetting_paired.png")
        else:
            notes.append("no forgetting_paired.png: no seed on which the baseline and another variant both ran")
    fields, moved = plot_receptive_fields(snap, out)
    written += fields
    freq_lines = plot_winner_freq(snap, out / "winner_freq.png")
    written.append("winner_freq.png")
    if snap["submasks"]:
        freq_lines += plot_submasks(snap, out / "submasks.png")
        written.append("submasks.png")
    removed = remove_stale(out, written)
    return {"written": written, "moved": moved, "winner_freq": freq_lines, "notes": notes, "removed": removed}


def main(argv: list | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out_dir)
    report = {}

    def draw():
        snap = read_snapshots(Path(args.snapshots))
        doc = read_results(Path(args.results), snap)
        report.update(draw_all(snap, doc, out), seeds=n_seeds(doc))

    code = run_reporting_errors(draw, out, "--out-dir")
    if code == 0:
        print(f"wrote {', '.join(report['written'])} to {out}/"
              + ("" if report["seeds"] > 1 else " (single seed: no multi-seed figure)"))
        if report["removed"]:
            print(f"removed stale figures not made from this snapshot: {', '.join(report['removed'])}")
        for note in report["notes"]:
            print("note: " + note)
        print("first-layer weights:")
        for line in report["moved"]:
            print("  " + line)
        print("winner_freq.png:")
        for line in report["winner_freq"]:
            print("  " + line)
    return code


if __name__ == "__main__":
    sys.exit(main())
