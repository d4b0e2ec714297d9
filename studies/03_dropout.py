"""Study 3 (open question 2): with the paper's dropout (input 0.2, hidden 0.5) on every variant.

The scale of study 2; its no-dropout runs are the reference for the effect of dropout on each variant.
"""
from common import ROOT, c, ci, detectable, p_text, paired_across, run_setting, write_study

STUDY, SEEDS = "03_dropout", 20
SCALE = ["--hidden", "1000", "--depth", "3", "--n-train-per-class", "1000", "--epochs", "10"]
VARIANTS = ["relu", "lwta:k=2", "maxout:k=2"]
DROP = ":dropout_in=0.2:dropout=0.5"

if __name__ == "__main__":
    plain = run_setting(STUDY, "no_dropout", [*SCALE, "--models", ",".join(VARIANTS)], SEEDS, "paper_scale")
    drop = run_setting(STUDY, "dropout", [*SCALE, "--models", ",".join(v + DROP for v in VARIANTS)], SEEDS)
    notes = ["Effect of dropout on each variant (with dropout minus without, paired by seed):", "",
             "| variant | forgetting − without | Wilcoxon p (Holm) | detectable | ACC − without | verdict |",
             "|---|---|---|---|---|---|"]
    effects = {v + DROP: paired_across(plain, drop, v, v + DROP, "forgetting") for v in VARIANTS}
    c.add_holm(effects, "forgetting", "the same variant without dropout")
    for v in VARIANTS:
        f, a = effects[v + DROP], paired_across(plain, drop, v, v + DROP, "acc")
        notes.append(f"| {v} | {ci(f['diff'], True)} | {p_text(f)} | {detectable(f)} | {ci(a['diff'], True)} | "
                     f"{f['verdict']} |")
    write_study(STUDY, f"Study 3: the paper's dropout at the scale of study 2 ({SEEDS} seeds)",
                {"with dropout": drop}, notes)
