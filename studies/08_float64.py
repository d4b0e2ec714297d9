"""Study 8: single seeds are not results. The same seeds computed in float32 and in float64.

Nothing but rounding differs, yet a winner flipped by a near-tie makes two runs part ways. For each seed
and variant: |forgetting(float32) - forgetting(float64)|; and whether the paired verdicts agree.
"""
import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import ROOT, colour, parse_study_args, per_seed, run_setting, save_figure, seed_count, show, \
    variant_table, write_text  # noqa: E402

STUDY, SEEDS, VARIANTS = "08_float64", 20, ["relu", "lwta", "topk"]


def main():
    models = ["--models", ",".join(VARIANTS)]
    f32 = run_setting(STUDY, "float32", models, SEEDS, "default_relu_lwta_topk")
    f64 = run_setting(STUDY, "float64", [*models, "--dtype", "float64"], SEEDS)
    lines = [f"# Study 8: the same {seed_count(f32, f64)} seeds in float32 and float64", "",
             "Per seed: |forgetting in float32 − forgetting in float64|.", "",
             "| variant | median | 90th percentile | largest | seeds apart by > 0.01 |", "|---|---|---|---|---|"]
    fig, axes = plt.subplots(1, len(VARIANTS), figsize=(10, 3.6), sharex=True, sharey=True)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.85, bottom=0.16, wspace=0.08)
    for ax, v in zip(axes, VARIANTS):
        a, b = per_seed(f32, v, "forgetting"), per_seed(f64, v, "forgetting")
        seeds = sorted(set(a) & set(b))
        gap = np.abs([a[s] - b[s] for s in seeds])
        lines.append(f"| {v} | {np.median(gap):.4f} | {np.percentile(gap, 90):.4f} | {gap.max():.4f} | "
                     f"{int(np.sum(gap > 0.01))} of {len(seeds)} |")
        ax.plot([a[s] for s in seeds], [b[s] for s in seeds], "o", color=colour(v), ms=5, alpha=0.8)
        lim = [0, max(max(a.values()), max(b.values())) * 1.05]
        ax.plot(lim, lim, color="0.5", lw=1)
        ax.set_title(f"{v}: median gap {np.median(gap):.4f}", fontsize=10)
        ax.set_xlabel("forgetting, float32")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("forgetting, float64")
    fig.suptitle(f"The same seeds in float32 and float64 ({seed_count(f32, f64)} seeds; diagonal = identical)",
                 fontsize=11)
    lines += ["", "## Verdicts against relu in each precision", "", "### float32", ""] + variant_table(f32)
    lines += ["", "### float64", ""] + variant_table(f64)
    save_figure(fig, ROOT / "studies" / STUDY / "figure.png")
    write_text(ROOT / "studies" / STUDY / "summary.md", lines)
    show(lines)


if __name__ == "__main__":
    parse_study_args(__doc__)
    main()
