"""Study 3: with the paper's dropout (input 0.2, hidden 0.5) on every variant. (Open question 2 of
npow/schmidhuber-problems, compete-to-compute/README.md.)

The scale and settings of study 2 (lr 0.005, max-norm 3); its runs without dropout are the reference
for the effect of dropout on each variant. At study 2's default-rate setting (lr 0.05, no max-norm)
dropout is run too: there LWTA and maxout diverge.
"""
from common import c, ci, detectable, p_text, paired_across, parse_study_args, run_setting, seed_count, \
    write_study

STUDY, SEEDS = "03_dropout", 20
SCALE = ["--hidden", "1000", "--depth", "3", "--n-train-per-class", "1000", "--epochs", "10"]
STABLE = ["--lr", "0.005", "--max-norm", "3"]
VARIANTS = ["relu", "lwta:k=2", "maxout:k=2"]
DROP = ":dropout_in=0.2:dropout=0.5"


def effect_rows(plain: dict, drop: dict) -> list:
    """With dropout minus without, per variant, paired by seed (Holm over the variants)."""
    rows = ["| variant | forgetting − without | Wilcoxon p (Holm) | detectable | ACC − without | verdict |",
            "|---|---|---|---|---|---|"]
    effects = {v + DROP: paired_across(plain, drop, v, v + DROP, "forgetting") for v in VARIANTS}
    c.add_holm(effects, "forgetting", "the same variant without dropout")
    for v in VARIANTS:
        f, a = effects[v + DROP], paired_across(plain, drop, v, v + DROP, "acc")
        rows.append(f"| {v} | {ci(f['diff'], True)} | {p_text(f)} | {detectable(f)} | {ci(a['diff'], True)} | "
                    f"{f['verdict']} |")
    return rows


if __name__ == "__main__":
    parse_study_args(__doc__)
    models = ["--models", ",".join(VARIANTS)]
    dropped = ["--models", ",".join(v + DROP for v in VARIANTS)]
    plain = run_setting(STUDY, "no_dropout", [*SCALE, *STABLE, *models], SEEDS, "paper_scale_lr0.005")
    drop = run_setting(STUDY, "dropout", [*SCALE, *STABLE, *dropped], SEEDS, "03_dropout/dropout_lr0.005")
    plain_fast = run_setting(STUDY, "no_dropout_lr0.05", [*SCALE, *models], SEEDS, "paper_scale")
    drop_fast = run_setting(STUDY, "dropout_lr0.05", [*SCALE, *dropped], SEEDS, "03_dropout/dropout")
    notes = ["Effect of dropout on each variant (with dropout minus without, paired by seed), "
             "at lr 0.005 with max-norm 3:", "", *effect_rows(plain, drop), "",
             "The same at lr 0.05 without max-norm:", "", *effect_rows(plain_fast, drop_fast)]
    write_study(STUDY, "Study 3: the paper's dropout at the scale of study 2 "
                f"({seed_count(plain, drop, plain_fast, drop_fast)} seeds)",
                {"with dropout, lr 0.005, max-norm 3": drop, "with dropout, lr 0.05, no max-norm": drop_fast}, notes)
