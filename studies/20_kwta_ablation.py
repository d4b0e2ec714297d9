"""Study 20: k-winners taken apart. Under its source's recipe on permuted MNIST (study 15: kWTA 0.925 against
a dense MLP's 0.827 after 10 tasks), which ingredient carries the advantage?

The recipe's k-winners network differs from its dense baseline in two things besides competition: its
learning rate (Adam 1e-4 against the dense network's own 3e-6) and its sparse weights (half of each unit's
incoming weights held at zero); both share two more, normalised inputs and numenta's "modified"
initialisation (which scales by the expected density of the layer's input). The cells:
- k-winners as the recipe runs it (5 % of 2 x 2048 units win, no boosting, half the weights zero, lr 1e-4);
- the dense ReLU network with everything else equal (lr 1e-4, half the weights zero): competition alone;
- the dense network at lr 1e-4 with dense weights, and at its source's own 3e-6 (the recipe's baseline);
- k-winners with each ingredient switched back: dense weights, lr 3e-6, and 1 % or 20 % of units winning;
- k-winners and the equal dense network without the input normalisation, and with torch's initialisation
  (two further settings on the same seeds, so every cell is paired with every other);
- a rate chosen on validation images for the network that trails in each setting at the recipe's rate: the
  equal dense network with the recipe's inputs and initialisation (k-winners keeps its source's 1e-4), and
  k-winners on pixel inputs and with torch's initialisation (the dense network keeps 1e-4), so each
  setting's verdict is read with the tuning on the side it goes against. Adam's rate is searched over
  SEARCH_LRS on TUNE_SEEDS tuning seeds (never evaluation seeds), 400 images per class and task held out of
  5,000 per class (so the search trains on 50,000 images per task, the evaluation on all 60,000), the best
  validation ACC at the end chosen (a rate that failed on any tuning seed never is). Then that rate on the
  evaluation seeds, unless it is 1e-4, which the setting's own cells already hold.
The budget is 1 epoch per task instead of 5 (10 tasks of all 60,000 images; about 6 minutes of one core per
job, a fifth of the recipe's): the ablation asks which ingredient matters, and its 12-15 cells on enough seeds
to test it do not fit at the full budget. 10 seeds: the fewest at which the first table's 7 rows (10 with the
chosen rates), Holm-corrected, can each reach p < 0.05 with the exact Wilcoxon test even if one seed disagrees. Three
tables: every cell against k-winners, the dense cells against the equal dense network, and competition's
effect within each setting (k-winners against the dense network with everything else equal, on the same inputs and
initialisation). Finished jobs are committed in studies/20_kwta_ablation/jobs/, so the study runs over
several sittings and goes on where it stopped.
"""
import json

import numpy as np

from common import (OPTIONS, ROOT, RUNS, ablation_figure, c, cell_comparisons, cell_summary, cell_table, check_only,
                    cost_text, keep_jobs, kept_folder, parse_study_args, restore_jobs, run_setting, show, write_text)
from tuning import TUNE_SEED, job_scores, load_table, pending, run_pool, select

STUDY = "20_kwta_ablation"
EPOCHS, SEEDS = 1, 10
KWTA = "kwinners:percent_on=0.05:boost_strength=0:k_inference_factor=1:weight_sparsity=0.5"
EQUAL_DENSE = "relu:weight_sparsity=0.5"        # at the run's lr, 1e-4, as k-winners
RECIPE = ["--recipe", "kwta-permuted", "--epochs", str(EPOCHS)]
SETTINGS = {                                    # label: (extra flags, {cell name: spec})
    "recipe": ([], {"k-winners": KWTA, "dense, all else equal": EQUAL_DENSE, "dense, dense weights": "relu",
                    "dense at its own lr 3e-6": "relu:lr=3e-06",
                    "k-winners, dense weights": KWTA.replace("weight_sparsity=0.5", "weight_sparsity=1"),
                    "k-winners at lr 3e-6": KWTA + ":lr=3e-06",
                    "k-winners, 1 % win": KWTA.replace("percent_on=0.05", "percent_on=0.01"),
                    "k-winners, 20 % win": KWTA.replace("percent_on=0.05", "percent_on=0.2")}),
    "pixels": (["--no-normalize"], {"k-winners, pixel inputs": KWTA,
                                    "dense all else equal, pixel inputs": EQUAL_DENSE}),
    "torch init": (["--init", "torch"], {"k-winners, torch init": KWTA,
                                         "dense all else equal, torch init": EQUAL_DENSE}),
}
SEARCHES = {                                    # setting: (network, its spec, cell suffix) whose rate is chosen
    "recipe": ("dense", EQUAL_DENSE, ""),
    "pixels": ("k-winners", KWTA, ", pixel inputs"),
    "torch init": ("k-winners", KWTA, ", torch init"),
}
SEARCH_LRS, TUNE_SEEDS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3), 3
VAL_PER_CLASS = 400                             # validation images per class and task, beside 5,000 for training
RECIPE_LR = 1e-4


