"""Verdicts that survive tuning: a search per variant, two selection rules, evaluation, and the frontier.

A tuned study is one setting (the flags of a fixed-rate study) and a list of variants. It runs in three
steps, each resumable, all jobs in one process pool (no interpreter start per job):

1. Search. The same random configurations for every variant (so configurations are paired as seeds are):
   configuration 0 is the setting's own fixed hyperparameters (lr 0.05, momentum 0.9, its epochs), the
   rest are drawn from SEARCH_SEED: learning rate log-uniform in LR_RANGE, momentum in MOMENTA, epochs
   per task in EPOCHS. Every (configuration, variant) runs on the tuning seeds (from TUNE_SEED on, never
   evaluation seeds) with validation images held out of the training images (--val-per-class).
2. Selection, on validation accuracy only, averaged over the tuning seeds, per variant:
   first - the best accuracy on task 1 right after task 1 (what a user who has only task 1 can do);
   all   - the best ACC at the end (mean over tasks; the optimistic rule most papers use).
   A configuration that failed (diverged or learned nothing) on any tuning seed is never selected; ties
   go to the configuration drawn first.
3. Evaluation: each variant at its own selected configuration on seeds 0..19, test data, paired by seed
   with the module's statistics (ACC, forgetting, Holm over the variants, detectable difference).

The frontier (Goodfellow et al. 2014): per variant and tuning seed, every (configuration, epoch of the
last task) gives a point (new-task validation accuracy, mean old-task validation accuracy); its upper
envelope is the best old-task accuracy reachable at each new-task accuracy. Every variant's envelope is
a maximum over the same configurations, so the upward bias of taking a maximum is the same for all.

Jobs go to studies/runs/<study>/c<NN>/ (one module run folder per configuration; the jobs of search and
evaluation share it, since holding images out for validation leaves the training data unchanged).
"""
from __future__ import annotations

import json
import math
import multiprocessing
import sys
import time

import numpy as np

from common import (CORE_RATE, OPTIONS, ROOT, RUNS, aggregate_groups, c, colour, cost_text, duration,
                    refresh_statistics, save_figure, short_names, variant_table, verdict_word, write_text, written)

SEARCH_SEED = 2026
LR_RANGE = (0.002, 0.2)              # two decades around the fixed rate 0.05
MOMENTA = (0.0, 0.5, 0.9)
EPOCHS = (2, 5, 10)
TUNE_SEED = 1000                     # tuning seeds are TUNE_SEED, TUNE_SEED + 1, ...; evaluation seeds 0..19
EVAL_SEEDS = 20
RULES = {"first": "first task only: best validation accuracy on task 1 after task 1",
         "all": "all tasks: best validation ACC at the end"}
FIXED = "fixed"                      # configuration 0 for every variant: the setting's fixed hyperparameters
LOO = "loo"                          # with --loo: each evaluation seed at the pick of the other evaluation seeds
LOO_TEXT = ("leave one seed out: on each evaluation seed, the best validation ACC at the end averaged over the "
            "other evaluation seeds (every configuration run on every evaluation seed)")
BAND = 3                             # with --band: each variant's best BAND configurations on every evaluation seed
FRONTIER_SPAN = 0.10                 # the frontier statistic averages the envelope over this new-task span
FRONTIER_METRIC = "old-task accuracy at matched new-task accuracy"


# ---------------------------------------------------------------------------- search space
def configurations(n: int, epochs: int) -> list:
    """The first n configurations: 0 is the fixed setting, the rest random draws. Each draw depends only
    on its index, so a shorter search is a prefix of a longer one."""
    rng = np.random.default_rng(SEARCH_SEED)
    out = [{"lr": 0.05, "momentum": 0.9, "epochs": epochs}]
    lo, hi = (math.log10(x) for x in LR_RANGE)
    while len(out) < n:
        out.append({"lr": float(f"{10 ** rng.uniform(lo, hi):.3g}"), "momentum": float(rng.choice(MOMENTA)),
                    "epochs": int(rng.choice(EPOCHS))})
    return out


def config_args(cfg: dict) -> list:
    return ["--lr", str(cfg["lr"]), "--momentum", str(cfg["momentum"]), "--epochs", str(cfg["epochs"])]


