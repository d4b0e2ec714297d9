"""Study 14: the default protocol on Fashion-MNIST with every variant tuned on its own validation data.

Classes 0-4 then 5-9 of Fashion-MNIST, otherwise as study 10 (see studies/tuning.py). The data is read
from $FASHION_MNIST_DIR (or --data-dir's default cache); the fixed setting is lr 0.05, momentum 0.9, 5 epochs.
"""
from common import parse_study_args
from tuning import tuned_flags, run_study

if __name__ == "__main__":
    parse_study_args(__doc__, extra=tuned_flags)
    run_study("14_tuned_fashion", "Study 14: Fashion-MNIST, default protocol, tuned per variant",
              ["--dataset", "fashion-mnist"], ["relu", "lwta:k=2", "maxout:k=2", "topk"], n_configs=20, epochs=5,
              tune_seeds=6, val=100, fixed=True,
              notes=["Fashion-MNIST classes 0-4 then 5-9, task-incremental, 2 x 400 units, 500 images per class."])
