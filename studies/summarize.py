"""The answer across studies: every variant against ReLU in every setting, in tables and one figure.

    python studies/summarize.py        # reads studies/*/*.json, writes studies/summary.md and summary.png

First the tuned studies (10-14): each variant at the configuration its own validation data selected,
under each selection rule, then the frontier; then the fixed-hyperparameter studies (1-8), which say what
happens at the one setting they ran. Rows are settings, columns are variants (dropout keys folded into
the variant they modify); a cell is the paired difference from ReLU on the same seeds: forgetting
(positive = forgets more) with its 95% interval and the Holm-adjusted Wilcoxon verdict, and the ACC
difference. Studies not yet run are left out.
"""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import ROOT, c, colour, failed_count, forest, save_figure, verdict_word, write_text  # noqa: E402
from tuning import BAND, band_comparisons, band_range  # noqa: E402

TUNED = [  # (row label, study folder): each holds tuned.json
    ("default", "10_tuned_default"),
    ("3 × 1000 units", "11_tuned_paper_scale"),
    ("permuted MNIST, 10 tasks", "12_tuned_permuted"),
    ("class-incremental split MNIST", "13_tuned_class_incremental"),
    ("Fashion-MNIST, default", "14_tuned_fashion"),
]
RULE_NAMES = {"first": "tuned on task 1", "all": "tuned on all tasks", "fixed": "fixed lr 0.05",
              "leave_one_out": "tuned leaving each seed out"}
SETTINGS = [  # (row label, results file) of the fixed-hyperparameter studies
    ("default (study 1)", "01_toy/toy.json"),
    ("default, depth 3 (study 6)", "06_layers/depth3.json"),
    ("3 × 1000 units, lr 0.005 (study 2)", "02_paper_scale/lr0.005.json"),
    ("3 × 1000 units, lr 0.05 (study 2)", "02_paper_scale/lr0.05.json"),
    ("3 × 1000 units, lr 0.005, dropout (study 3)", "03_dropout/dropout.json"),
    ("permuted MNIST, 10 tasks (study 4)", "04_permuted/permuted10.json"),
    ("class-incremental split MNIST (study 5)", "05_class_incremental/sequential.json"),
    ("default, momentum carried (study 7)", "07_seed_doc_choices/momentum_carried.json"),
    ("default, LeCun init (study 7)", "07_seed_doc_choices/LeCun_init.json"),
    ("default, float64 (study 8)", "08_float64/float64.json"),
]
COLUMNS = ["lwta k=2", "lwta k=4", "maxout k=2", "topk 5%", "topk 10%", "topk 20%", "k-winners", "sdm", "sleep"]


def column(variant: str) -> str | None:
    """The summary column of a variant spec (dropout keys and the bias-free baseline folded in)."""
    parts = dict(p.split("=") for p in variant.split(":")[1:])
    name = variant.split(":")[0]
    if parts.get("sleep") == "1":
        return "sleep"
    if name == "lwta":
        return f"lwta k={parts.get('k', '2')}"
    if name == "maxout":
        return f"maxout k={parts.get('k', '2')}"
    if name == "topk":
        return f"topk {parts.get('k', '10%')}"
    return {"kwinners": "k-winners", "sdm": "sdm"}.get(name)


def frontier_cell(cmp: dict) -> str:
    d = cmp["diff"]
    word = verdict_word(cmp, ("**above**", "**below**"))
    ci = f" [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d["ci95"] else ""
    return f"{d['mean']:+.3f}{ci} {word}"