def search_names(label: str) -> tuple:
    """(the search's name, the chosen rate's setting) for a setting; the recipe's, searched first, has no prefix."""
    prefix = "" if label == "recipe" else label.replace(" ", "_") + "_"
    return prefix + "rate_search", prefix.replace("_", " ") + "chosen rate"


def search_args(label: str) -> list:
    """The search's command line: the setting's flags, fewer training images, a validation split, one
    variant per rate of the network searched (only the rate differs)."""
    _, spec, _ = SEARCHES[label]
    return [*RECIPE, *SETTINGS[label][0], "--n-train-per-class", "5000", "--val-per-class", str(VAL_PER_CLASS),
            "--models", ",".join(f"{spec}:lr={lr:g}" for lr in SEARCH_LRS)]


def rate_search(label: str) -> dict | None:
    """Run (or resume) the rate search of one setting, on the tuning seeds, as tuned studies search: jobs that
    read no test image and skip the headline analysis. Returns {rate: [validation ACC at the end per tuning
    seed, None where the run failed]}, also written to <search name>.json; with --dry-run, --redraw or --only
    without it, the committed one (None if there is none yet)."""
    name, args = search_names(label)[0], search_args(label)
    out, runs, kept = ROOT / "studies" / STUDY / f"{name}.json", RUNS / STUDY / name, kept_folder(STUDY, name)
    config = {**c.parse_config([*args, "--workers", "1"])[0], "no_test": True}
    seeds, variants = list(range(TUNE_SEED, TUNE_SEED + TUNE_SEEDS)), config["models"]
    cost = ""
    if not OPTIONS.redraw:                                      # the cost counts images: it reads the data set
        flops = sum(c.count_flops(config, c.task_table(config))["per_variant_other_seed"].values())
        cost = f"  ({cost_text(len(seeds) * len(variants), flops * len(seeds))})"
    print(f"[{STUDY}] {name}: python compete_to_compute.py {' '.join(args)} --seed {TUNE_SEED} --n-seeds "
          f"{TUNE_SEEDS}, no test images{cost}", flush=True)
    if OPTIONS.dry_run or OPTIONS.redraw or (OPTIONS.only is not None and name not in OPTIONS.only):
        return {float(k): v for k, v in json.loads(out.read_text()).items()} if out.is_file() else None
    restore_jobs(kept, runs)
    store = c.RunDir(runs, config)
    try:
        run_pool(pending(store, config, seeds, variants), name.replace("_", " "))
    finally:
        keep_jobs(runs, kept)
    table, _ = load_table([store], seeds, variants)
    scores = {lr: [job_scores(table[v][0][s])["all"] for s in seeds] for lr, v in zip(SEARCH_LRS, variants)}
    write_text(out, [json.dumps({f"{lr:g}": v for lr, v in scores.items()}, indent=1)])
    return scores


def chosen_rate(scores: dict) -> float | None:
    """The rate with the best mean validation ACC; one that failed on any tuning seed is never chosen."""
    i = select({i: None if None in v else float(np.mean(v)) for i, v in enumerate(scores.values())})
    return None if i is None else list(scores)[i]


def chosen_cell(label: str, rate: float) -> tuple:
    """(cell name, spec) of the searched network at its chosen rate, in the setting's flags."""
    who, spec, suffix = SEARCHES[label]
    return f"{who} at its validation-chosen lr {rate:.0e}{suffix}".replace("e-0", "e-"), f"{spec}:lr={rate:g}"


def search_lines(label: str, scores: dict, pick: float | None) -> list:
    """A search's table: each rate's validation ACC per tuning seed and its mean, the pick marked."""
    who, _, suffix = SEARCHES[label]
    lines = [f"## The rate of {'the equal dense network' if who == 'dense' else who}{suffix}, chosen on validation", "",
             f"`python compete_to_compute.py {' '.join(search_args(label))} --seed {TUNE_SEED} --n-seeds "
             f"{TUNE_SEEDS}` (run without test images): validation ACC at the end, {VAL_PER_CLASS} images per class "
             "and task held out of the training images; the evaluation seeds never enter the choice.", "",
             "| Adam lr | " + " | ".join(f"seed {TUNE_SEED + i}" for i in range(TUNE_SEEDS)) + " | mean |",
             "|---|" + "---|" * (TUNE_SEEDS + 1)]
    for lr, v in scores.items():
        lines.append(f"| {lr:g}{' (chosen)' if lr == pick else ''} | "
                     + " | ".join("failed" if x is None else f"{x:.4f}" for x in v)
                     + f" | {'failed' if None in v else f'{np.mean(v):.4f}'} |")
    return lines + [""]


