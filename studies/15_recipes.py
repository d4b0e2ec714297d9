"""Study 15: sleep replay, the SDM MLP and k-winners, each under its source's own recipe, beside its numbers.

`--recipe NAME` sets every flag of a source's protocol (compete_to_compute.RECIPES). Where the full recipe
does not fit this machine (SDM: 500 epochs per task; kWTA: 5 epochs of 60,000 images on 2 x 2048 units),
this study runs the largest budget that does and shows how the result moves with the budget. Settings run
in order of cost; the study resumes from its run folders when run again.
"""
import sys

import numpy as np

from common import ROOT, check_only, ci, colour, parse_study_args, run_setting, save_figure, write_study, write_text

sys.path.insert(0, str(ROOT))
import compete_to_compute as c  # noqa: E402

STUDY = "15_recipes"
SDM_EPOCHS = (10, 20, 50, 100, 200, 500)
GABA_PER_EPOCH = 10_000           # the source's N = 5,000,000 over 500 epochs, scaled with the budget


def sdm_models(epochs: int, baselines: bool = True) -> str:
    n = GABA_PER_EPOCH * epochs
    return ("relu,topk:k=10," if baselines else "") + f"sdm:k=10:schedule=gaba:gaba={n},sdm:k=1:schedule=gaba:gaba={n}"


SDM_SEEDS = {10: 3, 20: 3, 50: 3, 100: 1, 200: 3, 500: 3}


def sdm_setting(epochs: int, baselines: bool = True, seeds: int | None = None) -> tuple:
    return (["--recipe", "sdm-split-mnist", "--epochs", str(epochs), "--models", sdm_models(epochs, baselines)],
            seeds or SDM_SEEDS[epochs])


SETTINGS = {                       # label: (flags, seeds), cheapest first
    "src": (["--recipe", "src-mnist"], 10),
    "src joint": (["--recipe", "src-mnist", "--joint", "--n-train-first", "60000",
                   "--models", "relu:bias=0:dropout=0.25"], 5),
    **{f"sdm {e} epochs": sdm_setting(e) for e in (10, 20, 50)},
    "kwta 5 epochs": (["--recipe", "kwta-permuted"], 3),          # the source's own budget (it ran 8 seeds)
    "sdm 100 epochs": sdm_setting(100),
    # The source's budget and the step below it: the SDMLP on 3 seeds (10-60 minutes of one core per job),
    # ReLU and Top-K at 500 on one. These run over several sittings: their finished jobs are committed.
    **{f"sdm {e} epochs": sdm_setting(e, baselines=False) for e in (200, 500)},
    "sdm 500 epochs baselines": (sdm_setting(500)[0][:-1] + ["relu,topk:k=10"], 1),
}
KEPT = {"sdm 200 epochs", "sdm 500 epochs", "sdm 500 epochs baselines"}

# The sources' own numbers (ACC after the last task, mean over their seeds), by setting and variant.
SOURCE = {
    "src": {"relu:bias=0:dropout=0.25": ("19.5 % (quoted by a survey; unverified)", 0.195),
            "relu:sleep=1:dropout=0.25": ("48.5 % (quoted by a survey; unverified)", 0.485)},
    "sdm": {"relu": ("0.21 (Bricken et al. 2023, Table 7, 3 seeds, 500 epochs)", 0.21), "topk:k=10": ("0.22", 0.22),
            "sdm:k=10": ("0.53", 0.53), "sdm:k=1": ("0.69", 0.69)},
    "kwta": {"relu": ("0.820 (8 seeds, 5 epochs, its own lr 3e-6)", 0.820),
             "kwinners": ("0.913 (8 seeds, 5 epochs, lr 1e-4)", 0.913)},
}


def source_of(label: str, variant: str):
    if label == "src joint":
        return ("not retrieved here", None)
    table = SOURCE[label.split()[0]]
    key = next((k for k in table if variant == k or variant.startswith(k + ":")), None)
    return table[key] if key else ("", None)


def sdm_runs(docs: dict, key: str) -> dict:
    """epochs -> (ACCs of the seeds that learned, ACCs of the seeds that failed) of one variant, over the settings
    that ran it: a failed run's ACC is its outcome, drawn apart."""
    out = {}
    for e in SDM_EPOCHS:
        for label in (f"sdm {e} epochs", f"sdm {e} epochs baselines"):
            doc = docs.get(label)
            v = next((v for v in doc["config"]["models"] if v == key or v.startswith(key + ":")), None) if doc else None
            if v:
                out[e] = tuple([r["summary"][v]["acc"] for r in doc["per_seed"] if bool(r["summary"][v]["failed"]) == f]
                               for f in (False, True))
    return out