def tuned_tables() -> tuple:
    """Markdown rows of the tuned studies (one row per setting and rule; then the frontier) and figure rows."""
    rows, frontier, fig_rows = [], [], []
    for label, folder in TUNED:
        path = ROOT / "studies" / folder / "tuned.json"
        if not path.is_file():
            continue
        doc = json.loads(path.read_text())
        study = folder.split("_")[0]
        for rule, ev in {**doc["evaluation"], **{k: doc[k] for k in ("leave_one_out",) if k in doc}}.items():
            if ev is None:
                continue
            metrics = ev["aggregate"]["paired"]["metrics"]
            cells = {column(v): cell(cmp, metrics["acc"][v], failed_count(ev["aggregate"]["variants"][v]))
                     for v, cmp in metrics["forgetting"].items()}
            cells.update({column(v): "no configuration chosen" for v in ev["left_out"]})
            name = f"{label}, {RULE_NAMES[rule]} (study {study})"
            rows.append(f"| {name} ({len(doc['eval_seeds'])}) | " + " | ".join(cells.get(c, "") for c in COLUMNS)
                        + " |")
            fig_rows += [figure_row(f"{label}, {RULE_NAMES[rule]}: {column(v)}", v, cmp, ev["aggregate"])
                         for v, cmp in metrics["forgetting"].items()]
            fig_rows += [(f"{label}, {RULE_NAMES[rule]}: {column(v)}", colour(v),
                          {"mean": None, "note": "no configuration chosen (each failed on some tuning seed)"})
                         for v in ev["left_out"]]
        if doc.get("band"):
            rows.append(band_row(f"{label}, band over the {BAND} best configurations each (study {study})", doc))
            for v in [v for v in doc["variants"][1:] if v not in doc["band"]["left_out"]]:
                means = [x["diff"]["mean"] for x in band_comparisons(doc["band"], v, "forgetting")]
                fig_rows.append((f"{label}, band of {BAND} best configurations: {column(v)}", colour(v),
                                 {"mean": None, "band": [min(means), max(means)]}))
        fr = doc["frontier"]
        cells = {column(v): frontier_cell(cmp) for v, cmp in fr["paired"].items()}
        cells.update({column(v): "no point" for v in fr["left_out"]})
        frontier.append(f"| {label} (study {study}) ({len(fr['seeds'])}) | "
                        + " | ".join(cells.get(c, "") for c in COLUMNS) + " |")
    return rows, frontier, fig_rows


def band_row(name: str, doc: dict) -> str:
    """A study run with --band: per variant, the range of its mean forgetting (and ACC) difference from ReLU
    over every pairing of near-best configurations, and how many pairings give each verdict, so a tuned
    verdict that rests on which of a few good configurations was chosen says so beside its number."""
    bd = doc["band"]
    cells = {}
    for v in doc["variants"][1:]:
        if v in bd["left_out"]:
            cells[column(v)] = "no configuration chosen"
            continue
        (f_range, f_words), (a_range, _) = (band_range(bd, v, m, 3) for m in ("forgetting", "acc"))
        cells[column(v)] = f"{f_range} ({f_words.replace('higher', 'more').replace('lower', 'less')})<br>ACC {a_range}"
    return (f"| {name} ({len(doc['eval_seeds'])}, {len(bd['pairings'])} pairings) | "
            + " | ".join(cells.get(c, "") for c in COLUMNS) + " |")


def figure_row(label: str, v: str, cmp: dict, agg: dict) -> tuple:
    """A forest row: a variant that failed on some seeds says so in its label and is drawn hollow."""
    failed = failed_count(agg["variants"][v])
    return (f"{label} ({failed})" if failed else label, colour(v), {**cmp["diff"], "failed": bool(failed)})


def cell(cmp_f: dict, cmp_a: dict, failed: str = "") -> str:
    d = cmp_f["diff"]
    if d["mean"] is None:
        return "n/a"
    word = verdict_word(cmp_f, ("**more**", "**less**"))
    ci = f" [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d["ci95"] else ""
    return f"{d['mean']:+.3f}{ci} {word}<br>ACC {cmp_a['diff']['mean']:+.3f}" + (f"<br>{failed}" if failed else "")


