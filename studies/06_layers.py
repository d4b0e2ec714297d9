"""Study 6: are deeper LWTA layers more task-segregated? (Open question 4 of npow/schmidhuber-problems,
compete-to-compute/README.md.)

Depth 3, default protocol otherwise (digits 0-4 then 5-9, task-incremental). For each seed, variant and
hidden layer: the share of units whose task-selectivity index |f1 - f2| / (f1 + f2) exceeds 0.5, f_t the
unit's firing rate on task t's test images at the end of training. Paired over seeds: layer 3 - layer 1.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import ROOT, c, ci, colour, parse_study_args, run_setting, save_figure, seed_count, show, \
    write_text  # noqa: E402

STUDY, SEEDS, VARIANTS = "06_layers", 20, ["relu", "lwta"]


def main():
    doc = run_setting(STUDY, "depth3", ["--depth", "3", "--models", ",".join(VARIANTS)], SEEDS)
    lines = [f"# Study 6: task selectivity per layer (depth 3, {seed_count(doc)} seeds)", "",
             "Share of units with selectivity index > 0.5, mean [95% CI] over seeds; last column: layer 3 minus "
             "layer 1, paired by seed.", "",
             "| variant | layer 1 | layer 2 | layer 3 | layer 3 − layer 1 | verdict |", "|---|---|---|---|---|---|"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    fig.subplots_adjust(left=0.14, right=0.97, top=0.88, bottom=0.15)
    for i, v in enumerate(VARIANTS):
        runs = [r["summary"][v] for r in doc["per_seed"] if r["summary"][v]["selective"] is not None]  # not diverged
        layers = [c.describe([s["selective"][layer] for s in runs], (0, 1)) for layer in range(3)]
        deep = c.paired_comparison([s["selective"][2] for s in runs], [s["selective"][0] for s in runs], True,
                                   "selective share", "layer 3", "layer 1")
        c.add_holm({"layer 3": deep}, "selective share", "layer 1")
        lines.append(f"| {v} | " + " | ".join(ci(d) for d in layers) + f" | {ci(deep['diff'], True)} | "
                     f"{v}: {deep['verdict']} |")
        x = [layer + 1 + (i - 0.5) * 0.08 for layer in range(3)]
        ax.errorbar(x, [d["mean"] for d in layers], yerr=[[d["mean"] - d["ci95"][0] for d in layers],
                    [d["ci95"][1] - d["mean"] for d in layers]], fmt="-o", color=colour(v), capsize=3, label=v)
    ax.set_xticks([1, 2, 3], ["layer 1", "layer 2", "layer 3"])
    ax.set_ylabel("share of task-selective units")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Task selectivity per hidden layer ({seed_count(doc)} seeds, mean and 95% CI)", fontsize=10)
    ax.legend(frameon=False, fontsize=9, loc="upper right")
    ax.grid(alpha=0.3)
    save_figure(fig, ROOT / "studies" / STUDY / "figure.png")
    write_text(ROOT / "studies" / STUDY / "summary.md", lines)
    show(lines)


if __name__ == "__main__":
    parse_study_args(__doc__)
    main()
