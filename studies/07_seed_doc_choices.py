"""Study 7: why the single-seed numbers of the numpy reproduction this bench grew from differ from ours
(npow/schmidhuber-problems, compete-to-compute/README.md: seed 0 forgetting ReLU 0.072, LWTA 0.022; 10 seeds
0.045 vs 0.043).

Two implementation choices are suspected of moving ReLU's forgetting most: carrying SGD momentum across
the task switch (that implementation carries it; ours resets it) and the initial weight
scale (He, ours, vs LeCun). Each is run on the default protocol over the same seeds, alone and together;
its effect on each variant is paired by seed against the default setting.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import ROOT, c, ci, colour, detectable, forest, p_text, paired_across, parse_study_args, run_setting, \
    save_figure, seed_count, show, variant_table, write_text  # noqa: E402

STUDY, SEEDS, VARIANTS = "07_seed_doc_choices", 20, ["relu", "lwta", "topk"]
SETTINGS = {"default": [], "momentum carried": ["--momentum-carry"], "LeCun init": ["--init", "lecun"],
            "both": ["--momentum-carry", "--init", "lecun"]}
SHARED = {"default": "default_relu_lwta_topk"}      # the same jobs serve study 8's float32 setting


def main():
    docs = {label: run_setting(STUDY, label.replace(" ", "_"), ["--models", ",".join(VARIANTS), *args], SEEDS,
                               SHARED.get(label)) for label, args in SETTINGS.items()}
    n = seed_count(*docs.values())
    lines = [f"# Study 7: momentum carried across the switch, and LeCun initialisation ({n} seeds)", "",
             "Effect of each setting on each variant's forgetting and ACC: setting minus default, paired by seed.", "",
             "| setting | variant | forgetting (setting) | forgetting − default | Wilcoxon p (Holm) | detectable | "
             "ACC − default | verdict (forgetting) |", "|---|---|---|---|---|---|---|---|"]
    rows, settings = [], [label for label in docs if label != "default"]
    for v in VARIANTS:
        base = f"{v} (default)"
        effects = {f"{v} ({label})": paired_across(docs["default"], docs[label], v, v, "forgetting")
                   for label in settings}
        c.add_holm(effects, "forgetting", base)              # Holm over the settings, per variant
        for label in settings:
            f, doc = effects[f"{v} ({label})"], docs[label]
            a = paired_across(docs["default"], doc, v, v, "acc")
            mean = doc["aggregate"]["variants"][v]["forgetting"]
            lines.append(f"| {label} | {v} | {ci(mean)} | {ci(f['diff'], True)} | {p_text(f)} | {detectable(f)} | "
                         f"{ci(a['diff'], True)} | {f['verdict']} |")
            rows.append((f"{label}: {v}", colour(v), f["diff"]))
    for label, doc in docs.items():
        lines += ["", f"## Within the setting '{label}': each variant against relu", ""] + variant_table(doc)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    fig.subplots_adjust(left=0.3, right=0.97, top=0.9, bottom=0.13)
    forest(ax, rows, f"Effect on forgetting (setting − default, {n} seeds, 95% CI)")
    ax.set_xlabel("change in forgetting (positive = forgets more)")
    save_figure(fig, ROOT / "studies" / STUDY / "figure.png")
    write_text(ROOT / "studies" / STUDY / "summary.md", lines)
    show(lines)


if __name__ == "__main__":
    parse_study_args(__doc__)
    main()