def describe_config(cfg: dict) -> str:
    return f"lr {cfg['lr']:g}, momentum {cfg['momentum']:g}, {cfg['epochs']} epochs"


# ---------------------------------------------------------------------------- jobs
def job_config(args: list, variants: list, cfg: dict, val: int) -> dict:
    config, _ = c.parse_config([*args, *config_args(cfg), "--models", ",".join(variants),
                                "--val-per-class", str(val), "--workers", "1"])
    return config


def search_stores(folder, job_configs: list) -> list:
    """One run folder per configuration for the search jobs, which read no test image (a search is chosen on
    validation images alone, and its jobs need not pay for testing); `folder`/c00-search, ..."""
    return [c.RunDir(folder / f"c{i:02d}-search", {**jc, "no_test": True}) for i, jc in enumerate(job_configs)]


def run_pool(jobs: list, progress: str) -> None:
    """Run (store, seed, variant, config) jobs in WORKERS processes, saving each as it finishes."""
    if not jobs:
        return
    t0, saved = time.perf_counter(), 0
    work = [(seed, spec, config, False) for _, seed, spec, config in jobs]
    pool = multiprocessing.get_context("spawn").Pool(min(OPTIONS.workers, len(work)), initializer=c._worker_init)
    try:
        for done, (r, job) in enumerate(zip(pool.imap(c._worker_run, work), jobs), 1):  # in order: job -> store
            with written():
                job[0].save(r)
            saved = done
            if done % 20 == 0 or done == len(work):
                elapsed = time.perf_counter() - t0
                print(f"  {progress}: {done}/{len(work)} jobs, {duration(elapsed)}, about "
                      f"{duration(elapsed / done * (len(work) - done))} left", flush=True)
        pool.close()
    except KeyboardInterrupt:                   # Ctrl-C (the workers ignore it): one line, not a traceback
        print(f"interrupted: stopped; {saved} of {len(work)} {progress} jobs saved in {RUNS.relative_to(ROOT)}/, "
              "no study output written; run the study again to resume", file=sys.stderr)
        sys.exit(130)
    finally:
        pool.terminate()
        pool.join()


def pending(store, config: dict, seeds: list, variants: list) -> list:
    return [(store, s, v, config) for s in seeds for v in variants if not store.load(s, v, headline=False)]


# ---------------------------------------------------------------------------- selection
def job_scores(summary: dict) -> dict:
    """The validation numbers a selection rule reads from one job (None for a failed job)."""
    if summary["failed"]:
        return {rule: None for rule in RULES}
    val = summary["val_R"]
    return {"first": val[0][0], "all": float(np.mean(val[-1]))}


def rule_scores(table: dict, rule: str) -> dict:
    """{configuration: [per-seed job scores]} -> {configuration: mean score, or None if any seed failed}."""
    return {i: None if any(s[rule] is None for s in seeds) else float(np.mean([s[rule] for s in seeds]))
            for i, seeds in table.items()}


def select(scores: dict) -> int | None:
    """The configuration with the best score; ties to the lowest index; failed (None) never; None if all failed."""
    ok = [(-s, i) for i, s in scores.items() if s is not None]
    return min(ok)[1] if ok else None


def leave_one_out(table: dict, variants: list, seeds: list, rule: str = "all") -> dict | None:
    """Selection inside the paired test. For each evaluation seed s, each variant at the configuration whose
    validation score (`rule`), averaged over the *other* evaluation seeds, is best (rule_scores and select,
    so failures and ties as there), tested on s: the choice never sees the seed it is tested on, and its own
    noise is in the per-seed differences the Wilcoxon test reads. table[v][i][s]: the job summary of every
    configuration i on every evaluation seed (run with validation images); configurations not finished on
    every seed take no part. Returns the per-seed summaries, their aggregate, and how often each configuration
    was chosen per variant; None without the first variant."""
    full = {v: {i: runs for i, runs in table[v].items() if all(s in runs for s in seeds)} for v in variants}
    picks = {v: {s: select(rule_scores({i: [job_scores(runs[t]) for t in seeds if t != s]
                                        for i, runs in full[v].items()}, rule)) for s in seeds} for v in variants}
    ok = [v for v in variants if all(picks[v][s] is not None for s in seeds)]
    if variants[0] not in ok:
        return None
    runs = [{"seed": s, "summary": {v: full[v][picks[v][s]][s] for v in ok}} for s in seeds]
    chosen = {v: {str(i): sum(p == i for p in picks[v].values()) for i in sorted(set(picks[v].values()) - {None})}
              for v in variants}
    return {"per_seed": runs, "aggregate": c.aggregate(runs, ok), "left_out": [v for v in variants if v not in ok],
            "chosen": chosen}


