"""What every study script shares: run one setting into its run folder, read the aggregate, tabulate, draw.

A study is a few settings (one command line each) run over the same seeds. Each setting's jobs go to
studies/runs/<folder>/ (not committed: one file per seed and variant), so an interrupted study resumes
where it stopped when its script is run again; the aggregate of each setting is committed as
studies/<study>/<setting>.json. The statistics are the module's own (paired, seed by seed).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import compete_to_compute as c  # noqa: E402

STUDIES = ROOT / "studies"         # each study's committed outputs: STUDIES/<study>/
RUNS = STUDIES / "runs"
WORKERS = int(os.environ.get("STUDY_WORKERS", len(os.sched_getaffinity(0))))
CORE_RATE = c.CORE_FLOPS            # matrix-product FLOP/s of one core here: the module's one constant
PROGRESS_EVERY_S = 30
OPTIONS = argparse.Namespace(seeds=None, workers=WORKERS, dry_run=False, redraw=False, only=None)


def positive_int(s: str) -> int:
    if not s.isdigit() or int(s) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s!r}")
    return int(s)


STOPPED_BY = []                    # the signal that stopped the study, once one has arrived


def stop_on_signal(signum, frame) -> None:
    """SIGINT or SIGTERM (Ctrl-C; kill, timeout or a job manager, often to this process alone): leave at once,
    through the `finally` blocks that pass the signal on to the running compete_to_compute.py and wait for it
    (run_setting) or terminate the pool's workers (tuning.run_pool). Nothing is written after it; outputs are
    written whole or not at all. A second signal while the children stop is ignored."""
    if not STOPPED_BY:
        STOPPED_BY.append(signum)
        if c.WRITING:                           # a file is being written: it finishes first (c.signals_held
            c.WRITING[-1] = signum              # then raises c.Interrupted, which written() turns into the exit)
            return
        raise SystemExit(128 + signum)


@contextmanager
def written():
    """Around this process's file writes: a signal that arrived during one stops the study right after it,
    so no temporary file is left behind."""
    try:
        yield
    except c.Interrupted as e:
        raise SystemExit(e.code) from None


def say_stopped() -> None:
    """At exit, once every child has stopped: what the signal did, in one line."""
    if STOPPED_BY:
        print(f"interrupted by {signal.Signals(STOPPED_BY[0]).name}: stopped every running job and waited for it; "
              f"nothing more was written (finished jobs are kept in {RUNS}: running the study again resumes)",
              file=sys.stderr, flush=True)


def stop_child(proc: subprocess.Popen) -> None:
    """A child still running when the study stops (a signal, or an error here) gets the signal (SIGTERM if
    none) and is waited for: it stops within a minibatch, writes nothing, and does not outlive the study."""
    if proc.poll() is None:
        proc.send_signal(STOPPED_BY[0] if STOPPED_BY else signal.SIGTERM)
        proc.wait()


def parse_study_args(doc: str, argv: list | None = None, extra=None) -> argparse.Namespace:
    """Every study script's command line (`extra(parser)` adds a study's own flags). Nothing runs before it
    has been read. Read from the script's own command line (argv None), it also makes SIGINT and SIGTERM
    stop the study and everything it started (stop_on_signal)."""
    p = c.Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="seeds per setting (the evaluation seeds of a tuned study) instead of the study's own; "
                        "the outputs then hold that many")
    p.add_argument("--workers", type=positive_int, default=WORKERS,
                   help="parallel jobs (default: all available cores, here %(default)s; or $STUDY_WORKERS)")
    p.add_argument("--dry-run", action="store_true",
                   help="print each setting's command line and estimated cost; run nothing, write nothing")
    p.add_argument("--redraw", action="store_true",
                   help="rebuild the study's tables and figures from its committed aggregates; run nothing (a tuned "
                        "study's frontier.png is drawn from its run folders and is kept)")
    p.add_argument("--only", type=lambda s: set(s.split(",")), default=None, metavar="SETTING[,SETTING]",
                   help="run only these settings (their names as in the study's outputs, e.g. sdm_200_epochs); the "
                        "others are read from their committed results, as with --redraw")
    if extra:
        extra(p)
    parsed = vars(p.parse_args(argv))
    OPTIONS.__dict__.clear()                    # the options are this command line's, wholly: a study's own
    OPTIONS.__dict__.update(parsed)             # flags (--loo, --rules) never outlive the line that set them
    if argv is None:                            # run as a program: a signal stops it and everything it started
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, stop_on_signal)
        atexit.register(say_stopped)
    return OPTIONS


def check_only(labels: list) -> None:
    """--only names settings of this study (as its outputs name them): a typo stops the study before any work."""
    unknown = sorted((OPTIONS.only or set()) - set(labels))
    if unknown:
        print(f"argument --only: no setting {', '.join(unknown)} in this study; its settings: {', '.join(labels)}",
              file=sys.stderr)
        sys.exit(2)                             # a bad flag, as argparse exits


def duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def setting_config(args: list, seeds: int) -> dict:
    return c.parse_config([*args, "--seed", "0", "--n-seeds", str(seeds), "--quiet"])[0]


def setting_cost(args: list, seeds: int) -> tuple:
    """(jobs, FLOPs) of one setting, from the module's own count (it reads the data set: the task sizes)."""
    config = setting_config(args, seeds)
    return seeds * len(config["models"]), c.count_flops(config, c.task_table(config))["total"]