def main():
    header = "| setting (seeds) | " + " | ".join(COLUMNS) + " |"
    tuned, frontier, tuned_fig = tuned_tables()
    lines = ["# Every variant against ReLU, setting by setting", "",
             "Cell: forgetting − ReLU on the same seeds, mean [95% CI], and the Holm-adjusted exact Wilcoxon "
             "verdict (**more** / **less** forgetting at 0.05, else n.s.; undecidable: no p < 0.05 is reachable at "
             "this number of seeds after Holm); below it the ACC difference. "
             "Sleep is compared with ReLU as trained in its study (with biases).", "",
             "## Tuned: each variant at the configuration its validation data selected (studies 10-14)", "",
             "Rules (studies/tuning.py): *tuned on task 1* = best validation accuracy on task 1 after task 1; "
             "*tuned on all tasks* = best validation ACC at the end; *fixed lr 0.05* = the untuned setting, "
             "for comparison; *tuned leaving each seed out* (`--loo`) = on each evaluation seed, the best "
             "validation ACC at the end over the other evaluation seeds; *band* (`--band`, where every configuration "
             f"on every seed does not fit) = each variant's {BAND} best configurations by validation ACC at the end, "
             "all on every evaluation seed: the range of the mean over every pairing of a variant's with ReLU's, and how many "
             "pairings give each verdict. Evaluation on seeds 0-19, test data.", "",
             header, "|---|" + "---|" * len(COLUMNS), *tuned, "",
             "Frontier: old-task validation accuracy on each variant's envelope (over every configuration and "
             "epoch of the last task), at matched new-task accuracy, minus ReLU's, paired by seed: the tuning "
             "seeds, or the 20 evaluation seeds where the study ran with `--loo` (every configuration on every "
             "evaluation seed; the seeds in brackets) (**above** = keeps more of the old tasks at the same "
             "new-task accuracy).", "",
             header, "|---|" + "---|" * len(COLUMNS), *frontier, "",
             "## Fixed hyperparameters: what happens at the one setting each study ran (studies 1-8)", "",
             header, "|---|" + "---|" * len(COLUMNS)]
    rows = []
    for label, rel in SETTINGS:
        path = ROOT / "studies" / rel
        if not path.is_file():
            continue
        doc = json.loads(path.read_text())
        metrics = doc["aggregate"]["paired"]["metrics"]
        cells = {}
        for v, cmp_f in metrics["forgetting"].items():
            col = column(v)
            if col and col not in cells:
                cells[col] = cell(cmp_f, metrics["acc"][v], failed_count(doc["aggregate"]["variants"][v]))
                rows.append(figure_row(f"{label}: {col}", v, cmp_f, doc["aggregate"]))
        lines.append(f"| {label} ({len(doc['seeds'])}) | " + " | ".join(cells.get(c, "") for c in COLUMNS) + " |")
    write_text(ROOT / "studies" / "summary.md", lines)
    panels = [(r, t) for r, t in ((tuned_fig, "Tuned per variant (studies 10-14)"),
                                  (rows, "Fixed hyperparameters (studies 1-8)")) if r]
    height = 0.6 + sum(0.26 * len(r) + 1.0 for r, _ in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, height), squeeze=False, layout="constrained",
                             gridspec_kw={"height_ratios": [len(r) + 3 for r, _ in panels]})
    for ax, (r, title) in zip(axes[:, 0], panels):
        forest(ax, r, title)
        ax.set_xlabel("forgetting − ReLU, paired by seed: mean and 95% CI (> 0: forgets more)", fontsize=9)
    save_figure(fig, ROOT / "studies" / "summary.png")
    lines += family_lines()
    write_text(ROOT / "studies" / "summary.md", lines)
    print("\n".join(lines))


# ---------------------------------------------------------------------------- one family
# The verdicts the front page (README.md) states, each a stored paired comparison: (claim, file, path into
# it). Holm runs over all of them together, so a claim holds only if it survives the whole family; every
# other stored comparison of every study is exploratory and gets a Benjamini-Hochberg q-value instead.
def evaluated(study: str, rule: str, metric: str, v: str) -> tuple:
    return (f"studies/{study}/tuned.json", ("evaluation", rule, "aggregate", "paired", "metrics", metric, v))


def aggregated(rel: str, metric: str, v: str) -> tuple:
    return (rel, ("aggregate", "paired", "metrics", metric, v))


def competition(study: str, method: str, activation: str) -> tuple:
    return (f"studies/{study}/methods.json", ("results", "all", "competition_adds", method, f"{activation} {method}"))


