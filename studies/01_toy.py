"""Study 1: the default (toy) protocol, every competitor, 40 paired seeds.

Digits 0-4 then 5-9, task-incremental, 2 x 400 units, 500 images per class, 5 + 5 epochs: the headline
protocol, with LWTA at k = 2 and 4, maxout at k = 2, and Top-K keeping 5, 10 and 20 % of the units.
"""
from common import parse_study_args, run_setting, seed_count, write_study

STUDY, SEEDS = "01_toy", 40
VARIANTS = "relu,lwta:k=2,lwta:k=4,maxout:k=2,topk:k=5%,topk:k=10%,topk:k=20%"

if __name__ == "__main__":
    parse_study_args(__doc__)
    doc = run_setting(STUDY, "toy", ["--models", VARIANTS], SEEDS)
    write_study(STUDY, f"Study 1: every competitor at the default scale ({seed_count(doc)} seeds)",
                {"default protocol": doc},
                ["Each variant against relu, paired by seed (positive forgetting difference = forgets more)."])
