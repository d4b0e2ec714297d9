"""Study 19: the SDMLP taken apart. Which of its ingredients carries its advantage over ReLU under its source's
recipe (class-incremental split MNIST, one layer of 1,000 units, plain SGD 0.05 clipped to norm 1)?

The SDMLP (Bricken et al. 2023) is Top-K competition plus four things: unit-norm inputs and first-layer weight
vectors, no biases, non-negative weights, and the GABA switch (a unit excites before it has fired N times and
inhibits after). Every cell is one variant spec of one run, so all cells share their seeds, data and
initialisation draws, and each comparison is paired seed by seed:
- the full SDMLP, and the SDMLP minus each ingredient (and minus the competition itself: k = width);
- a bare subtractive Top-K (every ingredient off), and the bare one plus each ingredient alone;
- plain Top-K (the k largest pass unchanged) and ReLU.
The budget is 20 epochs per task (the source: 500), with N scaled to 10,000 firings per epoch as in study 15:
the smallest budget at which the SDMLP k=10 learned every task on every seed in study 15 (3 of 3 seeds,
ACC 0.355 against ReLU's 0.197), so that 10 seeds of 13 cells fit one sitting (about 1.5 h on 2 cores).
k=1 failed on every seed there at this budget and is left out. Finished jobs are committed in
studies/19_sdm_ablation/jobs/, so running the script again goes on where it stopped.
"""
import sys

import numpy as np

from common import (OPTIONS, ROOT, ci, colour, forest, parse_study_args, run_setting, save_figure, show,
                    write_text)

sys.path.insert(0, str(ROOT))
import compete_to_compute as c  # noqa: E402

STUDY = "19_sdm_ablation"
EPOCHS, K, WIDTH = 20, 10, 1000
N = 10_000 * EPOCHS                # the GABA switch's firings, scaled with the budget as in study 15
SEEDS = 10
FULL = {"k": K, "gaba": N}         # the SDMLP as its source runs it; every other key at sdm's default
OFF = {"unit_norm": 0, "nonneg": 0, "bias": 1, "gaba": 0}     # each ingredient's key when it is switched off
INGREDIENTS = {"unit_norm": "unit-norm inputs and rows", "nonneg": "non-negative weights", "bias": "no biases",
               "gaba": "GABA switch"}


def spec(**keys) -> str:
    return "sdm:" + ":".join(f"{k}={v}" for k, v in keys.items())


BARE = spec(k=K, **OFF)
CELLS = {                          # spec: what it is (in the tables and the figure)
    "relu": "ReLU",
    f"topk:k={K}": "plain Top-K (the k largest pass)",
    BARE: "bare subtractive Top-K (no ingredient)",
    **{spec(k=K, **{**OFF, key: FULL.get(key, 1 - OFF[key])}): f"bare + {name}" for key, name in INGREDIENTS.items()},
    spec(**FULL): "SDMLP",
    **{spec(**FULL, **{key: OFF[key]}) if key != "gaba" else spec(k=K, gaba=0): f"SDMLP − {name}"
       for key, name in INGREDIENTS.items()},
    spec(k=WIDTH, gaba=N): "SDMLP − competition (k = width)",
}
ARGS = ["--recipe", "sdm-split-mnist", "--epochs", str(EPOCHS), "--models", ",".join(CELLS)]
METRICS = (("acc", "ACC", True), ("forgetting", "forgetting", False), ("learning_acc", "learning accuracy", True))


def comparisons(doc: dict, base: str, cells: list) -> dict:
    """{metric: {cell: paired comparison against base}}, Holm over the cells (per metric), failed runs left out
    of the pairs (counted in the tables)."""
    out = {}
    for metric, _, higher in METRICS:
        got = {}
        for v in cells:
            pairs = [(r["summary"][v][metric], r["summary"][base][metric]) for r in doc["per_seed"]
                     if not r["summary"][v]["failed"] and not r["summary"][base]["failed"]]
            got[v] = c.paired_comparison([a for a, _ in pairs], [b for _, b in pairs], higher, metric, v, base)
        out[metric] = c.add_holm(got, metric, base)
    return out


def failures(doc: dict, v: str) -> int:
    return sum(bool(r["summary"][v]["failed"]) for r in doc["per_seed"])


def diff_text(cmp: dict) -> str:
    if not cmp["n_pairs"]:
        return "n/a"
    p = cmp["wilcoxon_p_holm"]
    return f"{ci(cmp['diff'], True)} (p {p:.2g})"