def write_outputs(docs: dict, settings: dict, search: list) -> None:
    cells = {name: (docs[label], v) for label, (_, specs) in settings.items() if label in docs
             for name, v in specs.items()}
    kwta_back = [n for n in cells if n.startswith("k-winners") and n != "k-winners"]
    dense = [n for n in cells if n.startswith("dense") and n != "dense, all else equal"]
    tuned = [n for n in dense if "validation-chosen" in n]
    equal_dense = {tuple(flags): next(k for k, v in specs.items() if v == EQUAL_DENSE)    # per inputs and init
                   for label, (flags, specs) in settings.items() if label in docs and EQUAL_DENSE in specs.values()}
    twins = {name: equal_dense[tuple(flags)] for label, (flags, specs) in settings.items() if label in docs
             for name, v in specs.items() if v == KWTA or (v.startswith(KWTA + ":lr=") and "validation-chosen" in name)}
    n = min(len(d["per_seed"]) for d in docs.values())
    tables = {             # key: (base, cells, table title, figure panel)
        "against k-winners": ("k-winners", ["dense, all else equal", *tuned] + kwta_back, "Each ingredient switched "
                              "back, and competition removed, against k-winners as the recipe runs it",
                              "ACC − k-winners'"),
        "against the equal dense network": ("dense, all else equal", dense, "The dense network's ingredients, "
                                            "against the dense network with everything but competition equal to "
                                            "k-winners", "ACC − the equal dense network's"),
        **({"competition in each setting": (twins, list(twins), "Competition's effect in each setting: k-winners "
                                            "(also at its validation-chosen rate, where one was chosen) against the "
                                            "dense network with everything else equal, on the same inputs and "
                                            "initialisation", "ACC − the equal dense network's, same "
                                            "setting")}
           if len(twins) > 1 else {})}                      # one setting: the first table's first row already
    cmp = {key: cell_comparisons(cells, base, names) for key, (base, names, _, _) in tables.items()}
    write_text(ROOT / "studies" / STUDY / "comparisons.json", [json.dumps(cmp, indent=1, allow_nan=False)])
    command = "python studies/20_kwta_ablation.py" + ("" if n == SEEDS else f" --seeds {n}")
    lines = ["# Study 20: k-winners taken apart", "",
             f"`{command}`: permuted MNIST, 10 tasks, under the k-winners source's recipe "
             f"(`python compete_to_compute.py {' '.join(RECIPE)}`, with the flags of each setting below) at "
             f"{EPOCHS} epoch per task (the source: 5), {n} seeds, every cell on the same seeds.", ""]
    for label, (flags, specs) in settings.items():
        lines.append(f"- {label}: `{' '.join(RECIPE + flags)} --models {','.join(specs.values())}`"
                     + ("" if label in docs else " (not run yet)"))
    lines += ["", "## Every cell", "", "Mean over the seeds where the cell did not fail, 95% t interval.", "",
              *cell_summary(cells), "", *search, "## Comparisons (also in comparisons.json)",
              *[line for key, (base, names, title, _) in tables.items()
                for line in ["", *cell_table(cells, base, names, title, cmp[key])]]]
    write_text(ROOT / "studies" / STUDY / "summary.md", lines)
    ablation_figure(cells, [(panel, base, names) for base, names, _, panel in tables.values()],
                    f"k-winners taken apart: permuted MNIST, 10 tasks, its source's recipe at {EPOCHS} epoch per "
                    f"task,\n{n} paired seeds (a failed run counts at what it scored)",
                    ROOT / "studies" / STUDY / "ablation.png")
    show(lines)


if __name__ == "__main__":
    parse_study_args(__doc__)
    searched = [name for label in SEARCHES for name in search_names(label)]
    check_only([name.replace(" ", "_") for name in [*SETTINGS, *searched]])
    settings, docs, search = dict(SETTINGS), {}, []
    for label in SEARCHES:
        scores = rate_search(label)
        if scores is not None:
            pick = chosen_rate(scores)
            search += search_lines(label, scores, pick)
            if pick is not None and pick != RECIPE_LR:
                settings[search_names(label)[1]] = (SETTINGS[label][0], dict([chosen_cell(label, pick)]))
    for label, (flags, specs) in settings.items():
        doc = run_setting(STUDY, label.replace(" ", "_"), [*RECIPE, *flags, "--models", ",".join(specs.values())],
                          SEEDS, keep=True, missing_ok=True)
        if doc is not None:
            docs[label] = doc
    if "recipe" in docs:
        write_outputs(docs, settings, search)