def setting_cost_text(args: list, seeds: int, kept: Path | None) -> str:
    """What a setting costs, and what is left of it given the jobs committed in `kept`. It counts the data
    set's images, so --redraw (committed outputs only, no data set needed) does not ask for it."""
    jobs, flops = setting_cost(args, seeds)
    done = min(finished_jobs(kept, seeds), jobs) if kept else 0
    left = (f"; {done} finished jobs committed in studies/{'/'.join(kept.parts[-3:])}"
            + (f", {cost_text(jobs - done, flops * (jobs - done) / jobs)} left" if done < jobs else "")) if done else ""
    return cost_text(jobs, flops) + left


def cost_text(jobs: int, flops: float) -> str:
    cores = min(OPTIONS.workers, jobs)
    return (f"{jobs} jobs, {flops / 1e12:.1f} TFLOP, about {duration(flops / (CORE_RATE * cores))} on {cores} "
            f"core(s) at {CORE_RATE / 1e9:.0f} GFLOP/s each")


def finished_jobs(folder: Path, seeds: int) -> int:
    return sum(1 for p in folder.glob("seed*.json") if int(p.name[4:9]) < seeds)


def finished_setting(out: Path, kept: Path, args: list, seeds: int) -> bool:
    """Whether a kept setting's aggregate holds these settings and seeds and every job is committed: then a study
    run for its other settings reads it rather than aggregating it again (which would rewrite its timings
    and commit with those of a run that trained nothing)."""
    if not out.is_file():
        return False
    held, config = json.loads(out.read_text())["config"], setting_config(args, seeds)
    same = c.settings_digest(c.experiment_settings(held)) == c.settings_digest(c.experiment_settings(config))
    return (same and (held["seed"], held["n_seeds"]) == (0, seeds)
            and finished_jobs(kept, seeds) >= seeds * len(config["models"]))


def kept_folder(study: str, label: str) -> Path:
    """Where a long study commits its finished job files: studies/<study>/jobs/<label>/ (small JSON)."""
    return STUDIES / study / "jobs" / label


WEIGHTS = ("/units/W1", "/units/W1_init")   # a headline job's weight arrays: the units figure's, not a study's


def inline_arrays(doc, arrays: dict):
    """A job document whose {"npz": path} references hold their arrays inline, as JSON (dtype, shape, values;
    NaN as null), leaving out the first layer's weights."""
    if isinstance(doc, dict) and set(doc) == {"npz"}:
        a = arrays[doc["npz"]]
        values = [None if isinstance(x, float) and x != x else x for x in a.ravel().tolist()]
        return {"inline": {"path": doc["npz"], "dtype": a.dtype.str, "shape": list(a.shape), "values": values}}
    if isinstance(doc, dict):
        return {k: inline_arrays(v, arrays) for k, v in doc.items()
                if not (isinstance(v, dict) and v.get("npz") in WEIGHTS)}
    return doc