# ---------------------------------------------------------------------------- frontier
def frontier_points(summary: dict) -> np.ndarray:
    """(new-task, mean old-task) validation accuracy after each epoch of the last task; none if diverged."""
    if c.failed_because(summary["failed"], "diverged"):
        return np.zeros((0, 2))
    rows = np.array(summary["val_last"], dtype=float)
    return np.stack([rows[:, -1], rows[:, :-1].mean(axis=1)], axis=1)


def envelope(points: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Upper envelope: at each new-task accuracy x of the grid, the best old-task accuracy of the points
    whose new-task accuracy is at least x (NaN where no point reaches x)."""
    order = np.argsort(-points[:, 0], kind="stable")
    new, best_old = points[order, 0], np.maximum.accumulate(points[order, 1])
    reach = np.searchsorted(-new, -np.asarray(grid, dtype=float), side="right")   # points with new >= x
    return np.where(reach > 0, best_old[np.maximum(reach - 1, 0)], np.nan)


def frontier(points: dict, variants: list, floor: float | None = None) -> dict | None:
    """points[variant][seed] -> the paired frontier statistic: mean envelope over a new-task span, variant
    against the first, seed by seed (Holm over variants). The span ends at the highest new-task accuracy every
    variant reaches on every seed and starts FRONTIER_SPAN below it, or lower, at `floor` (the lowest
    operating point a selection chose), so that it covers every chosen point. Variants with no point (none
    of their configurations was chosen) are left out and named."""
    missing = [v for v in variants if not any(len(p) for p in points[v].values())]
    if variants[0] in missing or len(missing) == len(variants) - 1:
        return None
    variants = [v for v in variants if v not in missing]
    top = min(p[:, 0].max() for v in variants for p in points[v].values() if len(p))
    grid = np.linspace(min(top - FRONTIER_SPAN, top if floor is None else floor), top, 21)
    seeds = sorted(set.intersection(*[{s for s, p in points[v].items() if len(p)} for v in variants]))
    stat = {v: {s: float(envelope(points[v][s], grid).mean()) for s in seeds} for v in variants}
    base = variants[0]
    cmp = {v: c.paired_comparison([stat[v][s] for s in seeds], [stat[base][s] for s in seeds], True,
                                  FRONTIER_METRIC, v, base) for v in variants[1:]}
    c.add_holm(cmp, FRONTIER_METRIC, base)
    return {"span": [float(grid[0]), float(grid[-1])], "seeds": seeds, "per_seed": stat, "left_out": missing,
            "mean": {v: float(np.mean(list(stat[v].values()))) for v in variants}, "paired": cmp}


def never_chosen(variants: list, evaluations: dict, loo_doc: dict | None) -> set:
    """The variants no selection rule (the fixed setting is none) chose a configuration of, because each
    failed on some seed: the frontier leaves them out, as those evaluations do, since their runs that learned
    nothing would pull its span (the top every variant reaches) down to chance for every variant."""
    chosen_by = [ev for r, ev in [*evaluations.items(), ("loo", loo_doc)] if ev and r != FIXED]
    return {v for v in variants if all(v in ev["left_out"] for ev in chosen_by)}


# ---------------------------------------------------------------------------- a tuned study
def load_table(stores: list, seeds: list, variants: list) -> tuple:
    """summary[variant][configuration][seed] for the jobs that are finished, and their summed job time
    (training, evaluation and sleep, in seconds of one core)."""
    out, seconds = {v: {} for v in variants}, 0.0
    for i, store in enumerate(stores):
        for s in seeds:
            for v in variants:
                r = store.load(s, v, headline=False)
                if r:
                    out[v].setdefault(i, {})[s] = r["summary"]
                    seconds += sum(r["timings"].values())
    return out, seconds


def evaluation(table: dict, picks: dict, variants: list, seeds: list) -> dict | None:
    """Per-seed summaries of each variant at its picked configuration, and their paired aggregate. A
    variant with no configuration to pick is left out and named; without the baseline there is none."""
    if picks[variants[0]] is None:
        return None
    ok = [v for v in variants if picks[v] is not None]
    runs = [{"seed": s, "summary": {v: table[v][picks[v]][s] for v in ok}} for s in seeds]
    return {"per_seed": runs, "aggregate": c.aggregate(runs, ok), "left_out": [v for v in variants if v not in ok]}


def ranked(search: dict, variant: str, tune: list, k: int = BAND) -> list:
    """A variant's k best configurations by validation ACC at the end, averaged over the tuning seeds (the
    *all tasks* rule's score, so the first is its pick); a configuration that failed on a tuning seed never."""
    scores = rule_scores({i: [job_scores(search[variant][i][s]) for s in tune] for i in search[variant]}, "all")
    return [i for _, i in sorted((-score, i) for i, score in scores.items() if score is not None)[:k]]


def band(table: dict, ranks: dict, variants: list, seeds: list) -> dict | None:
    """The verdict at each near-best choice: for every pairing (the variants at their a-th best configuration,
    the baseline at its b-th), the paired table as evaluation() makes it (Holm over the variants). Where a
    search cannot put every configuration on every evaluation seed (--loo), band_lines then says how much a
    verdict rests on which of a few good configurations was chosen."""
    base = variants[0]
    if not ranks[base]:
        return None
    ok = [v for v in variants if ranks[v]]
    pairings = []
    for a in range(max(len(ranks[v]) for v in ok[1:]) if len(ok) > 1 else 0):
        for b, j in enumerate(ranks[base]):
            picks = {base: j, **{v: ranks[v][min(a, len(ranks[v]) - 1)] for v in ok[1:]}}
            pairings.append({"variant_rank": a + 1, "baseline_rank": b + 1, "picks": picks,
                             "aggregate": evaluation(table, picks, ok, seeds)["aggregate"]})
    return {"ranks": {v: ranks[v] for v in variants}, "pairings": pairings, "left_out": [v for v in variants if v not in ok]}


def tuned_flags(parser) -> None:
    """A tuned study's own flags (parse_study_args(..., extra=tuned_flags))."""
    parser.add_argument("--loo", action="store_true",
                        help="also run every configuration on every evaluation seed and report the rule "
                             "'leave one seed out' (selection inside the paired test; costs n_configs times "
                             "the evaluation)")
    parser.add_argument("--band", action="store_true",
                        help=f"also run each variant's {BAND} best configurations (by validation ACC at the end) "
                             f"on every evaluation seed and report the verdict at every pairing of them (where "
                             f"--loo does not fit; costs about {BAND} times the evaluation)")


def run_study(study: str, title: str, args: list, variants: list, n_configs: int, epochs: int,
              tune_seeds: int, val: int, fixed: bool, notes: list) -> dict:
    """Search, select, evaluate (each resumable), then write studies/<study>/{tuned.json, summary.md,
    frontier.png}. With --redraw, only summary.md again from the committed tuned.json."""
    if OPTIONS.redraw:
        return redraw(study, notes)
    configs = configurations(n_configs, epochs)
    tune = list(range(TUNE_SEED, TUNE_SEED + tune_seeds))
    evals = list(range(OPTIONS.seeds or EVAL_SEEDS))
    job_configs = [job_config(args, variants, cfg, val) for cfg in configs]
    print(f"[{study}] search: {n_configs} configurations x {tune_seeds} seeds x {len(variants)} variants", flush=True)
    if OPTIONS.dry_run:
        per_seed = [c.count_flops({**jc, "n_seeds": 1}, c.task_table(jc))["per_variant_other_seed"] for jc in job_configs]
        search = sum(sum(f.values()) for f in per_seed) * tune_seeds
        print(f"  search: {cost_text(n_configs * tune_seeds * len(variants), search)}")
        per = n_configs if getattr(OPTIONS, "loo", False) else min(n_configs, len(RULES) + fixed
                                                                    + BAND * getattr(OPTIONS, "band", False))
        print(f"  evaluation: at most {per} configurations per variant x {len(evals)} seeds, "
              f"each about {duration(search / n_configs / tune_seeds * len(evals) / CORE_RATE / OPTIONS.workers)} "
              "per configuration")
        return {}
    stores = [c.RunDir(RUNS / study / f"c{i:02d}", jc) for i, jc in enumerate(job_configs)]
    searched = search_stores(RUNS / study, job_configs)
    run_pool([j for st, jc in zip(searched, job_configs) for j in pending(st, {**jc, "no_test": True}, tune, variants)],
             "search")
    search, search_s = load_table(searched, tune, variants)
    picks = {}
    for rule in RULES:
        picks[rule] = {v: select(rule_scores({i: [job_scores(search[v][i][s]) for s in tune]
                                              for i in search[v]}, rule)) for v in variants}
    if fixed:
        picks[FIXED] = {v: 0 for v in variants}
    wanted = {(picks[r][v], v) for r in picks for v in variants if picks[r][v] is not None}
    loo, with_band = getattr(OPTIONS, "loo", False), getattr(OPTIONS, "band", False)
    if loo:                                     # the leave-one-seed-out rule reads every configuration
        wanted |= {(i, v) for i in range(n_configs) for v in variants}
    ranks = {v: ranked(search, v, tune) for v in variants} if with_band else {}
    wanted |= {(i, v) for v in ranks for i in ranks[v]}
    print(f"[{study}] evaluation: {len(wanted)} (configuration, variant) pairs x {len(evals)} seeds", flush=True)
    run_pool([j for i, v in sorted(wanted) for j in pending(stores[i], job_configs[i], evals, [v])], "evaluation")
    table, eval_s = load_table(stores, evals, variants)
    evaluations = {r: evaluation(table, picks[r], variants, evals) for r in picks}
    loo_doc = leave_one_out(table, variants, evals) if loo else None
    # The frontier: every (configuration, epoch) point of each variant and seed. With --loo every configuration
    # ran on every evaluation seed, so it is read there (20 seeds, the test's own), over a span that reaches
    # down to every operating point a rule chose; otherwise on the tuning seeds, the top FRONTIER_SPAN only.
    on, seeds_of, where = (("evaluation", evals, table) if loo else ("tuning", tune, search))
    never = never_chosen(variants, evaluations, loo_doc)
    points = {v: {} if v in never else
              {s: np.concatenate([frontier_points(where[v][i][s]) for i in where[v] if s in where[v][i]])
               for s in seeds_of} for v in variants}
    chosen = [r["summary"][v]["val_last"][-1][-1] for ev in [*evaluations.values(), loo_doc] if ev
              for r in ev["per_seed"] for v in r["summary"] if not r["summary"][v]["failed"]] if loo else []
    fr = frontier(points, variants, min(chosen) if chosen else None)
    doc = {"study": study, "title": title, "setting_args": args, "variants": variants,
           "val_per_class": val, "tune_seeds": tune, "eval_seeds": evals,
           "search_space": {"seed": SEARCH_SEED, "lr_log_uniform": LR_RANGE, "momentum": MOMENTA,
                            "epochs": EPOCHS, "configuration_0": "the setting's fixed hyperparameters"},
           "configurations": configs, "rules": {**RULES, **({FIXED: "configuration 0 for every variant"}
                                                           if fixed else {})},
           "selected": picks,
           "search": {v: {str(i): {str(s): job_scores(search[v][i][s]) | {"failed": search[v][i][s]["failed"]}
                                   for s in tune} for i in search[v]} for v in variants},
           "failures": {v: {"jobs": sum(bool(search[v][i][s]["failed"]) for i in search[v] for s in tune),
                            "of": len(search[v]) * len(tune),
                            "configurations": sum(any(search[v][i][s]["failed"] for s in tune) for i in search[v])}
                        for v in variants},
           "core_minutes": {"search": search_s / 60, "evaluation": eval_s / 60},
           "evaluation": evaluations,
           **({"leave_one_out": loo_doc} if loo else {}),
           **({"band": band(table, ranks, variants, evals)} if with_band else {}),
           "frontier": fr and {**fr, "on": on},
           "environment": c.environment()}
    out = ROOT / "studies" / study
    write_text(out / "tuned.json", [json.dumps(doc, indent=1, allow_nan=False)])
    if doc["frontier"]:
        frontier_figure(points, variants, doc, out / "frontier.png")
    write_text(out / "summary.md", summary_lines(doc, notes))
    print("\n".join(summary_lines(doc, notes)))
    return doc


def redraw(study: str, notes: list) -> dict:
    """--redraw: summary.md from the committed tuned.json; nothing runs. frontier.png stays as committed:
    its points are in the run folders' job files, which tuned.json does not hold."""
    path = ROOT / "studies" / study / "tuned.json"
    if not path.is_file():
        sys.exit(f"[{study}] redraw: studies/{study}/tuned.json does not exist yet; run the study first")
    doc = json.loads(path.read_text())
    groups = [g for ev in [*doc["evaluation"].values(), doc.get("leave_one_out"), *(doc.get("band") or {}).get(
              "pairings", [])] if ev for g in aggregate_groups(ev["aggregate"])]
    if doc["frontier"]:
        base = next(v for v in doc["variants"] if v not in doc["frontier"]["left_out"])
        groups.append((doc["frontier"]["paired"], FRONTIER_METRIC, base))
    refresh_statistics(groups, path, doc)
    lines = summary_lines(doc, notes)
    write_text(path.parent / "summary.md", lines)
    print("\n".join(lines))
    print(f"[{study}] redraw: summary.md rewritten from tuned.json; frontier.png kept as committed (its points "
          "are in the run folders' job files)")
    return doc


# ---------------------------------------------------------------------------- outputs
def summary_lines(doc: dict, notes: list) -> list:
    v0 = doc["variants"][0]
    cmd = f"python studies/{doc['study']}.py"
    setting = " ".join(doc["setting_args"]) or "(default flags)"
    lines = [f"# {doc['title']}", "", f"`{cmd}` (setting: `python compete_to_compute.py {setting}` with the "
             f"searched flags `--lr --momentum --epochs` and `--val-per-class {doc['val_per_class']}`)", "",
             *notes, "",
             f"Search: {len(doc['configurations'])} configurations (the same for every variant; configuration 0 is "
             f"the fixed setting) x {len(doc['tune_seeds'])} tuning seeds ({doc['tune_seeds'][0]}-"
             f"{doc['tune_seeds'][-1]}), chosen on {doc['val_per_class']} validation images per class held out "
             f"of the training images; evaluation on seeds 0-{doc['eval_seeds'][-1]}, test data. Cost (job time, "
             f"one core): search {doc['core_minutes']['search']:.0f} min, evaluation "
             f"{doc['core_minutes']['evaluation']:.0f} min.", "",
             "## Selected configurations", "", "| variant | " + " | ".join(doc["rules"]) +
             " | failed search jobs (configurations) |", "|---|" + "---|" * (len(doc["rules"]) + 1)]
    for v in doc["variants"]:
        cells = []
        for r in doc["rules"]:
            i = doc["selected"][r][v]
            cells.append("none: every configuration failed" if i is None
                         else f"{i}: {describe_config(doc['configurations'][i])}")
        f = doc["failures"][v]
        lines.append(f"| {v} | " + " | ".join(cells) + f" | {f['jobs']}/{f['of']} ({f['configurations']}) |")
    lines += ["", "Rules: " + "; ".join(f"*{r}*: {t}" for r, t in doc["rules"].items()) + ". A search job fails when "
              "it diverges or learns nothing (the module's check, read on the validation images of the task just "
              "trained, as a search job reads no test image: within 0.05 of chance). A configuration that failed "
              "on a tuning seed is never chosen; an evaluation run that failed counts at what it scored (chance "
              "after a divergence)."]
    for r, ev in doc["evaluation"].items():
        lines += ["", f"## Evaluation, rule *{r}* ({len(doc['eval_seeds'])} seeds, test data)", ""]
        if ev is None:
            lines.append(f"Not run: {v0} has no configuration that trained on every tuning seed.")
            continue
        ok = [v for v in doc["variants"] if v not in ev["left_out"]]
        lines += variant_table({"aggregate": ev["aggregate"], "config": {"models": ok}, "per_seed": ev["per_seed"]})
        if ev["left_out"]:
            lines.append(f"Not evaluated (no configuration trained on every tuning seed): {', '.join(ev['left_out'])}.")
    lines += loo_lines(doc) + band_lines(doc)
    fr = doc["frontier"]
    if fr is None:
        return lines + ["", "## Frontier", "", f"None: {v0} or every other variant failed on every configuration."]
    on = fr.get("on", "tuning")
    reach = (f"the top {FRONTIER_SPAN:g} that every variant reaches on every seed" if on == "tuning" else
             "from the lowest new-task accuracy of any configuration a rule chose, on any seed, to the highest "
             "that every variant reaches on every seed")
    lines += ["", f"## Frontier (validation data, {on} seeds)", "",
              f"Old-task validation accuracy averaged over the envelope where the new-task accuracy is in "
              f"[{fr['span'][0]:.3f}, {fr['span'][1]:.3f}] ({reach}), paired by {on} seed ({len(fr['seeds'])} "
              f"seeds) against {v0}" + (" (every configuration ran on every evaluation seed, with validation "
                                         "images, for the leave-one-seed-out rule)" if on == "evaluation" else "")
              + ":", "",
              "| variant | old-task accuracy on the envelope | − " + v0 + " | verdict |", "|---|---|---|---|"]
    for v in doc["variants"]:
        if v in fr["left_out"]:
            lines.append(f"| {v} | n/a | n/a | left out: no rule chose a configuration (each failed on some seed) |")
            continue
        if v == v0:
            lines.append(f"| {v} | {fr['mean'][v]:.4f} | baseline | |")
            continue
        p = fr["paired"][v]
        lines.append(f"| {v} | {fr['mean'][v]:.4f} | {p['diff']['mean']:+.4f} | {p['verdict']} |")
    return lines


def band_comparisons(bd: dict, v: str, metric: str) -> list:
    """A variant's paired comparison with the baseline for one metric, at every pairing of the band."""
    return [p["aggregate"]["paired"]["metrics"][metric][v] for p in bd["pairings"]]


def band_range(bd: dict, v: str, metric: str, digits: int = 4) -> tuple:
    """A variant's band for one metric: its lowest to highest mean difference from the baseline over every
    pairing of near-best configurations, and how many pairings reach each verdict."""
    cmps = band_comparisons(bd, v, metric)
    means, words = [x["diff"]["mean"] for x in cmps], [verdict_word(x, ("higher", "lower")) for x in cmps]
    return (f"{min(means):+.{digits}f} to {max(means):+.{digits}f}",
            ", ".join(f"{w} {words.count(w)}" for w in ("higher", "lower", "n.s.", "undecidable") if w in words))


def band_lines(doc: dict) -> list:
    """The band (--band), if the study ran it: per variant, the range of its mean difference from the
    baseline over every pairing of near-best configurations, and how many pairings reach each verdict."""
    if "band" not in doc:
        return []
    bd, v0 = doc["band"], doc["variants"][0]
    lines = ["", f"## Evaluation at each of the {BAND} best configurations ({len(doc['eval_seeds'])} seeds, test data)", ""]
    if bd is None:
        return lines + [f"Not run: {v0} has no configuration that trained on every tuning seed."]
    lines += [f"Each variant's {BAND} best configurations by validation ACC at the end (the *all tasks* rule's first "
              "is its pick) ran on every evaluation seed; every pairing of a variant's a-th with "
              f"{v0}'s b-th is a paired table (Holm over the variants). Configurations (best first): "
              + "; ".join(f"{v} {', '.join(map(str, r))}" for v, r in bd["ranks"].items() if r) + ".", "",
              f"| variant | forgetting − {v0}: lowest to highest mean | verdicts (forgetting) | ACC − {v0}: lowest to "
              "highest mean | verdicts (ACC) |", "|---|---|---|---|---|"]
    for v in doc["variants"][1:]:
        if v in bd["left_out"]:
            lines.append(f"| {v} | n/a | no configuration trained on every tuning seed | | |")
            continue
        cells = [text for m in ("forgetting", "acc") for text in band_range(bd, v, m)]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return lines + ["", f"Verdicts count the {len(bd['pairings'])} pairings: higher / lower at Holm p < 0.05, else "
                    "n.s. (undecidable: no p < 0.05 reachable at this number of seeds)."]


def loo_lines(doc: dict) -> list:
    """The leave-one-seed-out evaluation (--loo), if the study ran it: its paired table and the choices."""
    ev = doc.get("leave_one_out")
    if "leave_one_out" not in doc:
        return []
    lines = ["", f"## Evaluation, leave one seed out ({len(doc['eval_seeds'])} seeds, test data)", "", LOO_TEXT[0].upper()
             + LOO_TEXT[1:] + ": the choice's own noise is in the paired differences.", ""]
    if ev is None:
        return lines + [f"Not run: {doc['variants'][0]} has no configuration that trained on every evaluation seed."]
    ok = [v for v in doc["variants"] if v not in ev["left_out"]]
    lines += variant_table({"aggregate": ev["aggregate"], "config": {"models": ok}, "per_seed": ev["per_seed"]})
    return lines + ["", "Configurations chosen (configuration: seeds): " + "; ".join(
        f"{v} " + ", ".join(f"{i}: {n}" for i, n in ev["chosen"][v].items()) for v in doc["variants"]) + "."]


def frontier_figure(points: dict, variants: list, doc: dict, path) -> None:
    """One envelope per variant: its mean over the frontier's seeds (tuning, or evaluation with --loo), and the
    band from the lowest to the highest seed's envelope; every (configuration, epoch) point faintly behind."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    short = {v: s.replace(":", ":\n  ") if len(s) > 24 else s for v, s in short_names(variants).items()}
    fig, ax = plt.subplots(figsize=(9, 5))     # (a long spec's keys on lines of their own: the axes keep their width)
    pts = {v: points[v] for v in variants if v not in doc["frontier"]["left_out"]}
    variants = list(pts)
    allp = np.concatenate([p for v in variants for p in pts[v].values() if len(p)])
    span = doc["frontier"]["span"]
    lo, bottom = span[0] - FRONTIER_SPAN / 2, 1.0    # the well-trained end, where the envelopes differ
    for v in variants:
        every = np.concatenate([p for p in pts[v].values() if len(p)])
        ax.scatter(every[:, 0], every[:, 1], s=5, color=colour(v), alpha=0.12, lw=0)
    for v in variants:
        top = min(p[:, 0].max() for p in pts[v].values() if len(p))
        grid = np.linspace(lo, top, 200)
        env = np.array([envelope(p, grid) for p in pts[v].values() if len(p)])
        ax.fill_between(grid, env.min(axis=0), env.max(axis=0), color=colour(v), alpha=0.18, lw=0)
        ax.plot(grid, env.mean(axis=0), color=colour(v), lw=2, label=short[v])
        bottom = min(bottom, np.nanmin(env))
    ax.axvspan(*span, color="0.5", alpha=0.08, lw=0, label="span of the paired statistic")
    for v in doc["frontier"]["left_out"]:
        ax.plot([], [], color=colour(v), lw=2, ls=":", label=f"{short[v]}: no configuration chosen")
    ax.set_xlim(lo, allp[:, 0].max() + 0.005)
    ax.set_ylim(bottom - 0.02, min(1.0, allp[:, 1].max() + 0.01))
    ax.set_xlabel("new (last) task: validation accuracy")
    ax.set_ylabel("old tasks: mean validation accuracy")
    ax.set_title(f"{doc['title']}\nenvelope over {len(doc['configurations'])} configurations x epochs:\n"
                 f"mean of {len(doc['frontier']['seeds'])} {doc['frontier']['on']} seeds (band: lowest to highest "
                 "seed)", fontsize=9.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False)
    fig.tight_layout()
    save_figure(fig, path)
