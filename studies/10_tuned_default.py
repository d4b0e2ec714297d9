"""Study 10: the default protocol with every variant tuned on its own validation data.

Digits 0-4 then 5-9, task-incremental, 2 x 400 units, 500 training images per class: ReLU, LWTA and
maxout (k = 2) and Top-K (10 %), each at the configuration its validation data selects under both rules,
beside the fixed setting (lr 0.05, momentum 0.9, 5 epochs) that study 1 used. See studies/tuning.py.
"""
from common import parse_study_args
from tuning import tuned_flags, run_study

if __name__ == "__main__":
    parse_study_args(__doc__, extra=tuned_flags)
    run_study("10_tuned_default", "Study 10: default protocol, tuned per variant", [],
              ["relu", "lwta:k=2", "maxout:k=2", "topk"], n_configs=20, epochs=5, tune_seeds=6, val=100,
              fixed=True, notes=["Split MNIST (0-4, 5-9), task-incremental, 2 x 400 units, 500 images per class."])