def table(doc: dict, base: str, cells: list, title: str) -> list:
    cmp = comparisons(doc, base, cells)
    rows = [f"### {title}", "", f"Paired differences cell − {CELLS[base]} over the seeds where neither failed (mean, "
            "95% t interval; Holm-adjusted exact Wilcoxon p over the rows of this table, per metric).", "",
            "| cell | failed | " + " | ".join(f"{name} − {CELLS[base]}" for _, name, _ in METRICS) + " |",
            "|---|---|" + "---|" * len(METRICS)]
    for v in cells:
        rows.append(f"| {CELLS[v]} | {failures(doc, v)} of {len(doc['per_seed'])} | "
                    + " | ".join(diff_text(cmp[m][v]) for m, _, _ in METRICS) + " |")
    return rows


def write_outputs(doc: dict) -> None:
    agg, n = doc["aggregate"]["variants"], len(doc["per_seed"])
    full, cells = spec(**FULL), list(CELLS)
    lines = ["# Study 19: the SDMLP taken apart", "",
             f"`python studies/19_sdm_ablation.py` runs `python compete_to_compute.py {' '.join(ARGS[:4])} "
             f"--models <the {len(CELLS)} cells below> --seed 0 --n-seeds {n}`: class-incremental split MNIST "
             f"under the SDM source's recipe at {EPOCHS} epochs per task (the source: 500), GABA N = {N:,}, "
             f"k = {K} of {WIDTH} units, {n} seeds, every cell on the same seeds.", "",
             "## Every cell", "", "Mean over the seeds where the cell did not fail, 95% t interval.", "",
             "| cell | spec | seeds (failed) | ACC | forgetting | learning accuracy |", "|---|---|---|---|---|---|"]
    for v in cells:
        m = agg[v]
        lines.append(f"| {CELLS[v]} | `{v}` | {m['n_seeds']} ({m['n_failed_left_out']}) | {ci(m['acc'])} | "
                     f"{ci(m['forgetting'])} | {ci(m['learning_acc'])} |")
    removed = [v for v in cells if CELLS[v].startswith("SDMLP −")]
    added = [v for v in cells if CELLS[v].startswith("bare +")]
    lines += ["", "## Comparisons", "",
              *table(doc, full, removed, "The SDMLP minus one ingredient, against the full SDMLP"), "",
              *table(doc, BARE, added + [f"topk:k={K}", full], "The bare subtractive Top-K plus one ingredient, "
                     "against the bare one (plain Top-K and the full SDMLP beside)"), "",
              *table(doc, "relu", cells[1:], "Every cell against ReLU")]
    write_text(ROOT / "studies" / STUDY / "summary.md", lines)
    figure(doc, removed, added)
    show(lines)


def figure(doc: dict, removed: list, added: list) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    full = spec(**FULL)
    panels = [("ACC − ReLU's, per seed pair", "relu", list(CELLS)[1:]),
              ("ACC − the full SDMLP's", full, removed), ("ACC − the bare Top-K's", BARE, added)]
    fig, axes = plt.subplots(3, 1, figsize=(7.4, 8.2), gridspec_kw={"height_ratios": [12, 5, 4]})
    fig.subplots_adjust(left=0.38, right=0.97, top=0.91, bottom=0.06, hspace=0.45)
    for ax, (title, base, cells) in zip(axes, panels):
        cmp = comparisons(doc, base, cells)["acc"]
        forest(ax, [(f"{CELLS[v]} ({failures(doc, v)} failed)" if failures(doc, v) else CELLS[v], colour(v),
                     cmp[v]["diff"]) for v in cells], title)
        ax.set_xlabel("difference in ACC after 5 tasks (mean, 95% interval)", fontsize=8)
    fig.suptitle(f"The SDMLP taken apart: split MNIST, SDM recipe, {EPOCHS} epochs per task,\n"
                 f"k = {K} of {WIDTH}, {len(doc['per_seed'])} paired seeds (failed runs left out of the pairs)",
                 fontsize=10)
    save_figure(fig, ROOT / "studies" / STUDY / "ablation.png")


if __name__ == "__main__":
    parse_study_args(__doc__)
    doc = run_setting(STUDY, f"{EPOCHS}_epochs", ARGS, SEEDS, keep=True, missing_ok=OPTIONS.dry_run)
    if doc is not None:
        write_outputs(doc)
