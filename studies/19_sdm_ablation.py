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
ACC 0.355 against ReLU's 0.197), on 20 seeds (13 cells, 260 jobs, about 2.4 h on 2 cores).
k=1 learned nothing on some task on every seed there at this budget (ACC 0.268), so it is taken apart at 50
epochs per task instead (study 15: ACC 0.555 on 3 seeds, every task learned), on 10 seeds (about 6 core-hours):
the second setting, run after the first. Finished jobs are committed in studies/19_sdm_ablation/jobs/, so
running the script again goes on where it stopped.
"""
import json

from common import (OPTIONS, ROOT, ablation_figure, cell_comparisons, cell_summary, cell_table, check_only,
                    parse_study_args, run_setting, show, write_text)

STUDY = "19_sdm_ablation"
WIDTH = 1000
SETTINGS = {                       # label: (k, epochs per task, seeds); the first is the study's headline
    "20_epochs": (10, 20, 20),
    "k1_50_epochs": (1, 50, 10),
}
OFF = {"unit_norm": 0, "nonneg": 0, "bias": 1, "gaba": 0}     # each ingredient's key when it is switched off
INGREDIENTS = {"unit_norm": "unit-norm inputs and rows", "nonneg": "non-negative weights", "bias": "bias-free",
               "gaba": "GABA switch"}


def spec(**keys) -> str:
    return "sdm:" + ":".join(f"{k}={v}" for k, v in keys.items())


def gaba_n(epochs: int) -> int:
    """The GABA switch's firings, scaled with the budget as in study 15 (10,000 per epoch)."""
    return 10_000 * epochs


SDMLP, BARE = "SDMLP", "bare subtractive Top-K"


def make_cells(k: int, epochs: int) -> dict:
    """name: spec of every cell at competition k and this budget (the full SDMLP as its source runs it; every
    other key at sdm's default)."""
    full = {"k": k, "gaba": gaba_n(epochs)}
    return {"ReLU": "relu",
            "plain Top-K": f"topk:k={k}",
            BARE: spec(k=k, **OFF),
            **{f"bare + {name}": spec(k=k, **{**OFF, key: full.get(key, 1 - OFF[key])})
               for key, name in INGREDIENTS.items()},
            SDMLP: spec(**full),
            **{f"SDMLP − {name}": spec(**full, **{key: OFF[key]}) if key != "gaba" else spec(k=k, gaba=0)
               for key, name in INGREDIENTS.items()},
            "SDMLP − competition (k = width)": spec(k=WIDTH, gaba=gaba_n(epochs))}


def setting_args(k: int, epochs: int) -> list:
    return ["--recipe", "sdm-split-mnist", "--epochs", str(epochs), "--models", ",".join(make_cells(k, epochs).values())]


def setting_outputs(label: str, doc: dict) -> list:
    """One setting's comparisons (comparisons.json, or comparisons_<label>.json), its figure and its lines."""
    k, epochs, _ = SETTINGS[label]
    first = label == next(iter(SETTINGS))
    cells = {name: (doc, v) for name, v in make_cells(k, epochs).items()}
    names = list(cells)
    removed = [n for n in names if n.startswith("SDMLP −")]
    added = [n for n in names if n.startswith("bare +")]
    n = len(doc["per_seed"])
    tables = {"removed": (SDMLP, removed, "The SDMLP minus one ingredient, against the full SDMLP"),
              "added": (BARE, added + ["plain Top-K", SDMLP], "The bare subtractive Top-K plus one ingredient, "
                        "against the bare one (plain Top-K and the full SDMLP beside)"),
              "against ReLU": ("ReLU", names[1:], "Every cell against ReLU")}
    cmp = {key: cell_comparisons(cells, base, names) for key, (base, names, _) in tables.items()}
    suffix = "" if first else f"_{label}"
    write_text(ROOT / "studies" / STUDY / f"comparisons{suffix}.json", [json.dumps(cmp, indent=1, allow_nan=False)])
    ablation_figure(cells, [("ACC − ReLU's", "ReLU", names[1:]), ("ACC − the full SDMLP's", SDMLP, removed),
                            ("ACC − the bare Top-K's", BARE, added)],
                    f"The SDMLP taken apart: split MNIST, SDM recipe, {epochs} epochs per task, k = {k} of {WIDTH},\n"
                    f"{n} paired seeds (a failed run counts at what it scored)",
                    ROOT / "studies" / STUDY / f"ablation{suffix}.png")
    args = setting_args(k, epochs)
    return [*([] if first else ["", f"# k = {k}, {epochs} epochs per task", ""]),
            f"`python studies/19_sdm_ablation.py` runs `python compete_to_compute.py {' '.join(args[:4])} "
            f"--models <the {len(cells)} cells below> --seed 0 --n-seeds {n}`: class-incremental split MNIST "
            f"under the SDM source's recipe at {epochs} epochs per task (the source: 500), GABA N = "
            f"{gaba_n(epochs):,}, k = {k} of {WIDTH} units, {n} seeds, every cell on the same seeds. Each cell is "
            f"one variant spec (rerun any with `--models SPEC`); figure: `ablation{suffix}.png`.", "",
            "## Every cell", "", "Mean over the seeds where the cell did not fail, 95% t interval.", "",
            *cell_summary(cells), "", f"## Comparisons (also in comparisons{suffix}.json)",
            *[line for key, (base, names, title) in tables.items()
              for line in ["", *cell_table(cells, base, names, title, cmp[key])]]]


if __name__ == "__main__":
    parse_study_args(__doc__)
    check_only(list(SETTINGS))
    lines = ["# Study 19: the SDMLP taken apart", ""]
    for label, (k, epochs, seeds) in SETTINGS.items():
        doc = run_setting(STUDY, label, setting_args(k, epochs), seeds, keep=True,
                          missing_ok=OPTIONS.dry_run or label != next(iter(SETTINGS)))
        if doc is not None:
            lines += setting_outputs(label, doc)
    if not OPTIONS.dry_run:
        write_text(ROOT / "studies" / STUDY / "summary.md", lines)
        show(lines)
