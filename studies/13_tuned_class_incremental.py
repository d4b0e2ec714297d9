"""Study 13: class-incremental split MNIST with every variant tuned on its own validation data.

Five tasks of two digits, one 10-way head, no task identity (study 5's setting): ReLU, Top-K, the SDM
Top-K MLP and ReLU with sleep replay, each at its selected configuration (see studies/tuning.py). SDM
trains with plain SGD whatever the configuration says (its source's recipe), so for it the configurations
that differ only in momentum are the same run: it is tuned over fewer distinct configurations.
"""
from common import parse_study_args
from tuning import tuned_flags, run_study

if __name__ == "__main__":
    parse_study_args(__doc__, extra=tuned_flags)
    run_study("13_tuned_class_incremental", "Study 13: class-incremental split MNIST, tuned per variant",
              ["--tasks", "01,23,45,67,89", "--scenario", "class"], ["relu", "topk", "sdm:schedule=both", "relu:sleep=1"],
              n_configs=20, epochs=5, tune_seeds=6, val=100, fixed=True,
              notes=["Five tasks of two digits, one 10-way head (class-incremental), 2 x 400 units, "
                     "500 images per class."])