def budget_figure(docs: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.7, 4.3))
    fig.subplots_adjust(left=0.11, right=0.64, bottom=0.13, top=0.86)
    names = {"relu": ("ReLU", "o", -0.03), "topk:k=10": ("Top-K k=10", "D", -0.01),
             "sdm:k=10": ("SDMLP k=10", "o", 0.01), "sdm:k=1": ("SDMLP k=1", "s", 0.03)}
    budgets = set()
    for key, (name, marker, shift) in names.items():
        col, runs = colour(key), sdm_runs(docs, key)
        budgets |= set(runs)
        means = [(e, np.mean(accs + failed)) for e, (accs, failed) in runs.items()]
        ax.plot(*zip(*means), "--" if key == "sdm:k=1" else "-", color=col, lw=1.2, label=f"{name}: mean of seeds")
        for e, (accs, failed) in runs.items():
            x = e * 10 ** shift                 # side by side on the log axis
            ax.plot([x] * len(accs), accs, marker, ms=4, color=col, alpha=0.75, ls="none")
            ax.plot([x] * len(failed), failed, "x", ms=7, mew=2, color=col, ls="none")
        ref = source_of("sdm", key)[1]
        ax.plot([500 * 10 ** shift], [ref], marker="*", ms=12, color=col, mec="black", mew=0.5, ls="none")
    ax.plot([], [], "k*", ms=10, ls="none", label="the source's ACC at 500 epochs\n(Bricken et al. 2023, 3 seeds)")
    ax.plot([], [], "kx", ms=7, mew=2, ls="none", label="a seed that failed (learned nothing\non a task), at its ACC")
    ax.plot([], [], "ko", ms=4, ls="none", label="one seed")
    ticks = sorted(budgets | {500})
    ax.set_xscale("log")
    ax.set_xticks(ticks, [str(e) for e in ticks])
    ax.minorticks_off()
    ax.set_xlabel("epochs per task (log scale)")
    ax.set_ylabel("ACC after 5 tasks")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    seeds = {e: max(len(docs[k]["per_seed"]) for k in docs if k.startswith(f"sdm {e} epochs")) for e in budgets}
    fig.suptitle("SDM recipe, class-incremental split MNIST: ACC by budget, every seed a point\n"
                 f"(seeds per budget: {', '.join(f'{e}: {n}' for e, n in sorted(seeds.items()))})", fontsize=9)
    save_figure(fig, path)


def silent_units(doc: dict, variant: str) -> str:
    """Hidden units silent on every task's test images at the end, per layer, mean over the seeds (a diverged
    run has none to count)."""
    per_seed = [r["summary"][variant]["silent"] for r in doc["per_seed"] if r["summary"][variant].get("silent") is not None]
    return " / ".join(f"{np.mean(layer):.0f}" for layer in zip(*per_seed)) if per_seed else ""


def write_outputs(docs: dict) -> None:
    lines = ["| recipe (setting) | variant | seeds | ACC ours [95% CI] | learning acc. ours | silent units per layer "
             "| source's ACC |", "|---|---|---|---|---|---|---|"]
    for label, doc in docs.items():
        for v, m in doc["aggregate"]["variants"].items() if doc["aggregate"] else []:
            lines.append(f"| {label} | {v} | {m['n_seeds']} ({m['n_failed']} failed) | {ci(m['acc'])} | "
                         f"{ci(m['learning_acc'])} | {silent_units(doc, v)} | {source_of(label, v)[0]} |")
        if not doc["aggregate"]:                # one seed: its own numbers, no interval
            for v, m in doc["per_seed"][0]["summary"].items():
                acc = f"{m['acc']:.4f}" + (" (failed)" if m["failed"] else "")
                learn = f"{m['learning_acc']:.4f}"
                lines.append(f"| {label} | {v} | 1 | {acc} | {learn} | {silent_units(doc, v)} | "
                             f"{source_of(label, v)[0]} |")
    ran = [str(e) for e in SDM_EPOCHS if any(k.startswith(f"sdm {e} epochs") for k in docs)]
    notes = ["Each setting is `python compete_to_compute.py --recipe NAME [budget flags]` (below); ACC is test "
             "accuracy over all tasks after the last, mean over seeds with a 95% t interval; silent units: hidden "
             "units that fire on no test image of any task at the end (mean over seeds).", "", *lines, "",
             "Budgets: SDM's recipe is 500 epochs per task (9.6e13 FLOPs per model and seed, 28-41 minutes per job "
             f"here, two at once); these runs use {', '.join(ran)} epochs per task, with the GABA switch's N scaled to "
             f"{GABA_PER_EPOCH:,} firings per epoch (5,000,000 at 500), each on the seeds its rows show. "
             "kWTA's recipe is its source's in "
             "full: 5 epochs per task on all 60,000 images (1.1e14 FLOPs per model and seed, 20-60 minutes of one "
             "core here), normalised inputs and the source's modified initialisation, k-winners at lr 1e-4 and the "
             "dense MLP at the source's own 3e-6, on 3 seeds (the source ran 8)."]
    write_text(ROOT / "studies" / STUDY / "recipes.md", notes)
    write_study(STUDY, "Study 15: each mechanism under its source's recipe",
                {k: d for k, d in docs.items() if d["aggregate"]}, notes, figure=False)   # budget.png instead
    if any(k.startswith("sdm") for k in docs):
        budget_figure(docs, ROOT / "studies" / STUDY / "budget.png")


if __name__ == "__main__":
    parse_study_args(__doc__)
    check_only([label.replace(" ", "_") for label in SETTINGS])
    docs = {}
    for label, (args, seeds) in SETTINGS.items():       # outputs rewritten after each setting
        doc = run_setting(STUDY, label.replace(" ", "_"), args, seeds, missing_ok=True,  # None: not run yet
                          keep=label in KEPT)
        if doc is not None:
            docs[label] = doc
            write_outputs(docs)