def outline_arrays(doc, arrays: dict):
    """inline_arrays undone: the job document with {"npz": path} references, its arrays collected in `arrays`."""
    if isinstance(doc, dict) and set(doc) == {"inline"}:
        a = doc["inline"]
        values = [np.nan if x is None else x for x in a["values"]]
        arrays[a["path"]] = np.array(values, dtype=np.dtype(a["dtype"])).reshape(a["shape"])
        return {"npz": a["path"]}
    return {k: outline_arrays(v, arrays) for k, v in doc.items()} if isinstance(doc, dict) else doc


def kept_text(path: Path) -> bytes:
    """A finished job file as it is committed: as it is, or, for a job with arrays (the headline seed's curves
    and firing frequencies), with those inline and without its weights (several MB, read only by the figures
    of the main program's own run)."""
    npz = path.with_suffix(".npz")
    if not npz.exists():
        return path.read_bytes()
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.dumps(inline_arrays(json.loads(path.read_text()), arrays), allow_nan=False).encode()


def restore_jobs(kept: Path, runs: Path) -> int:
    """Put the committed job files (and their run.json) into the run folder where it lacks them, so a study
    that did not finish in one sitting goes on where it stopped, on any machine; a headline job gets its
    arrays back in its .npz. The module checks each file against the settings as usual (a job of other
    settings is refused, never reused)."""
    if not kept.is_dir():
        return 0
    runs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in sorted(kept.glob("*.json")) if not (runs / p.name).exists()]
    for p in sorted(missing, key=lambda p: p.name != c.RUN_FILE):          # run.json first
        arrays = {}
        doc = outline_arrays(json.loads(p.read_text()), arrays)
        if arrays:                                                         # arrays first, as the module does
            c.write_atomic(runs / (p.stem + ".npz"), c.npz_writer(arrays))
            text = json.dumps(doc, allow_nan=False).encode()
            c.write_atomic(runs / p.name, lambda f, t=text: f.write(t))
        else:
            c.write_atomic(runs / p.name, lambda f, p=p: f.write(p.read_bytes()))
    return len(missing)


def keep_jobs(runs: Path, kept: Path) -> int:
    """Copy the run folder's finished jobs (kept_text) and its run.json into the committed folder.
    Checkpoints, .npz files and weights stay out of git."""
    files = sorted(runs.glob("seed*.json")) + [runs / c.RUN_FILE]
    texts = {p.name: kept_text(p) for p in files if p.is_file()}
    new = {name: t for name, t in texts.items() if not (kept / name).is_file() or (kept / name).read_bytes() != t}
    if new:
        kept.mkdir(parents=True, exist_ok=True)
    for name, text in new.items():
        c.write_atomic(kept / name, lambda f, t=text: f.write(t))
    return len(new)


def refresh_statistics(groups: list, path: Path, doc: dict) -> None:
    """--redraw: each stored group of paired comparisons (comparisons, metric, baseline) Holm-adjusted again
    with this code's statistics (verdicts, reachability, detectable differences; the per-seed differences and
    their p-values are what the run stored), and the file rewritten if that changed it."""
    before = json.dumps(doc, indent=1, allow_nan=False)
    for comparisons, metric, base in groups:
        if comparisons:
            c.add_holm(comparisons, metric, base)
    if json.dumps(doc, indent=1, allow_nan=False) != before:
        write_text(path, [json.dumps(doc, indent=1, allow_nan=False)])


def aggregate_groups(agg: dict | None) -> list:
    """The groups of a module results document's aggregate (one per compared metric), for refresh_statistics."""
    if not agg:
        return []
    return [(group, metric, agg["paired"]["baseline"]) for metric, group in agg["paired"]["metrics"].items()]


