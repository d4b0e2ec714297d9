"""Study 17: the field's methods against forgetting beside competition, permuted MNIST, 10 tasks.

Study 4's setting (one shared head, 2 x 400 units, 500 images per class and task, 5 epochs per task): ReLU,
LWTA, Top-K and the SDM Top-K MLP, each alone and with EWC, SI, L2 and replay, each strength and the
learning rate (0.01 or 0.05, momentum 0.9) chosen per variant on validation data (see studies/methods.py).
A job costs 10-70 s of one core here, so the strength grids are coarser than study 16's and the search runs
on 2 tuning seeds; the evaluation keeps 20 seeds. The grids reach past the picks of an earlier run of this
study, which sat on their edges (EWC 1, L2 0.01, replay 100 per class, all at lr 0.01): EWC down to 0.01,
L2 to 1e-4, replay up to 300 images per class.
"""
from common import parse_study_args
from methods import rules_flag, run_methods_study

GRIDS = {"ewc": (0.01, 1, 100, 1e4), "si": (0.1, 10, 1e3), "l2": (1e-4, 0.01, 1, 100), "replay": (10, 100, 300)}
LRS = [0.01, 0.05]

if __name__ == "__main__":
    parse_study_args(__doc__, extra=rules_flag)
    run_methods_study("17_methods_permuted", "Study 17: methods against forgetting, permuted MNIST, 10 tasks",
                      ["--permuted", "10"], ["relu", "lwta", "topk", "sdm"], lrs=LRS, epochs=5,
                      tune_seeds=2, val=50, grids=GRIDS,
                      notes=["Ten pixel permutations of MNIST (task 1 unpermuted), one shared head "
                             "(domain-incremental), 2 x 400 units, 500 images per class and task; replay keeps N "
                             "images per class of every past task."])
