"""Study 11: the paper's scale (3 x 1000 units) with every variant tuned on its own validation data.

Study 2's scale: three hidden layers of 1,000 units, 1,000 training images per class, digits 0-4 then
5-9, task-incremental; ReLU, LWTA and maxout (k = 2) at their selected configurations (see
studies/tuning.py). A job costs up to 40 s of one core here (10 epochs per task), so the search is cut to the
first 6 configurations on 3 tuning seeds (about 20 core-minutes; the evaluation keeps 20 seeds, about 80). The fixed setting (lr 0.05, 10 epochs) is study 2's.
"""
from common import parse_study_args
from tuning import tuned_flags, run_study

if __name__ == "__main__":
    parse_study_args(__doc__, extra=tuned_flags)
    run_study("11_tuned_paper_scale", "Study 11: 3 x 1000 units, tuned per variant",
              ["--hidden", "1000", "--depth", "3", "--n-train-per-class", "1000"], ["relu", "lwta:k=2", "maxout:k=2"],
              n_configs=6, epochs=10, tune_seeds=3, val=100, fixed=False,
              notes=["Split MNIST (0-4, 5-9), task-incremental, 3 x 1000 units, 1000 images per class. The fixed "
                     "setting (lr 0.05, momentum 0.9, 10 epochs) is study 2."])
