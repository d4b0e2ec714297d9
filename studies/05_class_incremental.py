"""Study 5: class-incremental split MNIST (5 tasks of 2 digits, one 10-way head, no task identity).

The setting where the SDM Top-K MLP and sleep replay consolidation claim their gains; joint training on
all five tasks at once is the upper bound. Default network and budget (2 x 400, 500 images per class,
5 epochs per task); the papers trained far longer (SDM: 500 epochs per task).
"""
from common import ci, parse_study_args, run_setting, seed_count, write_study

STUDY, SEEDS = "05_class_incremental", 20
TASKS = ["--tasks", "01,23,45,67,89", "--scenario", "class"]
VARIANTS = "relu,relu:bias=0,topk,sdm:schedule=both,relu:sleep=1"

if __name__ == "__main__":
    parse_study_args(__doc__)
    seq = run_setting(STUDY, "sequential", [*TASKS, "--models", VARIANTS], SEEDS)
    joint = run_setting(STUDY, "joint", [*TASKS, "--joint", "--models", VARIANTS], SEEDS)
    notes = ["Joint training (all tasks at once, the upper bound), ACC mean over seeds:", "",
             "| variant | joint ACC [95% CI] | sequential ACC [95% CI] |", "|---|---|---|"]
    for v, m in joint["aggregate"]["variants"].items():
        s = seq["aggregate"]["variants"][v]
        notes.append(f"| {v} | {ci(m['acc'])} | {ci(s['acc'])} |")
    write_study(STUDY, f"Study 5: class-incremental split MNIST, 5 tasks ({seed_count(seq, joint)} seeds)",
                {"sequential": seq, "joint (upper bound)": joint}, notes)
