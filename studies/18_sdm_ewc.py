"""Study 18: EWC under the SDM source's own recipe, beside the SDM paper's EWC rows.

Bricken et al. (ICLR 2023), Table 7 (class-incremental split MNIST, 1,000 units, 500 epochs per task, 3 seeds):
ReLU + EWC 0.61, SDMLP (k = 10) + EWC 0.83; its Table 9 (the same network, 10 epochs per task): EWC 63.23 %.
Their EWC (TrentBrick/SDMContinualLearner, models/CL_Benchmarks.py) is ours with `ewc_fisher=sdm`: importance
from 6 minibatches of 512 images, the squared gradient of the summed cross-entropy of softmax(0.005 z)
against the model's own arg-max, over 2,560; penalty lambda * sum F (theta - theta_t)^2; published lambda 200.

1. The lambda curve: every lambda of LAMBDAS for ReLU and for the SDMLP (k = 10, GABA switch scaled to the
   budget as in study 15), on tuning seed 1000 with 400 validation images per class held out of 5,000
   training images per class; scored on the validation images alone (the search jobs read no test image).
2. Each model at its best lambda on validation ACC, run under the recipe proper (every training image of
   each task) on seeds 0-2, tested, beside study 15's same recipe without EWC (studies/15_recipes/sdm_10_epochs.json).
Budget: 10 epochs per task (Table 9's); `--epochs E` runs the same at E epochs per task (a budget study 15
ran without EWC: 20, 50, 100 or 200), its outputs in studies/18_sdm_ewc/E_epochs/. Resumable: rerunning goes
on from the run folders.
"""
import json
import sys

import numpy as np

from common import (OPTIONS, RUNS, STUDIES, aggregate_groups, c, ci, colour, parse_study_args, refresh_statistics,
                    save_figure, write_text)
from tuning import job_config, load_table, pending, run_pool, search_stores

STUDY = "18_sdm_ewc"
EPOCHS = 10                                                  # the default budget, Table 9's
BUDGETS = (10, 20, 50, 100, 200)                             # those study 15 ran without EWC (the baseline row)
LAMBDAS = (1e2, 1e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7)
TUNE_SEED, EVAL_SEEDS = 1000, 3
RECIPE = ["--recipe", "sdm-split-mnist"]
SEARCH_DATA = ["--n-train-per-class", "5000"]                 # 400 more per class fit MNIST's rarest digit (5,421)
VAL = 400
PAPER = {"ReLU": ("0.61 (Table 7, 500 epochs); EWC 63.23 % (Table 9, 10 epochs)", 0.61),
         "SDMLP k=10": ("0.83 (Table 7, 500 epochs)", 0.83)}


def models(epochs: int) -> dict:
    """The two models, the SDMLP's GABA switch scaled to the budget as in study 15 (10,000 firings per epoch)."""
    return {"ReLU": "relu", "SDMLP k=10": f"sdm:k=10:schedule=gaba:gaba={10_000 * epochs}"}


def spec(model: str, lam: float, epochs: int) -> str:
    return f"{models(epochs)[model]}:ewc={lam:g}:ewc_fisher=sdm"


def where(root, epochs: int):
    """The budget's folder under root: the default budget at root itself, as first run."""
    return root / STUDY if epochs == EPOCHS else root / STUDY / f"{epochs}_epochs"


def search(epochs: int) -> dict:
    """{model: {lambda: validation ACC at the end, or None if the job failed}} on the tuning seed."""
    specs = [spec(m, lam, epochs) for m in models(epochs) for lam in LAMBDAS]
    config = job_config([*RECIPE, *SEARCH_DATA], specs, {"lr": 0.05, "momentum": 0.0, "epochs": epochs}, VAL)
    store = search_stores(where(RUNS, epochs), [config])[0]
    run_pool(pending(store, {**config, "no_test": True}, [TUNE_SEED], specs), "search")
    table, seconds = load_table([store], [TUNE_SEED], specs)
    out = {}
    for m in models(epochs):
        out[m] = {}
        for lam in LAMBDAS:
            s = table[spec(m, lam, epochs)].get(0, {}).get(TUNE_SEED)
            out[m][f"{lam:g}"] = None if s is None or s["failed"] else float(np.mean(s["val_R"][-1]))
    return {"val_acc": out, "failed": {m: [f"{lam:g}" for lam in LAMBDAS if (table[spec(m, lam, epochs)].get(0, {})
                                                                             .get(TUNE_SEED) or {}).get("failed")]
                                       for m in out}, "core_minutes": seconds / 60}