def run_setting(study: str, label: str, args: list, seeds: int, folder: str | None = None,
                missing_ok: bool = False, keep: bool = False) -> dict | None:
    """Run (or resume) one setting over seeds 0..seeds-1 and return its aggregated results.json, showing
    progress (jobs done, time, time left) while it runs. With --dry-run or --redraw, print the command and
    its cost and return the committed aggregate instead; if there is none, stop (or with `missing_ok`, say
    the setting is skipped and return None).

    `folder` lets two studies share the jobs of an identical setting (same flags, same seeds). With `keep`,
    finished job files are committed (kept_folder) and restored from there, also when the study is stopped."""
    seeds = OPTIONS.seeds or seeds
    runs = RUNS / (folder or f"{study}/{label}")
    out = STUDIES / study / f"{label}.json"
    kept = kept_folder(study, label)
    print(f"[{study}] {label}: python compete_to_compute.py {' '.join(args)} --n-seeds {seeds}"
          + ("" if OPTIONS.redraw else f"  ({setting_cost_text(args, seeds, kept if keep else None)})"), flush=True)
    committed = OPTIONS.dry_run or OPTIONS.redraw or (OPTIONS.only is not None and label not in OPTIONS.only)
    if keep and not committed and finished_setting(out, kept, args, seeds):
        print(f"[{study}] {label}: every job is committed and aggregated; read from studies/{study}/{out.name} "
              "(delete it to aggregate the jobs again)", flush=True)
        committed = True
    if keep and not committed:
        restore_jobs(kept, runs)
    if committed:
        if not out.is_file() and missing_ok:
            print(f"[{study}] {label}: skipped, studies/{study}/{out.name} does not exist yet (not run)", flush=True)
            return None
        if not out.is_file():
            sys.exit(f"[{study}] {'dry run' if OPTIONS.dry_run else 'redraw'}: {out} does not exist yet, and what "
                     "follows depends on it; stopping here")
        doc = json.loads(out.read_text())
        refresh_statistics(aggregate_groups(doc["aggregate"]), out, doc)
        return doc
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / "compete_to_compute.py"), *args, "--seed", "0", "--n-seeds", str(seeds),
           "--run-dir", str(runs), "--out", str(out), "--snapshots", str(runs / "snapshots.npz"), "--quiet",
           "--workers", str(OPTIONS.workers)]
    jobs = seeds * len(setting_config(args, seeds)["models"])          # (the cost was counted above)
    t0, start = time.perf_counter(), finished_jobs(runs, seeds)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            try:
                proc.wait(timeout=PROGRESS_EVERY_S)
            except subprocess.TimeoutExpired:
                done, elapsed = finished_jobs(runs, seeds), time.perf_counter() - t0
                left = (f", about {duration(elapsed / (done - start) * (jobs - done))} left" if done > start else "")
                print(f"[{study}] {label}: {done}/{jobs} jobs, {duration(elapsed)}{left}", flush=True)
    finally:
        stop_child(proc)
        if keep:
            keep_jobs(runs, kept)
    if proc.returncode not in (0, 3):           # 3: finished, some runs failed (counted in the results)
        sys.exit(f"[{study}] {label}: compete_to_compute.py exited {proc.returncode}")
    return json.loads(out.read_text())


def seed_count(*docs) -> str:
    """How many seeds the aggregates hold ("20", or "1-3" when settings differ): titles say what ran."""
    n = sorted({len(d["seeds"]) for d in docs})
    return str(n[0]) if len(n) == 1 else f"{n[0]}-{n[-1]}"


def per_seed(doc: dict, variant: str, metric: str) -> dict:
    """seed -> metric value of one variant, failed runs included (what they scored is their outcome)."""
    return {r["seed"]: r["summary"][variant][metric] for r in doc["per_seed"]
            if r["summary"][variant].get(metric) is not None}


def paired_across(doc_a: dict, doc_b: dict, variant_a: str, variant_b: str, metric: str) -> dict:
    """B minus A on the seeds both ran: the effect of a setting (or variant) on one metric."""
    a, b = ({r["seed"]: r["summary"][v] for r in doc["per_seed"]} for doc, v in ((doc_a, variant_a), (doc_b, variant_b)))
    seeds = sorted(set(a) & set(b))
    return c.compare_runs([b[s] for s in seeds], [a[s] for s in seeds], metric, metric != "forgetting",
                          variant_b, variant_a)


# An ablation: named cells, each a (results document, variant) pair; cells of one study share their seeds,
# so any two are compared seed by seed, also across settings (run folders) of the same seeds.
ABLATION_METRICS = (("acc", "ACC"), ("forgetting", "forgetting"), ("learning_acc", "learning accuracy"))


def failures(cell: tuple) -> str:
    doc, v = cell
    return f"{sum(bool(r['summary'][v]['failed']) for r in doc['per_seed'])} of {len(doc['per_seed'])}"


