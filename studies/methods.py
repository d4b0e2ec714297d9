"""The field's methods against forgetting beside competition: a search per activation and method,
two selection rules, a paired evaluation, and the tables "does competition add to X".

A methods study is one setting (the flags of a fixed-rate study) and a list of activations. Each activation
runs alone and with each method (EWC, SI, L2, replay: the module's spec keys), each a family of specs, one
per strength of the method's grid (GRIDS). Three steps, each resumable, all jobs in one process pool:

1. Search. Every spec of every family at each learning rate of the study (momentum and epochs stay the
   setting's), on the tuning seeds (from TUNE_SEED on, never evaluation seeds), validation images held out
   of the training images (--val-per-class).
2. Selection, per family, on validation accuracy only, averaged over the tuning seeds:
   all - the best ACC at the end (mean over every task; what most papers do);
   two - the best mean accuracy on tasks 1 and 2 right after task 2 (what a user who has seen two tasks
         can choose on: a method only acts from the second task on, so the first task alone says nothing
         about its strength).
   A (learning rate, strength) that failed (diverged or learned nothing) on any tuning seed is never
   selected; ties go to the lower learning rate, then the weaker strength.
3. Evaluation: each family at its selected (learning rate, strength) on seeds 0..19, test data, paired
   seed by seed with the module's statistics.
Jobs go to studies/runs/<study>/lr<N>/ (one module run folder per learning rate).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from common import (CORE_RATE, OPTIONS, ROOT, RUNS, c, cost_text, detectable, duration, refresh_statistics,
                    without_failed, write_text)
from tuning import EVAL_SEEDS, TUNE_SEED, job_config, load_table, pending, run_pool, search_stores

GRIDS = {"ewc": (1, 10, 100, 1e3, 1e4, 1e5), "si": (0.1, 1, 10, 100, 1e3), "l2": (0.01, 0.1, 1, 10, 100),
         "replay": (10, 30, 100)}
NAMES = {"alone": "alone", "ewc": "EWC", "si": "SI", "l2": "L2", "replay": "replay"}
RULES = {"all": "all tasks: best validation ACC at the end",
         "two": "two tasks: best mean validation accuracy on tasks 1-2 right after task 2"}


def rules_flag(parser) -> None:
    """The methods studies' own flag: evaluate and report only some selection rules (the others' jobs can be
    run later; what was run is kept)."""
    parser.add_argument("--rules", default=",".join(RULES), type=rule_list,
                        help="selection rules to evaluate and report, comma-separated (default: %(default)s): "
                             + "; ".join(f"{r}: {text}" for r, text in RULES.items()))


def rule_list(s: str) -> list:
    rules = s.split(",")
    if not rules or any(r not in RULES for r in rules):
        raise argparse.ArgumentTypeError(f"must be rules from {', '.join(RULES)}, comma-separated; got {s!r}")
    return rules


RULE_TITLES = {"all": "selected on validation ACC at the end", "two": "selected on tasks 1-2 right after task 2"}


def family(activation: str, method: str, grids: dict) -> list:
    """The specs of one family: the activation alone, or with the method at each strength of its grid."""
    if method == "alone":
        return [activation]
    return [f"{activation}:{method}={v:g}" for v in grids[method]]


def scores(summary: dict) -> dict:
    """What each rule reads from one search job (None for a failed job)."""
    if summary["failed"]:
        return {r: None for r in RULES}
    val = summary["val_R"]
    return {"all": float(np.mean(val[-1])), "two": float(np.mean(val[1][:2]))}


def pick(search: dict, candidates: list, tune: list, rule: str):
    """The (learning-rate index, spec) with the best mean score over the tuning seeds; failed never."""
    best = None
    for lr_i, spec in candidates:
        jobs = search[spec].get(lr_i, {})
        vals = [scores(jobs[s])[rule] if s in jobs else None for s in tune]
        if any(v is None for v in vals):
            continue
        score = float(np.mean(vals))
        if best is None or score > best[0]:
            best = (score, lr_i, spec)
    return None if best is None else (best[1], best[2])


def against(values: dict, keys: list, base: str) -> dict:
    """ACC of each family in `keys` against `base`, paired by seed, Holm over the keys; families without
    values (or fewer than two common seeds) are left out."""
    cmp = {k: r for k in keys if k in values and base in values and (r := paired(values, k, base, "acc", True))}
    return c.add_holm(cmp, "acc", base) if cmp else {}


def paired(values: dict, a: str, b: str, metric: str, higher: bool) -> dict | None:
    """a against b on the seeds both ran (failed runs at what they scored)."""
    seeds = sorted(set(values[a]) & set(values[b]))
    if len(seeds) < 2:
        return None
    return c.compare_runs([values[a][s] for s in seeds], [values[b][s] for s in seeds], metric, higher, a, b)


def run_methods_study(study: str, title: str, args: list, activations: list, lrs: list, epochs: int,
                      tune_seeds: int, val: int, notes: list, sources=None, grids: dict = GRIDS) -> dict:
    """Search, select, evaluate (each resumable), then write studies/<study>/{methods.json, summary.md}."""
    methods = ["alone", *GRIDS]
    specs = [s for a in activations for m in methods for s in family(a, m, grids)]
    tune = list(range(TUNE_SEED, TUNE_SEED + tune_seeds))
    evals = list(range(OPTIONS.seeds or EVAL_SEEDS))
    configs = [job_config(args, specs, {"lr": lr, "momentum": 0.9, "epochs": epochs}, val) for lr in lrs]
    n_search = len(specs) * len(lrs) * tune_seeds
    out = ROOT / "studies" / study
    if OPTIONS.redraw:                          # the committed results, rewritten: nothing runs
        doc = json.loads((out / "methods.json").read_text())
        base = doc["activations"][0]
        refresh_statistics([g for res in doc["results"].values() for g in
                            [(res["competition_adds"][m], "acc", f"{base} {m}") for m in res["competition_adds"]]
                            + [(res["method_gains"][a], "acc", f"{a} alone") for a in res["method_gains"]]],
                           out / "methods.json", doc)
        write_text(out / "summary.md", summary_lines(doc, notes, sources))
        methods_figure(doc, out / "methods.png")
        return doc
    print(f"[{study}] search: {len(specs)} specs x {len(lrs)} learning rates x {tune_seeds} seeds", flush=True)
    if OPTIONS.dry_run:
        per_seed = [c.count_flops({**jc, "n_seeds": 1}, c.task_table(jc))["per_variant_other_seed"] for jc in configs]
        flops = sum(sum(f.values()) for f in per_seed) * tune_seeds
        print(f"  search: {cost_text(n_search, flops)}")
        n_eval = len(RULES) * len(activations) * len(methods) * len(evals)
        print(f"  evaluation: at most {n_eval} jobs, about "
              f"{duration(flops / n_search * n_eval / CORE_RATE / OPTIONS.workers)}")
        return {}
    stores = [c.RunDir(RUNS / study / f"lr{i}", jc) for i, jc in enumerate(configs)]
    searched = search_stores(RUNS / study / "search", configs)
    run_pool([j for st, jc in zip(searched, configs) for j in pending(st, {**jc, "no_test": True}, tune, specs)],
             "search")
    search, search_s = load_table(searched, tune, specs)
    rules = getattr(OPTIONS, "rules", None) or list(RULES)
    picks = {r: {(a, m): pick(search, [(i, s) for i in range(len(lrs)) for s in family(a, m, grids)], tune, r)
                 for a in activations for m in methods} for r in rules}
    wanted = list(dict.fromkeys(p for r in rules for p in picks[r].values() if p is not None))  # rule by rule
    print(f"[{study}] evaluation: {len(wanted)} (learning rate, spec) pairs x {len(evals)} seeds", flush=True)
    run_pool([j for i, s in wanted for j in pending(stores[i], configs[i], evals, [s])], "evaluation")
    table, eval_s = load_table(stores, evals, specs)
    doc = {"study": study, "title": title, "setting_args": args, "activations": activations, "methods": methods,
           "grids": grids, "learning_rates": lrs, "momentum": 0.9, "epochs": epochs, "val_per_class": val,
           "tune_seeds": tune, "eval_seeds": evals, "rules": {r: RULES[r] for r in rules},
           "search": {s: {str(i): {str(t): scores(search[s][i][t]) | {"failed": search[s][i][t]["failed"]}
                                   for t in search[s][i]} for i in search[s]} for s in specs},
           "core_minutes": {"search": search_s / 60, "evaluation": eval_s / 60},
           "results": {r: evaluate_picks(table, picks[r], activations, methods, lrs, evals) for r in rules},
           "environment": c.environment()}
    write_text(out / "methods.json", [json.dumps(doc, indent=1, allow_nan=False)])
    lines = summary_lines(doc, notes, sources)
    write_text(out / "summary.md", lines)
    methods_figure(doc, out / "methods.png")
    print("\n".join(lines))
    return doc


def evaluate_picks(table: dict, picks: dict, activations: list, methods: list, lrs: list, evals: list) -> dict:
    """Per family: its pick, every metric over every seed (failed runs at what they scored), and the paired comparisons
    (activation with X against relu with X; the method against the activation alone), Holm within each."""
    values, families = {}, {}
    for (a, m), p in picks.items():
        key = f"{a} {m}"
        if p is None:
            families[key] = {"pick": None}
            continue
        i, spec = p
        runs = table[spec].get(i, {})
        values[key] = {s: runs[s] for s in evals if s in runs}
        failed = [s for s in evals if s in runs and runs[s]["failed"]]
        families[key] = {"pick": {"lr": lrs[i], "spec": spec}, "seeds": len(values[key]), "failed": len(failed),
                         **{k: c.describe([values[key][s][k] for s in values[key]], c.BOUNDS[k])
                            for k in c.METRICS}}
    base = activations[0]
    competition = {m: against(values, [f"{a} {m}" for a in activations[1:]], f"{base} {m}") for m in methods}
    method_gain = {a: against(values, [f"{a} {m}" for m in methods[1:]], f"{a} alone") for a in activations}
    return {"families": families, "competition_adds": competition, "method_gains": method_gain,
            "per_seed": {k: {str(s): {m: v[s][m] for m in ("failed", *c.METRICS)} for s in v}
                         for k, v in values.items()}}


def interval(d: dict) -> str:
    if d["mean"] is None:
        return "n/a"
    return f"{d['mean']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]" if d.get("ci95") else f"{d['mean']:.3f}"


def summary_lines(doc: dict, notes: list, sources=None) -> list:
    """The study's summary.md; `sources(doc)` adds lines of its own (a comparison with a paper)."""
    base = doc["activations"][0]
    lines = [f"# {doc['title']}", "", f"`python studies/{doc['study']}.py` (setting: `python compete_to_compute.py "
             f"{' '.join(doc['setting_args'])}`, momentum 0.9, {doc['epochs']} epochs per task, "
             f"`--val-per-class {doc['val_per_class']}`)", "", *notes, "",
             f"Search: each activation alone and with each method at every strength of its grid ("
             + "; ".join(f"{NAMES[m]} {', '.join(f'{v:g}' for v in g)}" for m, g in doc["grids"].items())
             + f") x learning rates {', '.join(f'{x:g}' for x in doc['learning_rates'])} on tuning seeds "
             f"{doc['tune_seeds'][0]}-{doc['tune_seeds'][-1]}, chosen on {doc['val_per_class']} validation images "
             f"per class held out of the training images; evaluation on seeds 0-{doc['eval_seeds'][-1]}, test "
             f"data. Cost (job time, one core): search {doc['core_minutes']['search']:.0f} min, evaluation "
             f"{doc['core_minutes']['evaluation']:.0f} min. Rules: "
             + "; ".join(f"*{r}*: {t}" for r, t in doc["rules"].items()) + "."]
    for rule, res in doc["results"].items():
        fam = res["families"]
        lines += ["", f"## Rule *{rule}*: each activation and method at its selected strength "
                  f"({len(doc['eval_seeds'])} seeds, test data)", "",
                  "ACC (mean over tasks at the end) [95% interval]; learning accuracy (each task right after it was "
                  "learned) in brackets; the selected learning rate and strength under it.", "",
                  "| activation | " + " | ".join(NAMES[m] for m in doc["methods"]) + " |",
                  "|---|" + "---|" * len(doc["methods"])]
        for a in doc["activations"]:
            cells = []
            for m in doc["methods"]:
                f = fam[f"{a} {m}"]
                if f["pick"] is None:
                    cells.append("no setting trained on every tuning seed")
                    continue
                strength = f["pick"]["spec"].partition(":")[2] or "-"
                fails = f", {f['failed']} failed" if f["failed"] else ""
                cells.append(f"{interval(f['acc'])} ({f['learning_acc']['mean']:.2f}){fails}<br>lr "
                             f"{f['pick']['lr']:g}, {strength}")
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
        lines += ["", f"Does competition add to X? ACC of the activation with X minus {base} with X, each at its own "
                  "selected strength, paired by seed (Holm over the activations within X):", "",
                  "| X | " + " | ".join(f"{a} − {base}" for a in doc["activations"][1:]) + " |",
                  "|---|" + "---|" * (len(doc["activations"]) - 1)]
        for m in doc["methods"]:
            cells = []
            for a in doc["activations"][1:]:
                cmp = res["competition_adds"][m].get(f"{a} {m}")
                pairs = "" if cmp is None or cmp["n_pairs"] == len(doc["eval_seeds"]) else f", {cmp['n_pairs']} pairs"
                cells.append("n/a" if cmp is None else f"{cmp['diff']['mean']:+.3f} [{cmp['diff']['ci95'][0]:+.3f}, "
                             f"{cmp['diff']['ci95'][1]:+.3f}], p {fmt_p(cmp)}, {detectable(cmp, 3)}{pairs}")
            lines.append(f"| {NAMES[m]} | " + " | ".join(cells) + " |")
        lines += ["", "Each cell: mean paired difference [95% interval], Holm-adjusted Wilcoxon p, and the difference "
                  "that would have been detected with at least 80% power by that test (undecidable: no p < 0.05 is reachable at "
                  "this number of seeds after the correction). A run that failed counts at what it scored (chance after a "
                  "divergence); the count of failed runs is in the table above, and the differences without them "
                  "are listed after the next table where there were any. n/a: one side has no selected setting.", "",
                  "Does the method add to the activation? ACC with the method minus the activation alone "
                  "(Holm over the methods within each activation):", "",
                  "| activation | " + " | ".join(NAMES[m] for m in doc["methods"][1:]) + " |",
                  "|---|" + "---|" * (len(doc["methods"]) - 1)]
        for a in doc["activations"]:
            cells = []
            for m in doc["methods"][1:]:
                cmp = res["method_gains"][a].get(f"{a} {m}")
                cells.append("n/a" if cmp is None else f"{cmp['diff']['mean']:+.3f}, p {fmt_p(cmp)}")
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
        groups = [(f"{base} {m}", res["competition_adds"][m]) for m in doc["methods"]] + \
                 [(f"{a} alone", res["method_gains"][a]) for a in doc["activations"]]
        secondary = [f"- {name} − {against_name}: {text}" for against_name, group in groups
                     for name, cmp in group.items() if (text := without_failed(cmp))]
        if secondary:
            lines += ["", "Without the seeds where a side failed (a secondary reading, never the verdict):", "", *secondary]
    if sources:
        lines += ["", *sources(doc)]
    return lines


