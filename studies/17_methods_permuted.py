"""Study 17: the field's methods against forgetting beside competition, permuted MNIST, 10 tasks.

Study 4's setting (one shared head, 2 x 400 units, 500 images per class and task, 5 epochs per task): ReLU,
LWTA, Top-K and the SDM Top-K MLP, each alone and with EWC, SI, L2 and replay, each strength
chosen on validation data (see studies/methods.py). A job costs 20-70 s of one core here (evaluating ten
tasks' test images after every task is a large part; EWC's and SI's penalties add elementwise passes over the
weights at every update), so the grid is coarser than study 16's, the search runs on 2 tuning seeds and at
one learning rate (0.01, momentum 0.9, for every variant: the search over rates was cut to fit a session;
adding 0.05 to LRS reuses every job run so far); the evaluation keeps 20 seeds.
"""
from common import parse_study_args
from methods import rules_flag, run_methods_study

GRIDS = {"ewc": (1, 100, 1e4), "si": (0.1, 10, 1e3), "l2": (0.01, 1, 100), "replay": (10, 100)}
LRS = [0.01]

if __name__ == "__main__":
    parse_study_args(__doc__, extra=rules_flag)
    run_methods_study("17_methods_permuted", "Study 17: methods against forgetting, permuted MNIST, 10 tasks",
                      ["--permuted", "10"], ["relu", "lwta", "topk", "sdm"], lrs=LRS, epochs=5,
                      tune_seeds=2, val=50, grids=GRIDS,
                      notes=["Ten pixel permutations of MNIST (task 1 unpermuted), one shared head "
                             "(domain-incremental), 2 x 400 units, 500 images per class and task; replay keeps N "
                             "images per class of every past task."])
