"""Study 2: does LWTA help at the paper's scale? (Open question 1 of the numpy reproduction this bench grew
from: npow/schmidhuber-problems, compete-to-compute/README.md.)

Three hidden layers of 1,000 units, 1,000 training images per class (twice the default) and 10 epochs per
task (twice the default), digits 0-4 then 5-9, task-incremental. The paper trained on the full training
set for many more epochs; this is what fits the study budget here (about 40 s of CPU per job).

At the default learning rate (0.05) maxout diverges in every seed at this depth, so the answer is read at
lr 0.005 with the max-norm constraint (3) that goes with dropout in study 3: the largest rate of the grid
0.05, 0.02, 0.01, 0.005 at which every variant, with and without dropout, trained on seed 0. The default
rate is kept as a second setting for ReLU and LWTA.

The learning-rate pilot, seed 0, at this scale (--models relu,lwta:k=2,maxout:k=2 and the same with
:dropout_in=0.2:dropout=0.5; `python compete_to_compute.py --hidden 1000 --depth 3 --n-train-per-class 1000
--epochs 10 --lr R [--max-norm 3] --models ...`):
    lr 0.05              maxout diverges (all 20 seeds, as this study's second setting shows)
    lr 0.05, max-norm 3  maxout, and LWTA and maxout with dropout, learn nothing
    lr 0.02              LWTA and maxout with dropout diverge
    lr 0.01              maxout with dropout diverges (epoch 8 of task 1)
    lr 0.01, max-norm 3  maxout with dropout learns nothing
    lr 0.005, max-norm 3 all six train (ACC 0.958-0.972)
"""
from common import parse_study_args, run_setting, seed_count, write_study

STUDY, SEEDS = "02_paper_scale", 20
SCALE = ["--hidden", "1000", "--depth", "3", "--n-train-per-class", "1000", "--epochs", "10"]
STABLE = ["--lr", "0.005", "--max-norm", "3"]
VARIANTS = ["--models", "relu,lwta:k=2,maxout:k=2"]

if __name__ == "__main__":
    parse_study_args(__doc__)
    slow = run_setting(STUDY, "lr0.005", [*SCALE, *STABLE, *VARIANTS], SEEDS, "paper_scale_lr0.005")
    fast = run_setting(STUDY, "lr0.05", [*SCALE, *VARIANTS], SEEDS, "paper_scale")
    write_study(STUDY, "Study 2: 3 x 1000 units, 1000 images per class, 10 epochs per task "
                f"({seed_count(slow, fast)} seeds)",
                {"lr 0.005, max-norm 3": slow, "lr 0.05 (the default), no max-norm": fast},
                ["Each variant against relu, paired by seed."])