def fmt_p(cmp: dict) -> str:
    p = cmp["wilcoxon_p_holm"] if cmp["wilcoxon_p_holm"] is not None else cmp["wilcoxon_p"]
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def methods_figure(doc: dict, path) -> None:
    """ACC at the end (dot: mean over the evaluation seeds; bar: 95% interval) of each activation alone and
    with each method at its selected strength, one panel per rule; a hollow marker: learning accuracy (each
    task right after it was learned), so forgetting shows as the gap between the two."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from common import colour, save_figure
    acts, meths = doc["activations"], doc["methods"]
    fig, axes = plt.subplots(1, len(doc["results"]), figsize=(11, 4.6), sharey=True)
    width = 0.8 / len(acts)
    for ax, (rule, res) in zip(np.atleast_1d(axes), doc["results"].items()):
        for j, a in enumerate(acts):
            for i, m in enumerate(meths):
                f = res["families"][f"{a} {m}"]
                x = i - 0.4 + width * (j + 0.5)
                if f["pick"] is None or f["acc"]["mean"] is None:
                    ax.text(x, 0.02, "×", ha="center", va="bottom", color=colour(a), fontsize=11)
                    continue
                lo, hi = f["acc"]["ci95"] or (f["acc"]["mean"],) * 2
                ax.plot([x, x], [lo, hi], color=colour(a), lw=2.5, solid_capstyle="butt")
                ax.plot(x, f["acc"]["mean"], "o", color=colour(a), ms=6, label=a if i == 0 else None)
                ax.plot(x, f["learning_acc"]["mean"], "o", mfc="none", color=colour(a), ms=6)
        ax.set_xticks(range(len(meths)), [NAMES[m] for m in meths])
        ax.set_xlim(-0.5, len(meths) - 0.5)
        ax.set_title(f"rule {rule}: {RULE_TITLES[rule]}", fontsize=9.5)
        ax.set_ylim(0, 1.02)
        ax.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("test accuracy")
    handles = [plt.Line2D([], [], color=colour(a), marker="o", lw=2.5, label=a) for a in acts]
    handles += [plt.Line2D([], [], color="0.3", marker="o", lw=0, label="ACC at the end (95% interval)"),
                plt.Line2D([], [], color="0.3", marker="o", mfc="none", lw=0, label="learning accuracy"),
                plt.Line2D([], [], color="0.3", marker="x", lw=0, label="no setting trained")]
    fig.suptitle(f"{doc['title']}: {len(doc['eval_seeds'])} seeds, test data; learning rate and strength "
                 "chosen on validation data", fontsize=10.5)
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    save_figure(fig, path)
