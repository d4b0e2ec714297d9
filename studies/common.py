"""What every study script shares: run one setting into its run folder, read the aggregate, tabulate, draw.

A study is a few settings (one command line each) run over the same seeds. Each setting's jobs go to
studies/runs/<folder>/ (not committed: one file per seed and variant), so an interrupted study resumes
where it stopped when its script is run again; the aggregate of each setting is committed as
studies/<study>/<setting>.json. The statistics are the module's own (paired, seed by seed).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import compete_to_compute as c  # noqa: E402

RUNS = ROOT / "studies" / "runs"
WORKERS = int(os.environ.get("STUDY_WORKERS", len(os.sched_getaffinity(0))))


def run_setting(study: str, label: str, args: list, seeds: int, folder: str | None = None) -> dict:
    """Run (or resume) one setting over seeds 0..seeds-1 and return its aggregated results.json.

    `folder` lets two studies share the jobs of an identical setting (same flags, same seeds)."""
    runs = RUNS / (folder or f"{study}/{label}")
    out = ROOT / "studies" / study / f"{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / "compete_to_compute.py"), *args, "--seed", "0", "--n-seeds", str(seeds),
           "--run-dir", str(runs), "--out", str(out), "--snapshots", str(runs / "snapshots.npz"), "--quiet",
           "--workers", str(WORKERS)]
    print(f"[{study}] {label}: python compete_to_compute.py {' '.join(args)} --n-seeds {seeds}", flush=True)
    code = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
    if code not in (0, 3):                      # 3: finished, some runs failed (counted in the results)
        sys.exit(f"[{study}] {label}: compete_to_compute.py exited {code}")
    return json.loads(out.read_text())


def per_seed(doc: dict, variant: str, metric: str) -> dict:
    """seed -> metric value of one variant (failed runs left out)."""
    return {r["seed"]: r["summary"][variant][metric] for r in doc["per_seed"]
            if not r["summary"][variant]["failed"] and r["summary"][variant].get(metric) is not None}


def paired_across(doc_a: dict, doc_b: dict, variant_a: str, variant_b: str, metric: str) -> dict:
    """B minus A on the seeds both finished: the effect of a setting (or variant) on one metric."""
    a, b = per_seed(doc_a, variant_a, metric), per_seed(doc_b, variant_b, metric)
    seeds = sorted(set(a) & set(b))
    return c.paired_comparison([b[s] for s in seeds], [a[s] for s in seeds], metric == "acc", metric,
                               variant_b, variant_a)


def ci(d: dict, signed: bool = False) -> str:
    f = "+.4f" if signed else ".4f"
    if d["mean"] is None:
        return "n/a"
    return f"{d['mean']:{f}} [{d['ci95'][0]:{f}}, {d['ci95'][1]:{f}}]" if d["ci95"] else f"{d['mean']:{f}}"


def p_text(cmp: dict) -> str:
    p = cmp["wilcoxon_p_holm"] if cmp["wilcoxon_p_holm"] is not None else cmp["wilcoxon_p"]
    return f"{p:.2g}"


def detectable(cmp: dict) -> str:
    return f"±{cmp['detectable_diff']:.4f}" if cmp["detectable_diff"] else "n/a"


def variant_table(doc: dict) -> list:
    """Markdown rows: each variant's ACC and forgetting, and its paired differences from the baseline."""
    agg, base = doc["aggregate"], doc["config"]["models"][0]
    rows = ["| variant | seeds (failed) | ACC | forgetting | ACC − " + base + " | forgetting − " + base
            + " | Holm p (forgetting) | detectable | verdict (forgetting) |", "|---|---|---|---|---|---|---|---|---|"]
    for v, m in agg["variants"].items():
        line = f"| {v} | {m['n_seeds']} ({m['n_failed_left_out']}) | {ci(m['acc'])} | {ci(m['forgetting'])} |"
        if v == base:
            rows.append(line + " baseline | | | | |")
            continue
        acc, fgt = (agg["paired"]["metrics"][k][v] for k in ("acc", "forgetting"))
        if not m["n_seeds"]:
            reasons = sorted({r["summary"][v]["failed"]["reason"] for r in doc["per_seed"]})
            rows.append(line + f" n/a | n/a | | | every run failed ({', '.join(reasons)}) and is left out |")
            continue
        if not fgt["n_pairs"]:                  # joint training: no forgetting; the ACC comparison speaks
            rows.append(line + f" {ci(acc['diff'], True)} | n/a | {p_text(acc)} (ACC) | {detectable(acc)} (ACC) | "
                        f"{acc['verdict']} |")
            continue
        rows.append(line + f" {ci(acc['diff'], True)} | {ci(fgt['diff'], True)} | {p_text(fgt)} | {detectable(fgt)} "
                    f"| {fgt['verdict']} |")
    return rows