def cell_comparisons(cells: dict, base, names: list) -> dict:
    """{metric: {name: cell `name` minus its base cell}}, seed by seed over every seed (a failed run at what it
    scored), Holm over `names` per metric. `base`: one cell for all, or {name: its own base cell} (one
    ingredient's effect measured within each setting)."""
    bases = base if isinstance(base, dict) else dict.fromkeys(names, base)
    return {metric: c.add_holm({n: paired_across(cells[bases[n]][0], cells[n][0], cells[bases[n]][1], cells[n][1],
                                                 metric) for n in names}, metric, base_name(base))
            for metric, _ in ABLATION_METRICS}


def base_name(base) -> str:
    return base if isinstance(base, str) else "its pair"


def cell_table(cells: dict, base: str | dict, names: list, title: str, cmp: dict | None = None) -> list:
    """A markdown section: each cell's paired differences from `base` on every metric, with the Holm p
    (`cmp`: those comparisons if already made, as cell_comparisons makes them)."""
    cmp = cmp or cell_comparisons(cells, base, names)
    rows = [f"### {title}", "", f"Cell − {base_name(base)}, paired by seed over every seed, a failed run at what it "
            "scored (mean, 95% t interval, Holm-adjusted exact Wilcoxon p over this table's rows, per metric; "
            "'undecidable': no p < 0.05 is reachable at this number of seeds after the correction).", "",
            "| cell | failed | " + " | ".join(f"{name} − {base_name(base)}" for _, name in ABLATION_METRICS) + " |",
            "|---|---|" + "---|" * len(ABLATION_METRICS)]
    for n in names:
        parts = []
        for metric, _ in ABLATION_METRICS:
            x = cmp[metric][n]
            p = "undecidable" if not x["can_reach_005"] else f"p {x['wilcoxon_p_holm']:.2g}"
            parts.append(f"{ci(x['diff'], True)} ({p})" if x["n_pairs"] else "n/a")
        label = n if isinstance(base, str) else f"{n} − {base[n]}"
        rows.append(f"| {label} | {failures(cells[n])} | " + " | ".join(parts) + " |")
    return rows


def cell_summary(cells: dict, specs: bool = True) -> list:
    """A markdown table of every cell alone: seeds, ACC, forgetting, learning accuracy (mean, 95% interval)."""
    rows = ["| cell | variant | seeds (failed) | ACC | forgetting | learning accuracy |", "|---|---|---|---|---|---|"]
    for n, (doc, v) in cells.items():
        runs = [r["summary"][v] for r in doc["per_seed"]]
        d = {m: c.describe([s[m] for s in runs], c.BOUNDS[m]) for m in ("acc", "forgetting", "learning_acc")}
        rows.append(f"| {n} | `{v}` | {len(runs)} ({sum(bool(s['failed']) for s in runs)}) | {ci(d['acc'])} | "
                    f"{ci(d['forgetting'])} | {ci(d['learning_acc'])} |")
    return rows


