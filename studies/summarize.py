"""The answer across studies: every variant against ReLU in every setting, in one table and one figure.

    python studies/summarize.py        # reads studies/*/*.json, writes studies/summary.md and summary.png

Rows are settings, columns are variants (dropout keys folded into the variant they modify); a cell is the
paired difference from ReLU on the same seeds: forgetting (positive = forgets more) with its 95% interval
and the Holm-adjusted Wilcoxon verdict, and the ACC difference. Studies not yet run are left out.
"""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import ROOT, colour, forest, save_figure, write_text  # noqa: E402

SETTINGS = [  # (row label, results file, seeds note)
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


def cell(cmp_f: dict, cmp_a: dict) -> str:
    d = cmp_f["diff"]
    if d["mean"] is None:
        return "failed"
    p = cmp_f["wilcoxon_p_holm"]
    word = "n.s." if p is None or p >= 0.05 else ("**more**" if d["mean"] > 0 else "**less**")
    ci = f" [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d["ci95"] else ""
    return f"{d['mean']:+.3f}{ci} {word}<br>ACC {cmp_a['diff']['mean']:+.3f}"


def main():
    header = "| setting (seeds) | " + " | ".join(COLUMNS) + " |"
    lines = ["# Every variant against ReLU, setting by setting", "",
             "Cell: forgetting − ReLU on the same seeds, mean [95% CI], and the Holm-adjusted exact Wilcoxon "
             "verdict (**more** / **less** forgetting at 0.05, else n.s.); below it the ACC difference. "
             "Sleep is compared with ReLU as trained in its study (with biases).", "",
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
                cells[col] = cell(cmp_f, metrics["acc"][v])
                if cmp_f["diff"]["mean"] is not None:
                    rows.append((f"{label}: {col}", colour(v), cmp_f["diff"]))
        lines.append(f"| {label} ({len(doc['seeds'])}) | " + " | ".join(cells.get(c, "") for c in COLUMNS) + " |")
    write_text(ROOT / "studies" / "summary.md", lines)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.26 * len(rows)))
    fig.subplots_adjust(left=0.46, right=0.96, top=1 - 0.5 / (1.2 + 0.26 * len(rows)), bottom=0.6 / (1.2 + 0.26 * len(rows)))
    forest(ax, rows, "Forgetting − ReLU, paired by seed (mean and 95% CI)")
    ax.set_xlabel("forgetting − ReLU (> 0: forgets more)")
    save_figure(fig, ROOT / "studies" / "summary.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
