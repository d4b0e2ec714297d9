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
k=1 learned nothing on some task on every seed there at this budget (ACC 0.268) and is not ablated. Finished jobs are committed in
studies/19_sdm_ablation/jobs/, so running the script again goes on where it stopped.
"""
import json

from common import (OPTIONS, ROOT, ablation_figure, cell_comparisons, cell_summary, cell_table, parse_study_args,
                    run_setting, show, write_text)

STUDY = "19_sdm_ablation"
EPOCHS, K, WIDTH = 20, 10, 1000
N = 10_000 * EPOCHS                # the GABA switch's firings, scaled with the budget as in study 15
SEEDS = 20                         # 10 finished and committed so far; running the script again adds 10-19
FULL = {"k": K, "gaba": N}         # the SDMLP as its source runs it; every other key at sdm's default
OFF = {"unit_norm": 0, "nonneg": 0, "bias": 1, "gaba": 0}     # each ingredient's key when it is switched off
INGREDIENTS = {"unit_norm": "unit-norm inputs and rows", "nonneg": "non-negative weights", "bias": "bias-free",
               "gaba": "GABA switch"}


def spec(**keys) -> str:
    return "sdm:" + ":".join(f"{k}={v}" for k, v in keys.items())


SDMLP, BARE = "SDMLP", "bare subtractive Top-K"
CELLS = {                          # name: spec
    "ReLU": "relu",
    "plain Top-K": f"topk:k={K}",
    BARE: spec(k=K, **OFF),
    **{f"bare + {name}": spec(k=K, **{**OFF, key: FULL.get(key, 1 - OFF[key])}) for key, name in INGREDIENTS.items()},
    SDMLP: spec(**FULL),
    **{f"SDMLP − {name}": spec(**FULL, **{key: OFF[key]}) if key != "gaba" else spec(k=K, gaba=0)
       for key, name in INGREDIENTS.items()},
    "SDMLP − competition (k = width)": spec(k=WIDTH, gaba=N),
}
ARGS = ["--recipe", "sdm-split-mnist", "--epochs", str(EPOCHS), "--models", ",".join(CELLS.values())]


def write_outputs(doc: dict) -> None:
    cells = {name: (doc, v) for name, v in CELLS.items()}
    removed = [n for n in CELLS if n.startswith("SDMLP −")]
    added = [n for n in CELLS if n.startswith("bare +")]
    n = len(doc["per_seed"])
    tables = {"removed": (SDMLP, removed, "The SDMLP minus one ingredient, against the full SDMLP"),
              "added": (BARE, added + ["plain Top-K", SDMLP], "The bare subtractive Top-K plus one ingredient, "
                        "against the bare one (plain Top-K and the full SDMLP beside)"),
              "against ReLU": ("ReLU", list(CELLS)[1:], "Every cell against ReLU")}
    cmp = {key: cell_comparisons(cells, base, names) for key, (base, names, _) in tables.items()}
    write_text(ROOT / "studies" / STUDY / "comparisons.json", [json.dumps(cmp, indent=1, allow_nan=False)])
    lines = ["# Study 19: the SDMLP taken apart", "",
             f"`python studies/19_sdm_ablation.py` runs `python compete_to_compute.py {' '.join(ARGS[:4])} "
             f"--models <the {len(CELLS)} cells below> --seed 0 --n-seeds {n}`: class-incremental split MNIST "
             f"under the SDM source's recipe at {EPOCHS} epochs per task (the source: 500), GABA N = {N:,}, "
             f"k = {K} of {WIDTH} units, {n} seeds, every cell on the same seeds. Each cell is one variant spec "
             "(rerun any with `--models SPEC`).", "",
             "## Every cell", "", "Mean over the seeds where the cell did not fail, 95% t interval.", "",
             *cell_summary(cells), "", "## Comparisons (also in comparisons.json)",
             *[line for key, (base, names, title) in tables.items()
               for line in ["", *cell_table(cells, base, names, title, cmp[key])]]]
    write_text(ROOT / "studies" / STUDY / "summary.md", lines)
    ablation_figure(cells, [("ACC − ReLU's", "ReLU", list(CELLS)[1:]), ("ACC − the full SDMLP's", SDMLP, removed),
                            ("ACC − the bare Top-K's", BARE, added)],
                    f"The SDMLP taken apart: split MNIST, SDM recipe, {EPOCHS} epochs per task, k = {K} of {WIDTH},\n"
                    f"{n} paired seeds (a failed run counts at what it scored)", ROOT / "studies" / STUDY / "ablation.png")
    show(lines)


if __name__ == "__main__":
    parse_study_args(__doc__)
    doc = run_setting(STUDY, f"{EPOCHS}_epochs", ARGS, SEEDS, keep=True, missing_ok=OPTIONS.dry_run)
    if doc is not None:
        write_outputs(doc)