def ablation_figure(cells: dict, panels: list, title: str, path: Path) -> None:
    """One forest panel per (panel title, base cell, cells): ACC differences from the base, paired by seed, on
    one shared scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    heights = [len(names) + 1.5 for _, _, names in panels]
    longest = max(len(n) for _, _, names in panels for n in names) + 12
    left = min(0.5, 0.3 + 0.0085 * longest)
    axes_in, gap_in, top_in, bottom_in = 0.3 * sum(heights), 0.85, 0.9, 0.6      # inches: a gap holds a panel's
    height = axes_in + gap_in * (len(panels) - 1) + top_in + bottom_in          # x label and the next title
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.4, height), sharex=True,
                             gridspec_kw={"height_ratios": heights}, squeeze=False)   # one scale: sizes compare
    fig.subplots_adjust(left=left, right=0.97, top=1 - top_in / height, bottom=bottom_in / height,
                        hspace=gap_in / (axes_in / len(panels)))
    for ax, (panel, base, names) in zip(axes[:, 0], panels):
        cmp = cell_comparisons(cells, base, names)["acc"]
        labels = [f"{n} ({failures(cells[n]).split()[0]} failed)" if not failures(cells[n]).startswith("0 ")
                  else n for n in names]
        forest(ax, [(label, colour_family(cells[n][1])[0], cmp[n]["diff"]) for label, n in zip(labels, names)],
               panel)                   # rows are named; colour says only the activation (many cells share one)
        ax.set_xlabel("difference in ACC (mean, 95% interval over the paired seeds)", fontsize=8)
        ax.tick_params(labelbottom=True)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def verdict_word(cmp: dict, words: tuple) -> str:
    """**more**/**less** (or above/below) at Holm p < 0.05; 'undecidable' where no p < 0.05 is reachable at
    this number of seeds after the correction; else n.s."""
    p = cmp["wilcoxon_p_holm"]
    if p is not None and p < 0.05:
        return words[0] if cmp["diff"]["mean"] > 0 else words[1]
    return "n.s." if cmp["can_reach_005"] else "undecidable"


def ci(d: dict, signed: bool = False) -> str:
    f = "+.4f" if signed else ".4f"
    if d["mean"] is None:
        return "n/a"
    return f"{d['mean']:{f}} [{d['ci95'][0]:{f}}, {d['ci95'][1]:{f}}]" if d["ci95"] else f"{d['mean']:{f}}"


def p_text(cmp: dict) -> str:
    p = cmp["wilcoxon_p_holm"] if cmp["wilcoxon_p_holm"] is not None else cmp["wilcoxon_p"]
    return f"{p:.2g}"


def detectable(cmp: dict, digits: int = 4) -> str:
    """What the test in use would have detected; 'undecidable' where it cannot reach p < 0.05 at all."""
    if cmp["detectable_diff"]:
        return f"±{cmp['detectable_diff']:.{digits}f}"
    return "undecidable" if not cmp["can_reach_005"] else "n/a"


def without_failed(cmp: dict) -> str | None:
    """The secondary reading of a comparison in which a side failed on some seed: the difference over the
    other seeds (unadjusted), or None where nobody failed."""
    w = cmp.get("without_failed")
    if w is None:
        return None
    if not w["n_pairs"]:
        return "no seed on which neither side failed"
    return f"{ci(w['diff'], True)} on {w['n_pairs']} pairs (exact Wilcoxon p {w['wilcoxon_p']:.2g}, unadjusted)"


def failures_said(doc: dict, variant: str, m: dict) -> str:
    """What a verdict must add when its variant failed on some seeds: how often and how (a diverged run's
    forgetting, at chance, is a number like any other, and the verdict alone would not say why)."""
    if not m["n_failed"]:
        return ""
    reasons = sorted({r["summary"][variant]["failed"]["reason"] for r in doc["per_seed"] if r["summary"][variant]["failed"]})
    return f"; {variant} {failed_count(m)} seeds ({', '.join(reasons)})"


def failed_count(m: dict) -> str:
    """"failed on n of N" for a variant's aggregate that failed on some seeds, else nothing."""
    return f"failed on {m['n_failed']} of {m['n_seeds']}" if m["n_failed"] else ""


def variant_table(doc: dict) -> list:
    """Markdown rows: each variant's ACC, forgetting and learning accuracy (forgetting is read beside how well
    each task was learned), and its paired differences from the baseline over every seed (failed runs at
    what they scored), then a footnote for each comparison in which a side failed: the difference without
    those seeds, a secondary reading."""
    agg, base = doc["aggregate"], doc["config"]["models"][0]
    rows = ["| variant | seeds (failed) | ACC | forgetting | learning acc. | ACC − " + base + " | forgetting − " + base
            + " | Holm p (forgetting) | detectable | verdict (forgetting) |", "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for v, m in agg["variants"].items():
        learned = "n/a" if m["learning_acc"]["mean"] is None else f"{m['learning_acc']['mean']:.4f}"
        line = f"| {v} | {m['n_seeds']} ({m['n_failed']}) | {ci(m['acc'])} | {ci(m['forgetting'])} | {learned} |"
        if v == base:
            rows.append(line + " baseline | | | | |")
            continue
        acc, fgt = (agg["paired"]["metrics"][k][v] for k in ("acc", "forgetting"))
        notes += [f"- {v} − {base}, {name} without the seeds where a side failed (secondary): {text}"
                  for name, x in (("ACC", acc), ("forgetting", fgt)) if (text := without_failed(x))]
        said = fgt if fgt["n_pairs"] else acc   # joint training: no forgetting; the ACC comparison speaks
        verdict = said["verdict"] + failures_said(doc, v, m)
        if not fgt["n_pairs"]:
            rows.append(line + f" {ci(acc['diff'], True)} | n/a | {p_text(acc)} (ACC) | {detectable(acc)} (ACC) | "
                        f"{verdict} |")
            continue
        rows.append(line + f" {ci(acc['diff'], True)} | {ci(fgt['diff'], True)} | {p_text(fgt)} | {detectable(fgt)} "
                    f"| {verdict} |")
    return rows + ([""] + notes if notes else [])


def write_text(path: Path, lines: list) -> None:
    if OPTIONS.dry_run:
        return
    with written():
        c.write_atomic(path, lambda f: f.write(("\n".join(lines) + "\n").encode()))


def show(lines: list) -> None:
    """Print a study's tables, unless this is a dry run (which prints only the plan)."""
    if not OPTIONS.dry_run:
        print("\n".join(lines))


def forest(ax, rows: list, title: str) -> None:
    """rows: (label, colour, describe-dict of a paired difference). Mean and 95% interval per row; a row whose
    dict says `failed` (a side failed on some seeds: its label says how often) has a hollow mean, and one
    without a mean shows its `band` (the range of means over several choices, a bar with end ticks and no
    point) or else its `note` (default: the metric is undefined, as forgetting under joint training)."""
    from matplotlib.ticker import MaxNLocator
    for i, (label, colour, d) in enumerate(rows):
        if d["mean"] is None and d.get("band"):
            ax.plot(d["band"], [i, i], color=colour, lw=5, alpha=0.35, solid_capstyle="butt")
            ax.plot(d["band"], [i, i], "|", color=colour, ms=9, mew=1.5)
            continue
        if d["mean"] is None:
            ax.text(0.02, i, d.get("note", "n/a (no such metric: see the table)"), va="center", fontsize=8,
                    color="0.35", transform=ax.get_yaxis_transform(), bbox=dict(fc="white", ec="none", pad=1))
            continue
        lo, hi = d["ci95"] if d["ci95"] else (d["mean"], d["mean"])
        ax.plot([lo, hi], [i, i], color=colour, lw=2.5, solid_capstyle="butt")
        ax.plot(d["mean"], i, "o", color=colour, ms=6, **({"mfc": "white", "mew": 1.5} if d.get("failed") else {}))
    ax.axvline(0, color="0.3", lw=1)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)                 # top to bottom, half a row of margin
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))


def save_figure(fig, path: Path) -> None:
    """Write the figure (not in a dry run) and close it: a script that draws many keeps none open."""
    import io
    import matplotlib.pyplot as plt
    if not OPTIONS.dry_run:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        c.write_atomic(path, lambda f: f.write(buf.getvalue()))
    plt.close(fig)


# One colour per variant in every figure: the figure script's mapping (by spec, never by position).
from visualize_compete_to_compute import colour_family, variant_color as colour  # noqa: E402


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
    fig.subplots_adjust(left=labels / width, right=0.98, top=1 - 0.6 / height, bottom=0.33 / height, wspace=0.08)
    for ax, metric in zip(axes[0], panels):
        forest(ax, rows[metric], "forgetting (> 0: forgets more than baseline)" if metric == "forgetting"
               else "ACC (> 0: higher accuracy than baseline)")
        if ax is not axes[0][0]:
            ax.set_yticklabels([])
    fig.suptitle(title, fontsize=11)
    save_figure(fig, path)


def write_study(study: str, title: str, docs: dict, notes: list, figure: bool = True) -> None:
    """summary.md (each setting's variant table) and, unless the study draws its own, figure.png."""
    lines = [f"# {title}", ""] + notes
    for label, doc in docs.items():
        args, skip = doc["command"][2:], {"--run-dir", "--out", "--snapshots", "--workers"}
        cmd = " ".join(a for i, a in enumerate(args) if a != "--quiet" and a not in skip
                       and (i == 0 or args[i - 1] not in skip))
        lines += ["", f"## {label}", "", f"`python compete_to_compute.py {cmd}`", ""] + variant_table(doc)
    write_text(ROOT / "studies" / study / "summary.md", lines)
    if figure:
        study_figure(docs, ROOT / "studies" / study / "figure.png", title)
    show(lines)