PRIMARY = [
    ("headline, 10 seeds: LWTA − ReLU forgetting", *aggregated("results.json", "forgetting", "lwta")),
    ("headline, 10 seeds: Top-K − ReLU forgetting", *aggregated("results.json", "forgetting", "topk")),
    ("default, tuned: LWTA − ReLU forgetting", *evaluated("10_tuned_default", "all", "forgetting", "lwta:k=2")),
    ("default, tuned: maxout − ReLU forgetting", *evaluated("10_tuned_default", "all", "forgetting", "maxout:k=2")),
    ("default, tuned: Top-K − ReLU forgetting", *evaluated("10_tuned_default", "all", "forgetting", "topk")),
    *[(f"default, tuned leaving each seed out: {name} − ReLU forgetting", "studies/10_tuned_default/tuned.json",
       ("leave_one_out", "aggregate", "paired", "metrics", "forgetting", v))
      for name, v in (("LWTA", "lwta:k=2"), ("maxout", "maxout:k=2"), ("Top-K", "topk"))],
    ("default, tuned on task 1: LWTA − ReLU forgetting",
     *evaluated("10_tuned_default", "first", "forgetting", "lwta:k=2")),
    ("default, tuned on task 1: maxout − ReLU forgetting",
     *evaluated("10_tuned_default", "first", "forgetting", "maxout:k=2")),
    ("3 × 1000 units, tuned: LWTA − ReLU forgetting", *evaluated("11_tuned_paper_scale", "all", "forgetting", "lwta:k=2")),
    ("3 × 1000 units, tuned: maxout − ReLU forgetting",
     *evaluated("11_tuned_paper_scale", "all", "forgetting", "maxout:k=2")),
    ("Fashion-MNIST, lr 0.05: LWTA − ReLU forgetting", *evaluated("14_tuned_fashion", "fixed", "forgetting", "lwta:k=2")),
    ("Fashion-MNIST, tuned: LWTA − ReLU forgetting", *evaluated("14_tuned_fashion", "all", "forgetting", "lwta:k=2")),
    ("permuted, lr 0.05: Top-K − ReLU forgetting", *aggregated("studies/04_permuted/permuted10.json", "forgetting", "topk")),
    ("permuted, tuned: Top-K − ReLU forgetting", *evaluated("12_tuned_permuted", "all", "forgetting", "topk")),
    ("permuted, tuned: LWTA − ReLU forgetting", *evaluated("12_tuned_permuted", "all", "forgetting", "lwta")),
    ("class-incremental, tuned: Top-K − ReLU forgetting",
     *evaluated("13_tuned_class_incremental", "all", "forgetting", "topk")),
    ("class-incremental, tuned: sleep − ReLU ACC",
     *evaluated("13_tuned_class_incremental", "all", "acc", "relu:sleep=1")),
    ("class-incremental, tuned leaving each seed out: Top-K − ReLU forgetting",
     "studies/13_tuned_class_incremental/tuned.json", ("leave_one_out", "aggregate", "paired", "metrics", "forgetting",
                                                       "topk")),
    ("Fashion-MNIST, tuned leaving each seed out: LWTA − ReLU forgetting", "studies/14_tuned_fashion/tuned.json",
     ("leave_one_out", "aggregate", "paired", "metrics", "forgetting", "lwta:k=2")),
    *[(f"{name}, frontier on 20 seeds: Top-K − ReLU old-task accuracy at matched new-task accuracy",
       f"studies/{study}/tuned.json", ("frontier", "paired", "topk"))
      for name, study in (("default", "10_tuned_default"), ("class-incremental", "13_tuned_class_incremental"),
                          ("Fashion-MNIST", "14_tuned_fashion"))],
    ("sleep recipe: sleep − ReLU forgetting",
     *aggregated("studies/15_recipes/src.json", "forgetting", "relu:sleep=1:dropout=0.25")),
    *[(f"SDM recipe, 20 epochs: {cell} − {base} ACC", "studies/19_sdm_ablation/comparisons.json", (table, "acc", cell))
      for table, base, cells in (
          ("against ReLU", "ReLU", ("SDMLP", "plain Top-K")),
          ("removed", "SDMLP", [f"SDMLP − {x}" for x in ("competition (k = width)", "unit-norm inputs and rows",
                                                         "non-negative weights", "bias-free", "GABA switch")]),
          ("added", "bare subtractive Top-K", [f"bare + {x}" for x in ("unit-norm inputs and rows",
                                                                      "non-negative weights", "bias-free",
                                                                      "GABA switch")]))
      for cell in cells],
    *[(f"k-winners recipe, 1 epoch: {cell} − k-winners {metric}", "studies/20_kwta_ablation/comparisons.json",
       ("against k-winners", key, cell))
      for cell, metric, key in (("dense at its validation-chosen lr 3e-5", "ACC", "acc"),
                                ("dense at its validation-chosen lr 3e-5", "forgetting", "forgetting"),
                                ("k-winners, 1 % win", "ACC", "acc"))],
    *[(f"k-winners recipe, 1 epoch, {setting}: k-winners at its chosen lr {lr} − equal dense ACC",
       "studies/20_kwta_ablation/comparisons.json",
       ("competition in each setting", "acc", f"k-winners at its validation-chosen lr {lr}, {setting}"))
      for setting, lr in (("pixel inputs", "3e-4"), ("torch init", "3e-4"))],
    *[(f"{where}: {a} − ReLU ACC, with {m}", *competition(study, m, a))
      for study, where in (("16_methods_class_incremental", "class-incremental"), ("17_methods_permuted", "permuted"))
      for m in ("alone", "ewc", "si", "l2", "replay") for a in ("lwta", "topk")],
]