def write_text(path: Path, lines: list) -> None:
    c.write_atomic(path, lambda f: f.write(("\n".join(lines) + "\n").encode()))


def forest(ax, rows: list, title: str) -> None:
    """rows: (label, colour, describe-dict of a paired difference). Mean and 95% interval per row."""
    from matplotlib.ticker import MaxNLocator
    for i, (label, colour, d) in enumerate(rows):
        if d["mean"] is None:                   # every run failed, or the metric is undefined (joint training)
            ax.text(0.02, i, "n/a (failed runs or no such metric: see the table)", va="center", fontsize=8,
                    color="0.35", transform=ax.get_yaxis_transform(), bbox=dict(fc="white", ec="none", pad=1))
            continue
        lo, hi = d["ci95"] if d["ci95"] else (d["mean"], d["mean"])
        ax.plot([lo, hi], [i, i], color=colour, lw=2.5, solid_capstyle="butt")
        ax.plot(d["mean"], i, "o", color=colour, ms=6)
    ax.axvline(0, color="0.3", lw=1)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)                 # top to bottom, half a row of margin
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))


def save_figure(fig, path: Path) -> None:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    c.write_atomic(path, lambda f: f.write(buf.getvalue()))


# One colour per activation in every study figure (Okabe-Ito, as the main figures' first colours).
COLOURS = {"relu": "#D55E00", "lwta": "#0072B2", "topk": "#009E73", "maxout": "#E69F00", "kwinners": "#56B4E9",
           "sdm": "#CC79A7"}


def colour(variant: str) -> str:
    if ":sleep=1" in variant:
        return "#000000"                        # sleep replay: black, not its network's ReLU colour
    return COLOURS.get(variant.split(":")[0], "#555555")


def short_names(models: list) -> dict:
    """Variant specs without the keys all of them share (the setting's label says those)."""
    parts = [m.split(":") for m in models]
    shared = set.intersection(*[set(p[1:]) for p in parts]) if len(parts) > 1 else set()
    return {m: ":".join([p[0]] + [k for k in p[1:] if k not in shared]) for m, p in zip(models, parts)}


def study_figure(docs: dict, path: Path, title: str) -> None:
    """Forest plot of every variant against its run's baseline, per setting: forgetting and ACC differences
    (mean and 95% interval over the paired seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = {"forgetting": [], "acc": []}
    for label, doc in docs.items():
        base, short = doc["config"]["models"][0], short_names(doc["config"]["models"])
        for metric in rows:
            for v, cmp in doc["aggregate"]["paired"]["metrics"].get(metric, {}).items():
                pair = f"{short[v]} − {short[base]}"
                name = f"{label}: {pair}" if len(docs) > 1 else pair
                rows[metric].append((name, colour(v), cmp["diff"]))
    panels = [m for m in rows if rows[m]]
    height = 1.2 + 0.32 * max(len(rows[m]) for m in panels)
    labels = 0.3 + 0.062 * max(len(r[0]) for m in panels for r in rows[m])    # inches of 8.5-pt row labels
    width = 4.7 * len(panels) + labels
    fig, axes = plt.subplots(1, len(panels), figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=labels / width, right=0.98, top=1 - 0.55 / height,
                        bottom=0.55 / height + 0.05, wspace=0.08)
    for ax, metric in zip(axes[0], panels):
        forest(ax, rows[metric], "forgetting (> 0: forgets more than baseline)" if metric == "forgetting"
               else "ACC (> 0: higher accuracy than baseline)")
        if ax is not axes[0][0]:
            ax.set_yticklabels([])
    fig.suptitle(title, fontsize=11)
    save_figure(fig, path)


def write_study(study: str, title: str, docs: dict, notes: list) -> None:
    """summary.md (each setting's variant table) and figure.png of a study."""
    lines = [f"# {title}", ""] + notes
    for label, doc in docs.items():
        args, skip = doc["command"][2:], {"--run-dir", "--out", "--snapshots", "--workers"}
        cmd = " ".join(a for i, a in enumerate(args) if a != "--quiet" and a not in skip
                       and (i == 0 or args[i - 1] not in skip))
        lines += ["", f"## {label}", "", f"`python compete_to_compute.py {cmd}`", ""] + variant_table(doc)
    write_text(ROOT / "studies" / study / "summary.md", lines)
    study_figure(docs, ROOT / "studies" / study / "figure.png", title)
    print("\n".join(lines))