def best(curve: dict) -> str | None:
    scored = [(v, lam) for lam, v in curve.items() if v is not None]
    return max(scored, key=lambda t: (t[0], -float(t[1])))[1] if scored else None   # ties: the smaller lambda


def evaluate(picks: dict, epochs: int) -> dict:
    specs = [spec(m, float(lam), epochs) for m, lam in picks.items() if lam is not None]
    out, runs = where(STUDIES, epochs) / "evaluation.json", where(RUNS, epochs) / "evaluation"
    code = c.main([*RECIPE, "--epochs", str(epochs), "--models", ",".join(specs), "--seed", "0",
                   "--n-seeds", str(OPTIONS.seeds or EVAL_SEEDS), "--run-dir", str(runs), "--out", str(out),
                   "--snapshots", str(runs / "snapshots.npz"), "--workers", str(OPTIONS.workers), "--quiet"])
    if code not in (0, 3):
        sys.exit(f"[{STUDY}] evaluation exited {code}")
    return json.loads(out.read_text())


def curve_figure(doc: dict, evaluation: dict, path) -> None:
    """The lambda curve on validation images (lines), each model's picked lambda under the recipe proper on
    the evaluation seeds (a diamond with its 95 % interval), and the paper's numbers (dotted lines)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.6, 4.6))
    fig.subplots_adjust(left=0.09, right=0.6, bottom=0.13, top=0.83)
    for i, (m, curve) in enumerate(doc["search"]["val_acc"].items()):
        col = colour("relu" if m == "ReLU" else "sdm:k=10")
        lams = [float(lam) for lam, v in curve.items() if v is not None]
        ax.plot(lams, [v for v in curve.values() if v is not None], "-o", ms=4, color=col,
                label=f"{m} + EWC: validation, seed {TUNE_SEED}")
        failed = [float(lam) for lam in doc["search"]["failed"][m]]
        if failed:                              # one row of marks per model, so neither hides the other
            ax.plot(failed, [0.03 + 0.05 * i] * len(failed), "x", ms=7, mew=2, color=col,
                    label=f"{m}: learned nothing (never picked)")
        agg = (evaluation.get("aggregate") or {}).get("variants", {}).get(spec(m, float(doc["picks"][m]), doc["epochs"]))
        if agg:
            d = agg["acc"]
            lo, hi = d["ci95"] if d["ci95"] else (d["mean"], d["mean"])
            ax.errorbar([float(doc["picks"][m])], [d["mean"]], yerr=[[d["mean"] - lo], [hi - d["mean"]]], fmt="D",
                        ms=7, color=col, mec="black", mew=0.6, capsize=3,
                        label=f"{m} + EWC at its pick: test, seeds 0-{doc['eval_seeds'] - 1}")
        ax.axhline(PAPER[m][1], color=col, ls=":", lw=1.4, label=f"{m} + EWC, paper (500 epochs): {PAPER[m][1]:.2f}")
    ax.axhline(0.6323, color="0.35", ls="--", lw=1, label="EWC, paper's Table 9 (10 epochs): 0.632")
    ax.axvline(200, color="0.6", lw=1, label="the paper's lambda (200)")
    ax.set_xscale("log")
    ax.set_xlabel("EWC lambda (log scale)")
    ax.set_ylabel("ACC after the 5th task")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.set_title(f"EWC under the SDM recipe, {doc['epochs']} epochs per task\n(class-incremental split MNIST,\n"
                 "one layer of 1,000 units, SGD 0.05 clipped to norm 1)", fontsize=9.5)
    save_figure(fig, path)


def summary(doc: dict) -> list:
    epochs, names = doc["epochs"], list(doc["search"]["val_acc"])
    flag = "" if epochs == EPOCHS else f" --epochs {epochs}"
    lines = [f"# Study 18: EWC under the SDM recipe ({epochs} epochs per task)", "",
             f"`python studies/{STUDY}.py{flag}` (search: `{' '.join(RECIPE + SEARCH_DATA)} --epochs {epochs} "
             f"--val-per-class {VAL}` on seed {TUNE_SEED}, validation images only; evaluation: "
             f"`{' '.join(RECIPE)} --epochs {epochs}` on seeds 0-{doc['eval_seeds'] - 1}, test images).", "",
             "## The lambda curve (validation ACC after the 5th task, tuning seed; - = the job failed)", "",
             "| lambda | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for lam in LAMBDAS:
        cells = [doc["search"]["val_acc"][m][f"{lam:g}"] for m in names]
        lines.append(f"| {lam:g} | " + " | ".join("-" if v is None else f"{v:.4f}" for v in cells) + " |")
    lines += ["", "## At the best lambda, under the recipe proper (test ACC over seeds, mean [95% CI])", "",
              "| model | lambda | ACC with EWC | learning acc. | without EWC (study 15) | the paper |",
              "|---|---|---|---|---|---|"]
    for m, lam in doc["picks"].items():
        row = doc["evaluation"].get(m)
        base = doc["without_ewc"].get(m)
        lines.append(f"| {m} | {lam} | {row['acc'] if row else 'failed'} | {row['learning_acc'] if row else ''} | "
                     f"{base or ''} | {PAPER[m][0]} |")
    lines += ["", *doc["notes"]]
    return lines


def cells(doc: dict, variant: str) -> dict | None:
    agg = (doc.get("aggregate") or {}).get("variants", {}).get(variant)
    if agg is None:
        return None
    return {"acc": f"{ci(agg['acc'])} ({agg['n_seeds']} seeds, {agg['n_failed']} failed)",
            "learning_acc": ci(agg["learning_acc"])}


def budget_flag(parser) -> None:
    parser.add_argument("--epochs", type=int, choices=BUDGETS, default=EPOCHS,
                        help=f"epochs per task (default {EPOCHS}, Table 9's); another budget writes its outputs "
                             "in studies/18_sdm_ewc/<epochs>_epochs/")


def main() -> None:
    parse_study_args(__doc__, extra=budget_flag)
    epochs = OPTIONS.epochs
    out = where(STUDIES, epochs)
    if OPTIONS.redraw:                          # the committed results, redrawn: nothing runs
        doc, evaluation = (json.loads((out / name).read_text()) for name in ("ewc.json", "evaluation.json"))
        refresh_statistics(aggregate_groups(evaluation["aggregate"]), out / "evaluation.json", evaluation)
        curve_figure(doc, evaluation, out / "lambda.png")
        write_text(out / "summary.md", summary(doc))
        return
    if OPTIONS.dry_run:
        n = len(models(epochs)) * len(LAMBDAS)
        print(f"[{STUDY}] search: {n} jobs on seed {TUNE_SEED}; evaluation: {len(models(epochs))} models x "
              f"{OPTIONS.seeds or EVAL_SEEDS} seeds; about {epochs / EPOCHS:g} minute(s) of one core per job")
        return
    searched = search(epochs)
    picks = {m: best(curve) for m, curve in searched["val_acc"].items()}
    evaluation = evaluate(picks, epochs)
    base = json.loads((STUDIES / "15_recipes" / f"sdm_{epochs}_epochs.json").read_text())
    doc = {"study": STUDY, "epochs": epochs, "lambdas": LAMBDAS, "models": models(epochs), "tune_seed": TUNE_SEED,
           "eval_seeds": OPTIONS.seeds or EVAL_SEEDS, "search": searched, "picks": picks,
           "evaluation": {m: cells(evaluation, spec(m, float(lam), epochs)) for m, lam in picks.items() if lam},
           "without_ewc": {m: (cells(base, v) or {}).get("acc") for m, v in models(epochs).items()},
           "notes": ["The paper's numbers are at 500 epochs per task (Table 7) or from its Table 9 at 10; ours are "
                     f"at {epochs}. A lambda curve on one tuning seed is a single draw: its noise is not in the "
                     "intervals, which are over the evaluation seeds at the picked lambda."]}
    write_text(out / "ewc.json", [json.dumps(doc, indent=1, allow_nan=False)])
    curve_figure(doc, evaluation, out / "lambda.png")
    write_text(out / "summary.md", summary(doc))
    print("\n".join(summary(doc)))


if __name__ == "__main__":
    main()