def find(doc, path: tuple):
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def stored_comparisons(doc, path: tuple = ()):
    """Every paired comparison a results file holds: (path, comparison)."""
    if isinstance(doc, dict) and "wilcoxon_p" in doc and "n_pairs" in doc:
        yield path, doc
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield from stored_comparisons(v, (*path, k))


def benjamini_hochberg(p: list) -> list:
    """Benjamini-Hochberg q-values (step-up, monotone), in the given order."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    q, running = [0.0] * len(p), 1.0
    for rank in range(len(p), 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * len(p) / rank)
        q[i] = running
    return q


def family_lines() -> list:
    found = {rel for _, rel, _ in PRIMARY if (ROOT / rel).is_file()}       # a study not run yet is left out
    files = {rel: json.loads((ROOT / rel).read_text()) for rel in
             sorted(found | {str(p.relative_to(ROOT)) for p in (ROOT / "studies").glob("*/*.json")})}
    claims = [(claim, rel, find(files[rel], path)) for claim, rel, path in PRIMARY if rel in files]
    claims = [(claim, rel, cmp) for claim, rel, cmp in claims if cmp and cmp["n_pairs"]]
    family = c.holm([cmp["wilcoxon_p"] for _, _, cmp in claims])
    primary_ids = {id(cmp) for _, _, cmp in claims}
    others = [cmp for rel, doc in files.items() for _, cmp in stored_comparisons(doc)
              if id(cmp) not in primary_ids and cmp["n_pairs"] and cmp["wilcoxon_p"] is not None]
    q = benjamini_hochberg([cmp["wilcoxon_p"] for cmp in others])
    lines = ["", "## One family: the front page's verdicts, Holm over all of them together", "",
             f"Each verdict the front page states, with its exact Wilcoxon p, its Holm p within its own table, and "
             f"Holm over these {len(claims)} verdicts together (it holds at the family level where that is < 0.05). "
             f"Every other stored comparison ({len(others)}, in the studies' JSON) is exploratory: "
             f"{sum(x < 0.05 for x in q)} of them have a Benjamini-Hochberg q < 0.05 over all {len(others)}.", "",
             "| verdict | file | pairs | mean difference | p | Holm p, its table | Holm p, family | holds |",
             "|---|---|---|---|---|---|---|---|"]
    for (claim, rel, cmp), p in zip(claims, family):
        own = cmp["wilcoxon_p_holm"] if cmp["wilcoxon_p_holm"] is not None else cmp["wilcoxon_p"]
        lines.append(f"| {claim} | `{rel}` | {cmp['n_pairs']} | {cmp['diff']['mean']:+.3f} | {cmp['wilcoxon_p']:.2g} | "
                     f"{own:.2g} | {p:.2g} | {'yes' if p < 0.05 else 'no' if own < 0.05 else '(n.s. in its table)'} |")
    return lines


if __name__ == "__main__":
    main()
