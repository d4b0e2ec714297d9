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
  (two further settings on the same seeds, so every cell is paired with every other).
The budget is 1 epoch per task instead of 5 (10 tasks of all 60,000 images; about 6 minutes of one core per
job, a fifth of the recipe's): the ablation asks which ingredient matters, and 12 cells on enough seeds to
test it do not fit at the full budget. 10 seeds: the fewest at which the first table's 7 rows, Holm-corrected,
can each reach p < 0.05 with the exact Wilcoxon test even if one seed disagrees. Three tables: every cell
against k-winners, the dense cells against the equal dense network, and competition's effect within each
setting (k-winners against the dense network with everything else equal, on the same inputs and
initialisation). Finished jobs are committed in studies/20_kwta_ablation/jobs/, so the study runs over
several sittings and goes on where it stopped.
"""
import json

from common import (ROOT, ablation_figure, cell_comparisons, cell_summary, cell_table, check_only, parse_study_args,
                    run_setting, show, write_text)

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


def write_outputs(docs: dict) -> None:
    cells = {name: (docs[label], v) for label, (_, specs) in SETTINGS.items() if label in docs
             for name, v in specs.items()}
    kwta_back = [n for n in cells if n.startswith("k-winners") and n != "k-winners"]
    dense = [n for n in cells if n.startswith("dense") and n != "dense, all else equal"]
    twins = {next(k for k, v in specs.items() if v == KWTA): next(k for k, v in specs.items() if v == EQUAL_DENSE)
             for label, (_, specs) in SETTINGS.items() if label in docs}     # competition's effect in each setting
    n = min(len(d["per_seed"]) for d in docs.values())
    tables = {"against k-winners": ("k-winners", ["dense, all else equal"] + kwta_back, "Each ingredient switched "
                                    "back, and competition removed, against k-winners as the recipe runs it"),
              "against the equal dense network": ("dense, all else equal", dense, "The dense network's ingredients, "
                                                  "against the dense network with everything but competition equal "
                                                  "to k-winners"),
              **({"competition in each setting": (twins, list(twins), "Competition's effect in each setting: "
                                                  "k-winners against the dense network with everything else equal, "
                                                  "on the same inputs and initialisation")}
                 if len(twins) > 1 else {})}                # one setting: the first table's first row already
    cmp = {key: cell_comparisons(cells, base, names) for key, (base, names, _) in tables.items()}
    write_text(ROOT / "studies" / STUDY / "comparisons.json", [json.dumps(cmp, indent=1, allow_nan=False)])
    command = "python studies/20_kwta_ablation.py" + ("" if n == SEEDS else f" --seeds {n}")
    lines = ["# Study 20: k-winners taken apart", "",
             f"`{command}`: permuted MNIST, 10 tasks, under the k-winners source's recipe "
             f"(`python compete_to_compute.py {' '.join(RECIPE)}`, with the flags of each setting below) at "
             f"{EPOCHS} epoch per task (the source: 5), {n} seeds, every cell on the same seeds.", ""]
    for label, (flags, specs) in SETTINGS.items():
        lines.append(f"- {label}: `{' '.join(RECIPE + flags)} --models {','.join(specs.values())}`"
                     + ("" if label in docs else " (not run yet)"))
    lines += ["", "## Every cell", "", "Mean over the seeds where the cell did not fail, 95% t interval.", "",
              *cell_summary(cells), "", "## Comparisons (also in comparisons.json)",
              *[line for key, (base, names, title) in tables.items()
                for line in ["", *cell_table(cells, base, names, title, cmp[key])]]]
    write_text(ROOT / "studies" / STUDY / "summary.md", lines)
    ablation_figure(cells, [("ACC − k-winners'", "k-winners", ["dense, all else equal"] + kwta_back),
                            ("ACC − the equal dense network's", "dense, all else equal", dense),
                            *([("ACC − the equal dense network's, same setting", twins, list(twins))]
                              if len(twins) > 1 else [])],
                    f"k-winners taken apart: permuted MNIST, 10 tasks, its source's recipe at {EPOCHS} epoch per "
                    f"task,\n{n} paired seeds (a failed run counts at what it scored)",
                    ROOT / "studies" / STUDY / "ablation.png")
    show(lines)


if __name__ == "__main__":
    parse_study_args(__doc__)
    check_only([label.replace(" ", "_") for label in SETTINGS])
    docs = {}
    for label, (flags, specs) in SETTINGS.items():
        doc = run_setting(STUDY, label.replace(" ", "_"), [*RECIPE, *flags, "--models", ",".join(specs.values())],
                          SEEDS, keep=True, missing_ok=True)
        if doc is not None:
            docs[label] = doc
    if "recipe" in docs:
        write_outputs(docs)
